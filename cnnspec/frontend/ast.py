"""The parsed spec: what a file says, structured, with the position of everything as data.

``parse`` builds these from the YAML data; ``link`` gathers the blocks of imported files; ``elaborate``
turns them into the graph of values. Values are kept as written (``$expressions`` are strings, checked
for syntax by ``parse``, evaluated by ``elaborate``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cnnspec.errors import SourcePos

DataPath = tuple[str | int, ...]


class Positions(Protocol):
    """Where everything in one file was written (``read.Doc``): line and column by absolute data path."""

    @property
    def values(self) -> Mapping[DataPath, tuple[int, int]]: ...
    @property
    def keys(self) -> Mapping[DataPath, tuple[int, int]]: ...

    def at(self, where: tuple[int, int]) -> SourcePos: ...


@dataclass(frozen=True)
class Spots:
    """Where the values (and keys) under one mapping of the file were written, by data path relative to
    it: ``spots.pos(("kernel", 1))`` is the second item of ``kernel``. A path that was not written falls
    back to its nearest written ancestor, the mapping itself (``at``) last. Looked up in the file's
    positions when asked (most never are), not copied per layer."""

    at: SourcePos
    file: Positions | None = field(default=None, compare=False, repr=False)
    base: DataPath = ()  # the mapping's data path in ``file``

    def pos(self, *path: str | int, key: bool = False) -> SourcePos:
        file = self.file
        if file is None:
            return self.at
        table = file.keys if key else file.values
        probe = tuple(path)
        while probe:
            full = (*self.base, *probe)
            where = table.get(full)
            if where is None and key:
                where = file.values.get(full)
            if where is not None:
                return file.at(where)
            probe = probe[:-1]
        return self.at


@dataclass(frozen=True)
class OpCall:
    """``- relu`` or ``- conv: {out: 16, kernel: 3}``. ``static`` holds the validated settings when no
    ``$expression`` appears in them (every instance then shares them)."""

    op: str
    settings: Mapping[str, Any]
    pos: SourcePos
    spots: Spots
    static: Any = None


@dataclass(frozen=True)
class BlockUse:
    """``- basic: {width: 64}`` or ``- basic``: a call of a block (or an unknown word, which ``elaborate``
    reports once the block table is known)."""

    block: str
    args: Mapping[str, Any]
    pos: SourcePos
    spots: Spots


@dataclass(frozen=True)
class Sequential:
    name: Any
    layers: tuple[Layer, ...]
    pos: SourcePos
    spots: Spots


@dataclass(frozen=True)
class ProjectionShortcut:
    mode: str  # auto | always
    name: Any
    norm: str  # batchnorm | none
    pos: SourcePos
    spots: Spots


@dataclass(frozen=True)
class Residual:
    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] | ProjectionShortcut | None  # None: identity
    pos: SourcePos


@dataclass(frozen=True)
class Gate:
    """``x * body(x)``: squeeze-and-excitation and other gates."""

    body: tuple[Layer, ...]
    pos: SourcePos


@dataclass(frozen=True)
class Concat:
    branches: tuple[tuple[Layer, ...], ...]
    pos: SourcePos


@dataclass(frozen=True)
class Stage:
    name: Any
    block: str
    repeat: Any
    args: Mapping[str, Any]
    first: Mapping[str, Any]
    pos: SourcePos
    spots: Spots
    prefix: str | None = None  # instances named prefix + number, from `start`; None: 0, 1, ...
    start: int = 0
    first_block: str | None = None  # the block of instance 0, if not `block`


@dataclass(frozen=True)
class Merge:
    """``- add: {of: [a, b]}`` (also ``concat``): named tensors merged into one. ``previous`` in
    ``of`` is the output of the layer before; ``spots`` holds where each name was written (``("of", i)``)."""

    op: str  # add | mul | concat
    of: tuple[str, ...]
    pos: SourcePos
    spots: Spots


@dataclass(frozen=True)
class Tap:
    """A layer written with ``as: name`` (its output is named for later layers) and/or ``from: name`` (its
    input is a named tensor instead of the layer before's output). ``spots`` holds where each was
    written."""

    layer: Layer
    name: str | None
    source: str | None
    spots: Spots
    training_only: bool = False  # `training_only: true`: the layer runs in training only

    @property
    def pos(self) -> SourcePos:
        """Where the layer it wraps was written."""
        return self.layer.pos


@dataclass(frozen=True)
class Broken:
    """A layer whose errors ``parse`` reported: it keeps its place (and its position in the scope's
    numbering) so that the layers after it are still checked."""

    pos: SourcePos


Layer = OpCall | BlockUse | Sequential | Residual | Gate | Concat | Stage | Merge | Tap | Broken


@dataclass(frozen=True)
class BlockDef:
    """A block: typed arguments with optional defaults (``(name, type name, default or {type, default})``;
    ``cnnspec.frontend.argtypes`` reads them), its layers."""

    name: str
    args: tuple[tuple[str, Any], ...]
    layers: tuple[Layer, ...]
    pos: SourcePos  # the block's name
    file: str


@dataclass(frozen=True)
class SpecAst:
    """A spec file (``layers`` given) or a block library (``blocks`` only: ``layers`` is None)."""

    file: str
    name: str
    description: str
    params: Mapping[str, Any]
    input: tuple[Any, ...]
    use: tuple[tuple[str, SourcePos], ...]
    blocks: tuple[BlockDef, ...]
    layers: tuple[Layer, ...] | None
    constraints: Mapping[str, Any]
    spots: Spots  # the whole file
    data: Mapping[str, Any]  # the file's data, for the spec's digest
    outputs: Mapping[str, str] | tuple[str, ...] | None = None  # `outputs:` (names -> tensors, or tensors)
