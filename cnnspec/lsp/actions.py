"""Quick fixes for the diagnostics that say what to write: "did you mean `x`?" replaces the misspelt key, op
or name with the suggestion; "add `- flatten` before it" inserts a ``- flatten`` item before the layer, in
the list's own style and indentation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cnnspec.lsp.text import Span

_SUGGESTION = re.compile(r"; did you mean `([^`]+)`\?")
_FLATTEN = "add `- flatten` before it"


@dataclass(frozen=True)
class Edit:
    span: Span
    text: str


@dataclass(frozen=True)
class Action:
    title: str
    edits: tuple[Edit, ...]
    preferred: bool = True


def fixes(message: str, span: Span, lines: list[str]) -> list[Action]:
    """The quick fixes of one diagnostic (its message, at ``span`` of the buffer ``lines``)."""
    if not 0 <= span.line < len(lines) or re.match(r"\S+:\d+:\d+: ", message):
        return []  # an error of an imported file, shown at its `use:` entry: fixed there
    line = lines[span.line]
    out = []
    match = _SUGGESTION.search(message)
    if match and span.end_line == span.line:
        wrong = _misspelt(message[:match.start()], line[span.start:span.end])
        if wrong is not None:
            start = span.start + line[span.start:span.end].index(wrong)
            at = Span(span.line, start, span.line, start + len(wrong))
            out.append(Action(f"Replace `{wrong}` with `{match.group(1)}`", (Edit(at, match.group(1)),)))
    if _FLATTEN in message:
        out.append(Action("Add `- flatten` before it", (_flatten(line, span),)))
    return out


def _misspelt(message: str, written: str) -> str | None:
    """The word the message quotes that the token at fault holds (the whole token, or once within it:
    ``$widht`` in ``"$widht * 2"``)."""
    for word in re.findall(r"`([^`]+)`", message):
        if written == word or written.count(word) == 1:
            return word
    return None


def _flatten(line: str, span: Span) -> Edit:
    """A ``- flatten`` line above a block-style item (``  - linear: ...``), or ``flatten, `` before a
    flow-style one (``[..., {linear: ...}]``)."""
    before = line[:span.start]
    item = re.fullmatch(r"(\s*)-(\s+)", before)
    if item:
        at = Span(span.line, 0, span.line, 0)
        return Edit(at, f"{item.group(1)}-{item.group(2)}flatten\n")
    brace = before.rstrip()
    start = len(brace) - 1 if brace.endswith("{") else span.start
    return Edit(Span(span.line, start, span.line, start), "flatten, ")
