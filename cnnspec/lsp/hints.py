"""Inlay hints: each written layer's output shape at the end of its line (``→ 64x56x56``), the same figures
``cnnspec summary`` prints. A layer of a block definition runs once per instance: one shape when every
instance agrees, else the first and last (``→ 64x56x56 … 512x7x7 (8 instances)``). A block call or stage
line also shows its totals (params, MACs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cnnspec.errors import SourcePos
from cnnspec.lsp.layers import LayerIndex, Member, Where, is_call, ran, shapes_text, totals_text
from cnnspec.lsp.text import Span, token_span


@dataclass(frozen=True)
class Hint:
    line: int  # 0-based
    column: int  # code points
    label: str
    tooltip: str


def hints(real: str, lines: list[str], indexes: Iterable[LayerIndex], within: Span | None = None) -> list[Hint]:
    """The hints of the buffer ``lines`` of the file ``real``, from the analyses in ``indexes`` (the buffer's
    own, or for a block library those of the specs that use it), limited to the lines of ``within``."""
    written: dict[Where, list[Member]] = {}
    for index in indexes:
        for where, members in index.in_file(real):
            written.setdefault(where, []).extend(members)
    per_line: dict[int, int] = {}
    for _, line, _ in written:
        per_line[line] = per_line.get(line, 0) + 1
    out = []
    for where, members in sorted(written.items(), key=lambda item: item[0][1:]):
        line = where[1] - 1
        shown = ran(members)
        if not shown or not 0 <= line < len(lines) or (within and not within.line <= line <= within.end_line):
            continue
        label = f"→ {shapes_text(shown, len(members))}"
        if is_call(shown[0]):
            label += f" · {totals_text(shown)}"
        if per_line[where[1]] == 1:
            column = len(lines[line].rstrip())
        else:  # several layers on one line (a flow list): after each one's op
            column = token_span(lines, SourcePos(real, *where[1:])).end
        out.append(Hint(line, column, label, _paths(shown)))
    return out


def _paths(members: list[Member]) -> str:
    paths = [m.path or m.op for m in members]
    return paths[0] if len(paths) == 1 else f"{paths[0]} … {paths[-1]} ({len(paths)} instances)"
