"""What a word of the buffer refers to, and where: go to definition of a block call (across ``use:`` files)
and of a ``$name``, and the references of a block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from cnnspec.errors import SourcePos
from cnnspec.frontend import ast
from cnnspec.lsp.document import DocumentAnalysis, View
from cnnspec.lsp.text import Span, token_span, word_at


@dataclass(frozen=True)
class Location:
    path: str  # real path
    span: Span


@dataclass(frozen=True)
class Target:
    """The word under the cursor: a block (``kind`` ``block``) or a ``$name`` (``param``), and its span."""

    kind: str
    name: str
    span: Span


def target_at(analysis: DocumentAnalysis, line: int, column: int, blocks: set[str]) -> Target | None:
    """The block name or ``$name`` at a 0-based position of the buffer (``blocks``: the names known)."""
    text = analysis.lines[line] if 0 <= line < len(analysis.lines) else ""
    found = word_at(text, column)
    if found is None:
        return None
    word, start, end = found
    span = Span(line, start, line, end)
    if start > 0 and text[start - 1] == "$":
        return Target("param", word, Span(line, start - 1, line, end))
    if word in blocks:
        return Target("block", word, span)
    return None


def block_names(view: View) -> set[str]:
    return {block.name for source in view.sources() for block in source.blocks}


def block_at(analysis: DocumentAnalysis, line: int) -> ast.BlockDef | None:
    """The block definition of the buffer whose lines hold the 0-based ``line``."""
    spec = analysis.spec
    if spec is None or not spec.blocks:
        return None
    starts = sorted(block.pos.line - 1 for block in spec.blocks)
    after = [key.line - 1 for key in _top_level_keys(analysis) if key.line - 1 > starts[0]]
    for block in sorted(spec.blocks, key=lambda b: b.pos.line):
        first = block.pos.line - 1
        later = [s for s in starts if s > first] + [a for a in after if a > first]
        if first <= line < (min(later) if later else len(analysis.lines)):
            return block
    return None


def _top_level_keys(analysis: DocumentAnalysis) -> list[SourcePos]:
    doc = analysis.doc
    if doc is None:
        return []
    return [doc.at(where) for path, where in doc.keys.items() if len(path) == 1]


def definition(view: View, line: int, column: int) -> list[Location]:
    """Where the block or ``$name`` at the position is defined."""
    blocks = {block.name: block for source in view.sources() for block in source.blocks}
    target = target_at(view.doc, line, column, set(blocks))
    if target is None:
        return []
    if target.kind == "block":
        return [_locate(blocks[target.name].pos, view)]
    return param_definitions(view, target.name, line)


def param_definitions(view: View, name: str, line: int) -> list[Location]:
    """A block argument of the block around ``line``, else the ``params`` entry of the spec (for a block
    library: of each open spec that uses it)."""
    block = block_at(view.doc, line)
    spec = view.doc.spec
    if block is not None and spec is not None and name in dict(block.args):
        return [_locate(spec.spots.pos("blocks", block.name, "args", name, key=True), view)]
    specs = [spec] if spec is not None and spec.layers is not None else [run.spec for run in view.runs if run.spec]
    return [_locate(s.spots.pos("params", name, key=True), view) for s in specs if name in s.params]


def references(view: View, name: str, include_declaration: bool) -> list[Location]:
    """Every call of block ``name`` (block calls and stages), in the files the view knows."""
    found: dict[tuple[str, int, int], Location] = {}
    for source in view.sources():
        for pos in _calls(source, name):
            location = _locate(pos, view)
            found.setdefault((location.path, pos.line, pos.col), location)
        if include_declaration:
            for block in source.blocks:
                if block.name == name:
                    location = _locate(block.pos, view)
                    found.setdefault((location.path, block.pos.line, block.pos.col), location)
    return sorted(found.values(), key=lambda loc: (loc.path, loc.span))


def _calls(source: ast.SpecAst, name: str) -> Iterator[SourcePos]:
    lists = [source.layers or (), *(block.layers for block in source.blocks)]
    for layers in lists:
        for layer in walk(layers):
            if isinstance(layer, ast.BlockUse) and layer.block == name:
                yield layer.pos
            elif isinstance(layer, ast.Stage) and layer.block == name:
                yield layer.spots.pos("block")
            if isinstance(layer, ast.Stage) and layer.first_block == name:
                yield layer.spots.pos("first_block")


def walk(layers: tuple[ast.Layer, ...]) -> Iterator[ast.Layer]:
    """Every layer of a list, nested ones included, in file order (a layer with `as:`/`from:` as the layer
    it wraps)."""
    for layer in layers:
        if isinstance(layer, ast.Tap):
            yield from walk((layer.layer,))
            continue
        yield layer
        if isinstance(layer, ast.Sequential):
            yield from walk(layer.layers)
        elif isinstance(layer, ast.Residual):
            yield from walk(layer.body)
            if isinstance(layer.shortcut, tuple):
                yield from walk(layer.shortcut)
        elif isinstance(layer, ast.Gate):
            yield from walk(layer.body)
        elif isinstance(layer, ast.Concat):
            for branch in layer.branches:
                yield from walk(branch)


def _locate(pos: SourcePos, view: View) -> Location:
    real = os.path.realpath(pos.file)
    return Location(real, token_span(view.lines(real), pos))
