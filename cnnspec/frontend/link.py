"""Stage 3, link: the block table of a spec, gathered from the spec and the files it imports (``use:``).

Import paths are relative to the importing file and must stay inside the directory tree of the spec that
was asked for (symlinks are followed before that check). Each file is read and parsed once, whatever the
import fan-out (a diamond of imports costs one read per file, not one per path to it); a cycle is reported
with its chain."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend import ast
from cnnspec.frontend.read import Doc, load_file
from cnnspec.frontend.syntax import STRUCTURES, parse
from cnnspec.ops import REGISTRY

MAX_FILES = 1_000  # imported files per spec

Read = Callable[[str, str], Doc]  # (real path, display name) -> the loaded file


@dataclass(frozen=True)
class Program:
    """A parsed spec with every block it can call, and the files that were read for it."""

    spec: ast.SpecAst
    blocks: dict[str, ast.BlockDef]
    libraries: tuple[ast.SpecAst, ...] = ()
    files: tuple[str, ...] = ()  # real paths of the spec and of every imported file, in reading order


@dataclass
class _Linker:
    root_dir: Path
    read: Read
    table: dict[str, ast.BlockDef] = field(default_factory=dict)
    libraries: list[ast.SpecAst] = field(default_factory=list)
    done: dict[str, None] = field(default_factory=dict)  # files read, in order
    errors: list[SpecError] = field(default_factory=list)

    def add_blocks(self, blocks: tuple[ast.BlockDef, ...]) -> None:
        for block in blocks:
            if block.name in REGISTRY or block.name in STRUCTURES:
                self.errors.append(SpecError(f"block name `{block.name}` is already the name of an op", block.pos))
            elif block.name in self.table:
                other = self.table[block.name].pos
                self.errors.append(SpecError(f"block `{block.name}` is defined twice (also at {other})", block.pos))
            else:
                self.table[block.name] = block

    def imports(self, spec: ast.SpecAst, chain: tuple[str, ...]) -> None:
        for rel, pos in spec.use:
            target = self.target(spec.file, rel, pos, chain)
            if target is None or target[0] in self.done:
                continue
            real, display = target
            self.done[real] = None
            if len(self.done) > MAX_FILES:
                self.errors.append(SpecError(f"the spec imports more than {MAX_FILES:,} files", pos))
                return
            try:
                doc = self.read(real, display)
            except SpecError as exc:
                self.errors.append(exc)
                continue
            library, errors = parse(doc, what=f"imported file `{rel}`")
            self.errors.extend(errors)
            if library is not None:
                self.libraries.append(library)
                self.add_blocks(library.blocks)
                self.imports(library, (*chain, real))

    def target(self, importer: str, rel: str, pos: SourcePos, chain: tuple[str, ...]) -> tuple[str, str] | None:
        """The real path and display name of an import, or None after reporting why it cannot be read."""
        if "\0" in rel:  # os.path refuses it with a ValueError
            self.errors.append(SpecError(f"import `{rel}` contains a NUL character; write a relative file path", pos))
            return None
        target = Path(importer).parent / rel
        real = os.path.realpath(target)
        if Path(real) != self.root_dir and self.root_dir not in Path(real).parents:
            self.errors.append(SpecError(f"import `{rel}` is outside the directory of the spec being checked; "
                                         "imports must stay inside it (copy the file next to the spec)", pos))
            return None
        if real in chain:
            names = " -> ".join(os.path.relpath(p, self.root_dir) for p in (*chain, real))
            self.errors.append(SpecError(f"import cycle: {names}", pos))
            return None
        if not os.path.isfile(real):
            self.errors.append(SpecError(f"import `{rel}`: no such file", pos))
            return None
        return real, os.path.relpath(target) if not target.is_absolute() else str(target)


def link(spec: ast.SpecAst, path: str | os.PathLike[str] | None = None,
         read: Read = lambda real, display: load_file(real, display=display)) -> tuple[Program, list[SpecError]]:
    """The spec's block table: its own blocks, then those of its imports, depth first. ``path`` is where the
    spec was read from (imports are fenced to its directory; the working directory for a spec given as
    text)."""
    real = os.path.realpath(path) if path is not None else os.path.join(os.getcwd(), "<stdin>")
    linker = _Linker(Path(real).parent, read)
    linker.add_blocks(spec.blocks)
    linker.done[real] = None
    linker.imports(spec, (real,))
    return Program(spec, linker.table, tuple(linker.libraries), tuple(linker.done)), linker.errors
