"""Document symbols: the layer tree of a spec as the analysed graph's scope tree, named by path
(``layer2``, ``layer2.0``, ``layer2.0.conv1``), each at the line that wrote it (the members of a block
instance, written in another file, at the call's line). A block library, or a spec that does not analyse,
gets its blocks and layers as written."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cnnspec import ir
from cnnspec.errors import SourcePos
from cnnspec.frontend import ast
from cnnspec.lsp.document import DocumentAnalysis
from cnnspec.lsp.layers import what
from cnnspec.lsp.navigation import walk
from cnnspec.lsp.text import Span, token_span
from cnnspec.ops.shape import fmt


@dataclass
class Symbol:
    name: str
    detail: str
    kind: str  # module (a scope), layer (a node), block (a block definition)
    selection: Span  # the key that wrote it
    children: list[Symbol] = field(default_factory=list)

    @property
    def span(self) -> Span:
        """The whole symbol: its key and every child written in this buffer."""
        spans = [self.selection, *(child.span for child in self.children)]
        first, last = min(spans), max(spans, key=lambda s: (s.end_line, s.end))
        return Span(first.line, first.start, last.end_line, last.end)


def symbols(analysis: DocumentAnalysis) -> list[Symbol]:
    graph = analysis.graph
    if graph is not None:
        return _members(graph.root, analysis, Span(0, 0, 0, 0))
    return _written(analysis)


def _members(scope: ir.Scope, analysis: DocumentAnalysis, outer: Span) -> list[Symbol]:
    out = []
    for member in scope.members:
        if not member.active:
            continue
        here = _span(member.pos, analysis, outer)
        shape = fmt(member.output_shape) if member.output_shape else "no shape"
        if isinstance(member, ir.Scope):
            out.append(Symbol(member.path, f"{what(member)} → {shape}", "module", here,
                              _members(member, analysis, here)))
        else:
            name = member.path if member.name else f"{member.path} {what(member)}".strip()
            out.append(Symbol(name, f"{what(member)} → {shape}", "layer", here))
    return out


def _span(pos: SourcePos, analysis: DocumentAnalysis, outer: Span) -> Span:
    """The member's key when written in this buffer, else the enclosing call's."""
    if os.path.realpath(pos.file) != analysis.real:
        return outer
    return token_span(analysis.lines, pos)


def _written(analysis: DocumentAnalysis) -> list[Symbol]:
    spec = analysis.spec
    if spec is None:
        return []
    out = [Symbol(block.name, f"block ({', '.join(name for name, _ in block.args)})", "block",
                  token_span(analysis.lines, block.pos), _layers(block.layers, analysis)) for block in spec.blocks]
    if spec.layers is not None:
        out.extend(_layers(spec.layers, analysis))
    return out


def _layers(layers: tuple[ast.Layer, ...], analysis: DocumentAnalysis) -> list[Symbol]:
    return [Symbol(_word(layer), "", "layer", token_span(analysis.lines, layer.pos))
            for layer in walk(layers) if not isinstance(layer, ast.Broken)]


def _word(layer: ast.Layer) -> str:
    if isinstance(layer, ast.OpCall):
        return layer.op
    if isinstance(layer, ast.BlockUse):
        return layer.block
    return type(layer).__name__.lower()
