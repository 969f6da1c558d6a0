"""``generated/manifest``: every file under ``generated/`` and the ``cnnspec build`` arguments that make it.

One entry per line, exactly what follows ``cnnspec build`` on a command line (``#`` starts a comment):

    specs/resnet18.yaml --target torch -o generated/resnet18.py
    specs/resnet18.yaml --target svg -o generated/resnet18.svg --depth 2

Paths are relative to the directory that holds ``generated/`` (the repository root), whatever the
current directory. Adding a generated file is adding its line; ``cnnspec build`` (no spec) rebuilds every
entry and ``cnnspec build --check`` reports the entries whose file differs from what the spec generates.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import SourcePos, SpecError

DEFAULT = Path("generated") / "manifest"


@dataclass(frozen=True)
class Entry:
    argv: list[str]
    pos: SourcePos


def read(path: Path) -> list[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the manifest: {exc.strerror}", SourcePos(str(path), 1, 1)) from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as exc:
            raise SpecError(f"cannot split the line: {exc}", SourcePos(str(path), number, 1)) from None
        if argv:
            entries.append(Entry(argv, SourcePos(str(path), number, 1)))
    return entries


def root_of(path: Path) -> Path:
    """The directory manifest paths are relative to: the one above the manifest's directory."""
    return path.resolve().parent.parent
