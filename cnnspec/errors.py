"""User-facing errors: one line, ``path:line:col: error: message``."""

from __future__ import annotations

from dataclasses import dataclass

# C0 and C1 controls and the Unicode line/paragraph separators: each ends a line for str.splitlines or a terminal
_CONTROL = ({c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))} | {0x2028: "\\u2028", 0x2029: "\\u2029"}
            | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


@dataclass(frozen=True)
class SourcePos:
    """Where a spec element was written: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def one_line(text: str) -> str:
    """``text`` with every character that could break a line (or drive a terminal) escaped."""
    return text.translate(_CONTROL)


class SpecError(Exception):
    """A problem in a spec (or its command-line overrides), located where it was written."""

    def __init__(self, message: str, pos: SourcePos | None = None, code: str | None = None) -> None:
        message = one_line(message)  # a key or value written with a newline must not split the error
        super().__init__(message)
        self.message = message
        self.pos = pos
        self._code = code

    @property
    def code(self) -> str:
        """The kind of problem (a key of ``cnnspec.error_codes.KINDS``, e.g. ``shape``): as given where the
        error was raised, else derived from the message (only when asked: analysis raises and catches many)."""
        if self._code is None:
            from cnnspec.error_codes import classify

            self._code = classify(self.message)
        return self._code

    def __str__(self) -> str:
        where = one_line(f"{self.pos}: ") if self.pos else ""  # so may a file name
        return f"{where}error: {self.message}"


class UsageError(Exception):
    """A problem with how cnnspec was called (exit code 2)."""
