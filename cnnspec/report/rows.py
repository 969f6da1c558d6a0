"""The rows of a summary: one per displayed node or scope, with depth collapsing, shared by text and
markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnspec.ir import Node, RFValue, Scope, training_only
from cnnspec.ops import REGISTRY
from cnnspec.ops.base import Op
from cnnspec.ops.shape import fmt


@dataclass(frozen=True)
class Row:
    depth: int
    path: str
    op: str
    output_shape: str
    params: int
    macs: int
    rf: str
    collapsed: bool


def rf_number(value: RFValue) -> str:
    """A receptive field's size or stride: a whole number, a short exact decimal, or else a fraction.

    >>> from fractions import Fraction
    >>> rf_number(212), rf_number(Fraction(1, 2)), rf_number(Fraction(21, 4)), rf_number(Fraction(1, 3))
    ('212', '0.5', '5.25', '1/3')
    """
    if isinstance(value, int) or value.denominator == 1:
        return str(int(value))
    for places in (1, 2, 3):
        if (value * 10 ** places).denominator == 1:
            return f"{float(value):.{places}f}"
    return f"{value.numerator}/{value.denominator}"


def rf_text(values: Sequence[RFValue]) -> str:
    """A receptive field's sizes or strides, one per spatial axis: ``32x32``, ``0.5x0.5``."""
    return "x".join(rf_number(v) for v in values)


def caption(member: Node | Scope) -> str:
    """What a row's op column says: the op's caption, or the kind of a scope (``block basic``). A node of a
    partial graph (an editor's buffer whose shapes stopped at an error) has no attrs yet: its caption is
    then the op's plain name."""
    if isinstance(member, Node):
        op = REGISTRY[member.op]
        return Op.caption(op, None) if member.attrs is None else op.caption(member.attrs)
    if member.block is not None:
        return f"block {member.block.kind}"
    return member.kind


def label(member: Node | Scope) -> str:
    """A row's name: the path, or for a merge the spec did not name, its scope's path and the caption."""
    if isinstance(member, Node) and not member.name:
        return f"{member.path} {caption(member)}".strip()
    return member.path or member.op


def rows(root: Scope, depth: int | None = None) -> list[Row]:
    """Display rows in execution order; members deeper than ``depth`` fold into their scope's row."""
    out: list[Row] = []
    for member in root.members:
        _collect(member, 1, depth, out)
    return out


def _collect(member: Node | Scope, level: int, depth: int | None, out: list[Row]) -> None:
    if not member.active:
        return
    collapsed = isinstance(member, Scope) and depth is not None and level >= depth
    rf = rf_text(member.rf_size) if member.rf_size else ""
    text = caption(member) + (" (training only)" if training_only(member) else "")
    out.append(Row(level, label(member), text, fmt(member.output_shape), member.total_params,
                   member.total_macs, rf, collapsed))
    if isinstance(member, Scope) and not collapsed:
        for child in member.members:
            _collect(child, level + 1, depth, out)
