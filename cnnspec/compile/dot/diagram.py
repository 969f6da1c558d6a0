"""From the analysed tree to what gets drawn: boxes, clusters and labelled edges, collapsed by depth.

Depth (the same levels as ``cnnspec summary --depth``): the root model is at depth 0, its direct layers
and scopes at depth 1, what they contain at depth 2, and so on; a ``residual`` or ``concat`` is a level
too (its branches sit one deeper). With ``depth=N`` every scope, residual or concat at depth >= N is
drawn as one node showing its input and output shapes, parameters and MACs; shallower scopes become
clusters and shallower residuals/concats are drawn with their branches. ``depth=0`` draws the whole
model as one node, ``depth=1`` the top-level layers with stages collapsed, ``None`` everything.

Node ids come from paths (``layer1.0.conv1``); two stateless layers sharing a path get ``#2``, ``#3``;
drawn-only nodes use ``@`` (``layer1.0@add``, ``@input``), which a path cannot contain. Everything is
built in execution order, so the same graph always gives the same diagram.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.compile.dot import labels
from cnnspec.compile.dot.style import COMPACT_FAMILIES, family
from cnnspec.graph import Graph, Node, Shape


@dataclass
class Box:
    """One drawn node. ``kind``: layer, block (a collapsed scope), add, concat, input, output."""

    id: str
    kind: str
    family: str
    title: str
    details: list[str] = field(default_factory=list)
    tooltip: str = ""
    projection: bool = False


@dataclass
class Cluster:
    """An expanded scope: a titled frame around its members."""

    id: str
    title: str
    details: list[str]
    projection: bool = False
    members: list[Box | Cluster] = field(default_factory=list)


@dataclass
class Edge:
    """A tensor flowing from ``src`` to ``dst``; ``style`` is main, identity or projection."""

    src: str
    dst: str
    label: str
    style: str = "main"


@dataclass
class Diagram:
    name: str
    title: str
    members: list[Box | Cluster]
    edges: list[Edge]

    def boxes(self) -> list[Box]:
        out: list[Box] = []
        _collect(self.members, out)
        return out


def _collect(members: list[Box | Cluster], out: list[Box]) -> None:
    for m in members:
        if isinstance(m, Box):
            out.append(m)
        else:
            _collect(m.members, out)


@dataclass(frozen=True)
class _Tensor:
    """What flows out of a drawn node: its id and shape."""

    src: str
    shape: Shape


class _Builder:
    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.edges: list[Edge] = []
        self._used: set[str] = set()

    def unique(self, base: str) -> str:
        node_id, k = base, 1
        while node_id in self._used:
            k += 1
            node_id = f"{base}#{k}"
        self._used.add(node_id)
        return node_id

    def collapsed(self, depth: int) -> bool:
        return self.depth is not None and depth >= self.depth

    def connect(self, t: _Tensor, dst: str, style: str) -> None:
        self.edges.append(Edge(t.src, dst, labels.shape_text(t.shape), style))

    def sequence(self, nodes: list[Node], t: _Tensor, into: list[Box | Cluster], depth: int,
                 proj: bool) -> _Tensor:
        for node in nodes:
            t = self.node(node, t, into, depth, proj)
        return t

    def node(self, node: Node, t: _Tensor, into: list[Box | Cluster], depth: int, proj: bool) -> _Tensor:
        if node.is_leaf:
            box = leaf_box(node, self.unique(node.path), proj)
        elif self.collapsed(depth):
            base = node.path if node.is_scope else f"{node.path}@{node.op}"
            box = block_box(node, self.unique(base), proj)
        elif node.op == "residual":
            return self.residual(node, t, into, depth, proj)
        elif node.op == "concat":
            return self.concat(node, t, into, depth, proj)
        else:
            return self.cluster(node, t, into, depth, proj)
        into.append(box)
        self.connect(t, box.id, "projection" if proj else "main")
        return _Tensor(box.id, node.output_shape)

    def cluster(self, node: Node, t: _Tensor, into: list[Box | Cluster], depth: int,
                proj: bool) -> _Tensor:
        frame = Cluster(self.unique(f"cluster:{node.path}"), node.path, _scope_details(node, proj), proj)
        into.append(frame)
        return self.sequence(node.children, t, frame.members, depth + 1, proj)

    def residual(self, node: Node, t: _Tensor, into: list[Box | Cluster], depth: int,
                 proj: bool) -> _Tensor:
        body = node.branches[0] if node.branches else []
        shortcut = node.branches[1] if len(node.branches) > 1 else []
        out = self.sequence(body, t, into, depth + 1, proj)
        add = Box(self.unique(f"{node.path}@add"), "add", "merge", "+", tooltip=_merge_tip(node),
                  projection=proj)
        if shortcut:
            short = self.sequence(shortcut, t, into, depth + 1, True)
            style = "projection"
        else:
            short, style = t, "identity"
        into.append(add)
        self.connect(out, add.id, "projection" if proj else "main")
        self.connect(short, add.id, style)
        return _Tensor(add.id, node.output_shape)

    def concat(self, node: Node, t: _Tensor, into: list[Box | Cluster], depth: int, proj: bool) -> _Tensor:
        join = Box(self.unique(f"{node.path}@concat"), "concat", "merge", "concat", tooltip=_merge_tip(node),
                   projection=proj)
        ends = [self.sequence(branch, t, into, depth + 1, proj) for branch in node.branches]
        into.append(join)
        for end in ends:
            self.connect(end, join.id, "projection" if proj else "main")
        return _Tensor(join.id, node.output_shape)


def leaf_box(node: Node, node_id: str, proj: bool) -> Box:
    """A layer: its caption, then its name and parameters (compact families: the caption alone)."""
    fam = family(node.op)
    if node.total_params:
        details = [f"{node.name} \u00b7 {labels.params_text(node)}"]
    elif node.name == node.op or fam in COMPACT_FAMILIES:
        details = []
    else:
        details = [node.name]
    return Box(node_id, "layer", fam, labels.op_caption(node), details, labels.tooltip_text(node), proj)


def block_box(node: Node, node_id: str, proj: bool, title: str | None = None) -> Box:
    """A collapsed scope, residual or concat: its kind, input -> output shapes, params and MACs."""
    shapes = f"{labels.shape_text(node.input_shape)} -> {labels.shape_text(node.output_shape)}"
    details = [_scope_kind(node, proj), shapes]
    totals = labels.totals_text(node)
    if totals:
        details.append(totals)
    if title is None:
        title = f"{node.path} {node.op}".strip() if node.op in ("residual", "concat") else node.path
    return Box(node_id, "block", "block", title, details, labels.tooltip_text(node), proj)


def _scope_kind(node: Node, proj: bool) -> str:
    if node.op == "residual":
        shortcut = node.branches[1] if len(node.branches) > 1 else []
        return "projection shortcut" if shortcut else "identity shortcut"
    if node.op == "concat":
        return f"{len(node.branches)} branches"
    return "projection shortcut" if proj and node.op == "sequential" else labels.block_kind(node)


def _scope_details(node: Node, proj: bool) -> list[str]:
    """One line under a cluster's title: ``stage: 2 x basic \u00b7 526k params, 411M MACs``."""
    totals = labels.totals_text(node)
    return [f"{_scope_kind(node, proj)} \u00b7 {totals}" if totals else _scope_kind(node, proj)]


def _merge_tip(node: Node) -> str:
    return f"{node.op} in {node.path or 'model'}: {labels.shape_text(node.output_shape)}"


def build_diagram(graph: Graph, depth: int | None = None) -> Diagram:
    """The drawable form of ``graph``: input -> layers (clusters for expanded scopes) -> output."""
    b = _Builder(depth)
    source = Box(b.unique("@input"), "input", "io", "input", [labels.shape_text(graph.input_shape)])
    members: list[Box | Cluster] = [source]
    start = _Tensor(source.id, graph.input_shape)
    if b.collapsed(0):
        whole = block_box(graph.root, b.unique("@model"), False, title=graph.name)
        members.append(whole)
        b.connect(start, whole.id, "main")
        end = _Tensor(whole.id, graph.output_shape)
    else:
        end = b.sequence(graph.root.children, start, members, 1, False)
    sink = Box(b.unique("@output"), "output", "io", "output", [labels.shape_text(graph.output_shape)])
    members.append(sink)
    b.connect(end, sink.id, "main")
    totals = labels.totals_text(graph.root)
    title = f"{graph.name}: {totals}" if totals else graph.name
    return Diagram(graph.name, title, members, b.edges)
