"""Errors about an input file rather than a spec position: a checkpoint, an ONNX model, an ``.npy`` array.
Printed as ``FILE: error: message`` (one line, exit 1). Standard library only."""

from __future__ import annotations

from cnnspec.errors import SpecError, one_line

MAX_NAME = 100  # characters of a tensor or input name quoted in a message


class FileError(SpecError):
    """A file that cannot be used; printed as ``FILE: error: ...``."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = one_line(str(source))

    def __str__(self) -> str:
        return f"{self.source}: error: {self.message}"


class CheckpointError(FileError):
    """A weights file (or state_dict) that cannot be used for this spec."""


class ModelError(FileError):
    """An ONNX model that onnxruntime cannot load or run, or an input it cannot take."""


def short(name: str) -> str:
    """``name`` cut to ``MAX_NAME`` characters (a hostile file may hold megabyte names)."""
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."


def quote(name: str) -> str:
    """``name`` in backquotes, cut to ``MAX_NAME`` characters."""
    return f"`{short(name)}`"


def capped(items: list[str], what: str, keep: int = 5) -> list[str]:
    """The first ``keep`` of ``items``, then one ``and N more WHAT`` entry for the rest."""
    if len(items) <= keep:
        return items
    return [*items[:keep], f"and {len(items) - keep:,} more {what}"]
