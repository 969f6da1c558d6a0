"""The rows of a summary: one per displayed node or scope, with depth collapsing, shared by text and
markdown."""

from __future__ import annotations

from dataclasses import dataclass

from cnnspec.ir import Node, Scope
from cnnspec.ops import REGISTRY
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


def caption(member: Node | Scope) -> str:
    """What a row's op column says: the op's caption, or the kind of a scope (``block basic``)."""
    if isinstance(member, Node):
        return REGISTRY[member.op].caption(member.attrs)
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
    rf = fmt(member.rf_size) if member.rf_size else ""
    out.append(Row(level, label(member), caption(member), fmt(member.output_shape), member.total_params,
                   member.total_macs, rf, collapsed))
    if isinstance(member, Scope) and not collapsed:
        for child in member.members:
            _collect(child, level + 1, depth, out)
