"""``EMITTERS``: spec op -> function ``(builder, node, x) -> Value`` adding that op's ONNX nodes."""

from __future__ import annotations

from collections.abc import Callable

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.compile.onnx.ops import activation, conv, linear, norm, pool, shape
from cnnspec.graph import Node

Emitter = Callable[[Builder, Node, Value], Value]

EMITTERS: dict[str, Emitter] = {
    **conv.EMITTERS,
    **pool.EMITTERS,
    **norm.EMITTERS,
    **activation.EMITTERS,
    **linear.EMITTERS,
    **shape.EMITTERS,
}
