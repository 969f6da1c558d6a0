"""Where the YAML token at an error's position ends, so CI annotations can underline it (SARIF's
``endColumn``, GitHub's ``endColumn``). A :class:`~cnnspec.errors.SourcePos` holds only where a key or
value starts; the end is read from the file: a quoted scalar up to its closing quote, a flow collection
(``{...}``, ``[...]``) up to its closing bracket, a plain scalar up to ``: ``, `` #``, or (inside a flow
collection) ``,``, ``]`` or ``}``. Tokens that continue on another line have no known end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cnnspec.errors import SourcePos

_OPEN, _CLOSE = "[{", "]}"


class EndColumns:
    """The end column (1-based, exclusive) of the token at a position, from files read once each.
    ``texts`` gives the text of sources that are not files (``<stdin>``)."""

    def __init__(self, texts: dict[str, str] | None = None) -> None:
        self._lines: dict[str, list[str] | None] = {
            name: text.splitlines() for name, text in (texts or {}).items()}

    def end(self, pos: SourcePos) -> int | None:
        lines = self._read(pos.file)
        if lines is None or not 1 <= pos.line <= len(lines):
            return None
        return token_end(lines[pos.line - 1], pos.col)

    def _read(self, file: str) -> list[str] | None:
        if file not in self._lines:
            try:
                self._lines[file] = Path(file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError, ValueError):
                self._lines[file] = None
        return self._lines[file]


def token_end(line: str, col: int) -> int | None:
    """The 1-based column just after the token that starts at 1-based column ``col`` of ``line``, or
    None when it does not end on this line (or ``col`` is past the end)."""
    start = col - 1
    if not 0 <= start < len(line) or line[start].isspace():
        return None
    first = line[start]
    if first in "'\"":
        return _quoted_end(line, start)
    if first in _OPEN:
        return _bracket_end(line, start)
    return _plain_end(line, start)


def _quoted_end(line: str, start: int) -> int | None:
    quote, i = line[start], start + 1
    while i < len(line):
        if quote == '"' and line[i] == "\\":
            i += 2
            continue
        if line[i] == quote:
            if quote == "'" and line[i + 1:i + 2] == "'":  # '' is an escaped quote
                i += 2
                continue
            return i + 2
        i += 1
    return None


def _bracket_end(line: str, start: int) -> int | None:
    for i, depth in _depths(line[start:]):
        if depth == 0:
            return start + i + 2
    return None


def _plain_end(line: str, start: int) -> int | None:
    flow = _open_brackets(line[:start]) > 0
    i = start
    while i < len(line):
        char, after = line[i], line[i + 1:i + 2]
        if char == ":" and (not after or after in " \t" or (flow and after in ",]}")):
            break
        if char == "#" and line[i - 1] in " \t":
            break
        if flow and char in ",]}":
            break
        i += 1
    end = start + len(line[start:i].rstrip())
    return end + 1 if end > start else None


def _open_brackets(text: str) -> int:
    return next((depth for _, depth in reversed(list(_depths(text)))), 0)


def _depths(text: str) -> Iterator[tuple[int, int]]:
    """Each character's index and the bracket depth after it; brackets inside quotes do not count."""
    depth, quote = 0, ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(depth - 1, 0)
        yield i, depth
