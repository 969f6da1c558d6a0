"""``generated/manifest``: every file under ``generated/`` and the ``cnnspec build`` arguments that make it.

One entry per line, exactly what follows ``cnnspec build`` on a command line (``#`` starts a comment):

    specs/resnet18.yaml --target torch -o generated/resnet18.py
    specs/resnet18.yaml --target svg -o generated/resnet18.svg --depth 2

Paths are relative to the directory that holds ``generated/`` (the repository root), whatever the
current directory, and must stay inside it: a spec or output path that is absolute, has a ``..``
component, or leads outside through a symbolic link is refused at its line and column (a manifest comes
with the repository, so whoever wrote it must not choose where ``cnnspec build`` writes or what it reads).
Adding a generated file is adding its line; ``cnnspec build`` (no spec) rebuilds every entry and
``cnnspec build --check`` reports the entries whose file differs from what the spec generates.
"""

from __future__ import annotations

import io
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import SourcePos, SpecError, decode_utf8
from cnnspec.fsutil import read_regular

DEFAULT = Path("generated") / "manifest"
MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    argv: list[str]
    pos: SourcePos
    cols: tuple[int, ...] = ()  # the column where each of ``argv`` starts

    def pos_of(self, value: str) -> SourcePos:
        """Where the argument holding ``value`` was written (``-o X``, ``--output=X``, ``-oX``: X's token)."""
        for token, col in zip(self.argv, self.cols, strict=False):
            if token == value or (token.endswith(value) and token.startswith("-")):
                return SourcePos(self.pos.file, self.pos.line, col)
        return self.pos


def read(path: Path) -> list[Entry]:
    name = str(path)
    try:
        raw, size = read_regular(path, MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the manifest: {exc.strerror or exc}", SourcePos(name, 1, 1)) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"the manifest is {size:,} bytes; at most {MAX_BYTES:,}", SourcePos(name, 1, 1))
    entries = []
    for number, line in enumerate(decode_utf8(raw, name, "the manifest").splitlines(), start=1):
        try:
            tokens = _split(line)
        except ValueError as exc:
            raise SpecError(f"cannot split the line: {exc}", SourcePos(name, number, 1)) from None
        if tokens:
            argv, cols = zip(*tokens, strict=True)
            entries.append(Entry(list(argv), SourcePos(name, number, cols[0]), cols))
    return entries


def _split(line: str) -> list[tuple[str, int]]:
    """``shlex.split(line, comments=True)``, with the 1-based column where each token starts."""
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    tokens: list[tuple[str, int]] = []
    while True:
        at = stream.tell()
        start = at + len(line[at:]) - len(line[at:].lstrip(lexer.whitespace))
        token = lexer.get_token()
        if token is None:
            return tokens
        tokens.append((token, start + 1))


def root_of(path: Path) -> Path:
    """The directory manifest paths are relative to: the one above the manifest's directory (symbolic
    links in the manifest's own path are not followed, so a linked manifest cannot move the root)."""
    return Path(os.path.abspath(path)).parent.parent


def inside(root: Path, text: str, what: str, pos: SourcePos) -> Path:
    """``root / text`` for a manifest path ``text`` that stays inside ``root``, else a located error."""
    why = None
    if "\0" in text:
        why = "holds a NUL character"
    elif os.path.isabs(text):
        why = "is an absolute path"
    elif ".." in Path(text).parts:
        why = "has a `..` component"
    elif not _within(Path(os.path.realpath(root / text)), Path(os.path.realpath(root))):
        why = "leads outside the repository through a symbolic link"
    if why:
        raise SpecError(f"the {what} `{text}` {why}; manifest paths are relative to the repository root "
                        f"({root}) and stay inside it", pos)
    return root / os.path.normpath(text)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
