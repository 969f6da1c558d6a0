"""Text of the diagrams: shapes without the batch axis (``64x56x56``), compact counts (``9.41k``), what a
scope is, and tooltips. Each op's caption is the op's own (``cnnspec.ops``)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnspec.ir import Node, RFValue, Scope, Shape


def shape_text(shape: Shape) -> str:
    """``(64, 56, 56)`` -> ``64x56x56``; a flat vector is just its length."""
    return "x".join(str(d) for d in shape) if shape else "?"


def count_text(n: int) -> str:
    """Exact with thousands separators below 10,000, else three significant digits with k/M/G."""
    if n < 10_000:
        return f"{n:,}"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            value = n / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f}{suffix}"
    return str(n)  # unreachable: n >= 10,000 matched k


def _window(values: Sequence[RFValue]) -> str:
    """A kernel or window: ``3x3``, ``7`` (1D), ``3x3x3`` (3D)."""
    return "x".join(str(v) for v in values)


def block_kind(scope: Scope) -> str:
    """What a scope is, for cluster titles and collapsed nodes: ``stage: 2 x basic``, ``block basic``,
    ``sequential``."""
    if scope.kind == "stage":
        kinds = sorted({c.block.kind for c in scope.members if isinstance(c, Scope) and c.block is not None})
        kind = kinds[0] if len(kinds) == 1 else "blocks"
        return f"stage: {len(scope.members)} x {kind}"
    if scope.block is not None:
        return f"block {scope.block.kind}"
    return scope.kind


def params_text(node: Node | Scope) -> str:
    """``9,408 params``; frozen parameters (fixed kernels) say so: ``18 frozen params``."""
    frozen = node.total_params - node.total_trainable
    if frozen == node.total_params:
        return f"{count_text(frozen)} frozen params"
    text = f"{count_text(node.total_params)} params"
    return f"{text} ({count_text(frozen)} frozen)" if frozen else text


def totals_text(node: Node | Scope) -> str:
    """``2.78M params, 231M MACs`` (parts that are zero are left out)."""
    parts = []
    if node.total_params:
        parts.append(params_text(node))
    if node.total_macs:
        parts.append(f"{count_text(node.total_macs)} MACs")
    return ", ".join(parts)


def tooltip_text(node: Node | Scope) -> str:
    """Hover text in SVG: path, op, shapes and exact figures."""
    lines = [
        f"{node.path or node.name or 'model'} ({node.op})",
        f"{shape_text(node.input_shape)} -> {shape_text(node.output_shape)}",
        f"params {node.total_params:,}",
        f"MACs {node.total_macs:,}",
    ]
    if node.rf_size:
        lines.append(f"receptive field {_window(node.rf_size)}, stride {_window(node.rf_stride)}")
    return "\n".join(lines)
