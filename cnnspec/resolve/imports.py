"""``use:`` imports: the block table of a spec, gathered from the spec and the files it imports.

Import paths are relative to the importing file and must stay inside the directory tree of the spec
that was asked for (symlinks are followed before that check). Cycles are reported with the chain."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from cnnspec.errors import SpecError
from cnnspec.graph import SourcePos
from cnnspec.loader.yaml_loader import DataPath, Doc, load_file
from cnnspec.validate.messages import raise_validation
from cnnspec.validate.ops import OPS
from cnnspec.validate.spec import STRUCTURES, BlockDef, BlocksFile


class Src(NamedTuple):
    """A place in a loaded file: the document and a data path inside it. (A NamedTuple: one is made for
    every setting the resolver reads, and a frozen dataclass is several times slower to build.)"""

    doc: Doc
    path: DataPath

    def at(self, *more: str | int) -> Src:
        return Src(self.doc, (*self.path, *more))

    def pos(self, key: bool = False):
        return self.doc.pos(self.path, key=key)

    def positions(self, keys: Iterable[str]) -> dict[str, SourcePos]:
        """Where each of the mapping's ``keys`` had its value written (the mapping itself when not written)."""
        values, doc = self.doc.values, self.doc
        out: dict[str, SourcePos] = {}
        for key in keys:
            where = values.get((*self.path, key))
            out[key] = doc.at(where) if where is not None else self.pos()
        return out

    def value(self) -> object:
        data: object = self.doc.data
        for part in self.path:
            data = data[part]  # type: ignore[index]
        return data


@dataclass(frozen=True)
class BlockEntry:
    name: str
    definition: BlockDef
    src: Src  # the block's definition (its `layers` live at src.at("layers"))


def validated(model: type, data: object, src: Src, what: str):
    """Validate ``data`` (written at ``src``) against ``model``; errors become located SpecErrors."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise_validation(
            exc,
            model,
            what,
            lambda loc, key: src.at(*loc).pos(key=key),
            lambda loc: _get(data, loc),
        )
        raise AssertionError("unreachable") from None


def _get(data: object, loc: tuple[object, ...]) -> object:
    for part in loc:
        try:
            data = data[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def gather_blocks(doc: Doc, own: dict[str, BlockDef], use: list[str], root_dir: Path) -> dict[str, BlockEntry]:
    """All blocks visible from ``doc``: its own and, recursively, those of the files it imports."""
    table: dict[str, BlockEntry] = {}
    _collect(doc, own, use, root_dir, (_real(doc.file),), table)
    return table


def _real(file: str) -> str:
    return os.path.realpath(file)


def _collect(
    doc: Doc, own: dict[str, BlockDef], use: list[str], root_dir: Path, chain: tuple[str, ...],
    table: dict[str, BlockEntry],
) -> None:
    src = Src(doc, ())
    for name, definition in own.items():
        where = src.at("blocks", name)
        if name in OPS or name in STRUCTURES:
            raise SpecError(f"block name `{name}` is already the name of an op", where.pos(key=True))
        if name in table:
            other = table[name].src.pos(key=True)
            raise SpecError(f"block `{name}` is defined twice (also at {other})", where.pos(key=True))
        table[name] = BlockEntry(name, definition, where)
    for index, rel in enumerate(use):
        where = src.at("use", index)
        if "\0" in rel:  # os.path refuses it with a ValueError
            raise SpecError(f"import `{rel}` contains a NUL character; write a relative file path", where.pos())
        target = Path(doc.file).parent / rel
        real = _real(str(target))
        if Path(real) != root_dir and root_dir not in Path(real).parents:
            raise SpecError(f"import `{rel}` is outside the directory of the spec being checked; imports "
                            "must stay inside it (copy the file next to the spec)", where.pos())
        if real in chain:
            names = " -> ".join(os.path.relpath(p, root_dir) for p in (*chain, real))
            raise SpecError(f"import cycle: {names}", where.pos())
        if not os.path.isfile(real):
            raise SpecError(f"import `{rel}`: no such file", where.pos())
        imported = load_file(real, display=os.path.relpath(target) if not target.is_absolute() else str(target))
        blocks_file = validated(BlocksFile, imported.data, Src(imported, ()), f"imported file `{rel}`")
        _collect(imported, blocks_file.blocks, blocks_file.use, root_dir, (*chain, real), table)
