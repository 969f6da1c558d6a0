"""Positions in a buffer: 0-based lines and columns counted in Unicode code points (as the loader counts
them; the server converts to the client's units), and the range of the YAML token at a loader position."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from cnnspec.errors import SourcePos
from cnnspec.report.regions import token_end

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BREAK = re.compile(r"\r\n|\r|\n")  # the line breaks of LSP (and YAML)


@dataclass(frozen=True, order=True)
class Span:
    """A range of one buffer: ``line``/``start`` to ``end_line``/``end`` (exclusive), all 0-based."""

    line: int
    start: int
    end_line: int
    end: int

    def contains(self, line: int, column: int) -> bool:
        return (self.line, self.start) <= (line, column) <= (self.end_line, self.end)


def token_span(lines: list[str], pos: SourcePos) -> Span:
    """The range of the key or value the loader placed at ``pos``: the token's end on its line, as
    ``check --format sarif`` finds it, else (a block that continues below) the rest of the line's content."""
    line, column = pos.line - 1, pos.col - 1
    text = lines[line] if 0 <= line < len(lines) else ""
    end = token_end(text, pos.col)
    if end is None:
        end = len(_content(text)) + 1
    return Span(line, column, line, max(end - 1, column))


def _content(line: str) -> str:
    """``line`` without a trailing comment and spaces."""
    cut = re.search(r"(^|\s)#", line)
    return (line[:cut.start()] if cut else line).rstrip()


def word_at(line: str, column: int) -> tuple[str, int, int] | None:
    """The identifier under (or just before) ``column`` of ``line``: (word, start, end)."""
    for match in _WORD.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def lines_of(text: str) -> list[str]:
    """The buffer's lines as the loader numbers them (a final newline adds no line)."""
    return _BREAK.split(text)


def uri_to_path(uri: str) -> str:
    """The file system path of a ``file:`` URI (other schemes: the URI itself, which is never a file)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    return os.path.normpath(unquote(parsed.path))


def path_to_uri(path: str) -> str:
    return Path(os.path.abspath(path)).as_uri()


def same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
