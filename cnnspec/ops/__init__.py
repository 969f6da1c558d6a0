"""The ops: one module per family, one class per op, and the one table of them, :data:`REGISTRY`.

``REGISTRY[name]`` is the op a spec writes as ``name``; everything about it (settings, shape rule,
caption, lowerings, reference) is on that object (``cnnspec.ops.base``). Adding an op is adding a class to
its family's module and to that module's ``OPS``."""

from __future__ import annotations

from cnnspec.ops import activation, conv, layout, linear, merge, norm, pool, regularise, resample
from cnnspec.ops.base import Op

FAMILIES = (conv, pool, resample, norm, activation, regularise, linear, layout, merge)
REGISTRY: dict[str, Op] = {op.name: op for family in FAMILIES for op in family.OPS}
