"""The analysed graph by source position: which nodes and scopes each written layer became.

A layer written at the top of a spec becomes one node (or scope); a layer of a block definition becomes one
per instance of the block, in another file. For every position (real path, 1-based line, column) the index
holds the *written* members in execution order: a node, or the outermost scope made there (a stage, not
its block instances, which share its position; a projection shortcut, not its conv and norm)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from cnnspec import ir
from cnnspec.ops.shape import fmt
from cnnspec.report.rows import caption

Member = ir.Node | ir.Scope
Where = tuple[str, int, int]  # real path, 1-based line and column


@dataclass
class LayerIndex:
    """Written members by position, in order of first execution."""

    at: dict[Where, list[Member]] = field(default_factory=dict)

    def in_file(self, real: str) -> Iterator[tuple[Where, list[Member]]]:
        for where, members in self.at.items():
            if where[0] == real:
                yield where, members

    def on_line(self, real: str, line: int) -> list[tuple[Where, list[Member]]]:
        """The positions on a 1-based ``line`` of ``real``, left to right."""
        return sorted(((w, m) for w, m in self.in_file(real) if w[1] == line), key=lambda item: item[0][2])


def index_layers(graph: ir.Graph) -> LayerIndex:
    index = LayerIndex()
    real: dict[str, str] = {}
    _walk(graph.root, index, real)
    return index


def _walk(scope: ir.Scope, index: LayerIndex, real: dict[str, str]) -> None:
    for member in scope.members:
        if member.pos != scope.pos or scope.kind == "model":
            file = member.pos.file
            path = real.get(file)
            if path is None:
                path = real[file] = os.path.realpath(file)
            index.at.setdefault((path, member.pos.line, member.pos.col), []).append(member)
        if isinstance(member, ir.Scope):
            _walk(member, index, real)


def ran(members: list[Member]) -> list[Member]:
    """The members that ran and have a shape (a projection ``auto`` left out did not run; a layer after a
    shape error has no shape)."""
    return [m for m in members if m.active and m.output_shape]


def shapes_text(members: list[Member], written: int | None = None) -> str:
    """``64x56x56`` when every instance agrees, else ``64x56x56 … 512x7x7 (8 instances)``; ``written`` is
    the number of instances made (more than ran where a projection was left out: ``(3 of 8 instances)``)."""
    shapes = [fmt(m.output_shape) for m in members]
    made = written or len(shapes)
    count = f"{len(shapes)} of {made} instances" if made > len(shapes) else f"{made} instances"
    if len(set(shapes)) == 1:
        return shapes[0] if made == len(shapes) else f"{shapes[0]} ({count})"
    return f"{shapes[0]} … {shapes[-1]} ({count})"


def is_call(member: Member) -> bool:
    """A block call or a stage: shown with its totals."""
    return isinstance(member, ir.Scope) and (member.kind == "stage" or member.block is not None)


def totals_text(members: list[Member]) -> str:
    """``147,968 params, 462,422,016 MACs`` (summed over the instances)."""
    params = sum(m.total_params for m in members)
    macs = sum(m.total_macs for m in members)
    return f"{params:,} params, {macs:,} MACs"


def what(member: Member) -> str:
    """The op caption, or a scope's kind (``block basic``), as the summary's Op column says; the op's name
    for a node a shape error left without attributes."""
    if isinstance(member, ir.Node) and member.attrs is None:
        return member.op
    return caption(member)
