"""User-facing errors: one line, ``path:line:col: error: message``."""

from __future__ import annotations

from cnnspec.graph import SourcePos


class SpecError(Exception):
    """A problem in a spec (or its command-line overrides), located where it was written."""

    def __init__(self, message: str, pos: SourcePos | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        return f"{where}error: {self.message}"


class UsageError(Exception):
    """A problem with how cnnspec was called (exit code 2)."""
