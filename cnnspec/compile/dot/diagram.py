"""From the analysed graph to what gets drawn: boxes, clusters and labelled edges, collapsed by depth.

Depth (the same levels as ``cnnspec summary --depth``): the root model is at depth 0, its direct layers
and scopes at depth 1, what they contain at depth 2, and so on. With ``depth=N`` every scope at depth
>= N is drawn as one node showing its input and output shapes, parameters and MACs; shallower scopes
become clusters. ``depth=0`` draws the whole model as one node, ``depth=1`` the top-level layers with
stages collapsed, ``None`` everything.

Every edge is a value: from the box that made it to the box that reads it, labelled with its shape. The
shortcut of a residual is drawn dashed when it is the input itself, in the projection colour when it has
layers. Node ids come from paths (``layer1.0.conv1``); two stateless layers sharing a path get ``#2``,
``#3``; drawn-only nodes use ``@`` (``layer1.0@add``, ``@input``), which a path cannot contain.
Everything is built in execution order, so the same graph always gives the same diagram.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnspec.compile.dot import labels
from cnnspec.compile.dot.style import COMPACT_FAMILIES
from cnnspec.ir import Graph, Node, Scope
from cnnspec.ops import REGISTRY


@dataclass
class Box:
    """One drawn node. ``kind``: layer, block (a collapsed scope), plus (a sum), join (a concatenation or other
    merge), input, output."""

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


class _Builder:
    def __init__(self, graph: Graph, depth: int | None) -> None:
        self.graph = graph
        self.depth = depth
        self.edges: list[Edge] = []
        self.drawn: dict[int, str] = {}  # value -> the id of the box that made it
        self.on_shortcut: set[str] = set()  # ids of boxes drawn as part of a shortcut
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

    def connect(self, value: int, dst: str, style: str) -> None:
        text = labels.shape_text(self.graph.shapes[value])
        self.edges.append(Edge(self.drawn[value], dst, f"size {text}" if style == "size" else text, style))

    def members(self, scope: Scope, into: list[Box | Cluster], depth: int) -> None:
        for member in scope.members:
            if not member.active:
                continue
            if isinstance(member, Node):
                self.node(member, into)
            elif self.collapsed(depth):
                self.block(member, into)
            else:
                frame = Cluster(self.unique(f"cluster:{member.path}"), member.path, _scope_details(member),
                                _on_shortcut(member))
                into.append(frame)
                self.members(member, frame.members, depth + 1)

    def node(self, node: Node, into: list[Box | Cluster]) -> None:
        op = REGISTRY[node.op]
        if op.family == "merge" and not node.name:  # a merge the spec wrote as a structure: a small node
            caption = op.caption(node.attrs)
            box = Box(self.unique(f"{node.path}@{node.op}"), "plus" if caption == "+" else "join", "merge", caption,
                      tooltip=_merge_tip(node), projection=node.shortcut)
        else:
            box = leaf_box(node, self.unique(node.path), node.shortcut)
        into.append(box)
        for index, value in enumerate(node.inputs):
            self.connect(value, box.id, self.style(node, index, value))
        for value in node.outputs:
            self.drawn[value] = box.id
        if node.shortcut:
            self.on_shortcut.add(box.id)

    def style(self, node: Node, index: int, value: int) -> str:
        """An edge into a shortcut's layer is a projection edge; into a residual's add, the shortcut is the
        identity (the input itself) unless it comes from shortcut layers."""
        if index >= (REGISTRY[node.op].traits.inputs or len(node.inputs)):
            return "size"  # a tensor named for its size only (``upsample: {size_of: input}``)
        if node.shortcut:
            return "projection"
        if node.label == "residual add" and index > 0:
            return "projection" if self.drawn[value] in self.on_shortcut else "identity"
        return "main"

    def block(self, scope: Scope, into: list[Box | Cluster]) -> None:
        """A collapsed scope: one box; edges from what it reads, and what it makes comes from it."""
        shortcut = _on_shortcut(scope)
        box = block_box(scope, self.unique(scope.path), shortcut)
        into.append(box)
        for value in scope.inputs:
            self.connect(value, box.id, "projection" if shortcut else "main")
        for node in scope.nodes():
            for value in node.outputs:
                self.drawn[value] = box.id
        if shortcut:
            self.on_shortcut.add(box.id)


def leaf_box(node: Node, node_id: str, proj: bool) -> Box:
    """A layer: its caption, then its name and parameters (compact families: the caption alone)."""
    op = REGISTRY[node.op]
    if node.total_params:
        details = [f"{node.name} \u00b7 {labels.params_text(node)}"]
    elif node.name == node.op or op.family in COMPACT_FAMILIES:
        details = []
    else:
        details = [node.name]
    return Box(node_id, "layer", op.family, op.caption(node.attrs), details, labels.tooltip_text(node), proj)


def block_box(scope: Scope, node_id: str, proj: bool, title: str | None = None) -> Box:
    """A collapsed scope: its kind, input -> output shapes, params and MACs."""
    shapes = f"{labels.shape_text(scope.input_shape)} -> {labels.shape_text(scope.output_shape)}"
    details = [_scope_kind(scope), shapes]
    totals = labels.totals_text(scope)
    if totals:
        details.append(totals)
    return Box(node_id, "block", "block", title or scope.path, details, labels.tooltip_text(scope), proj)


def _on_shortcut(scope: Scope) -> bool:
    nodes = list(scope.nodes())
    return bool(nodes) and all(n.shortcut for n in nodes)


def _scope_kind(scope: Scope) -> str:
    return "projection shortcut" if _on_shortcut(scope) and scope.kind in ("projection", "sequential") \
        else labels.block_kind(scope)


def _scope_details(scope: Scope) -> list[str]:
    """One line under a cluster's title: ``stage: 2 x basic \u00b7 526k params, 411M MACs``."""
    totals = labels.totals_text(scope)
    return [f"{_scope_kind(scope)} \u00b7 {totals}" if totals else _scope_kind(scope)]


def _merge_tip(node: Node) -> str:
    what = "residual" if node.label == "residual add" else node.op
    return f"{what} in {node.path or 'model'}: {labels.shape_text(node.output_shape)}"


def build_diagram(graph: Graph, depth: int | None = None) -> Diagram:
    """The drawable form of ``graph``: input -> layers (clusters for expanded scopes) -> outputs."""
    b = _Builder(graph, depth)
    source = Box(b.unique("@input"), "input", "io", "input", [labels.shape_text(graph.input_shape)])
    members: list[Box | Cluster] = [source]
    for value in graph.inputs:
        b.drawn[value] = source.id
    if b.collapsed(0):
        whole = block_box(graph.root, b.unique("@model"), False, title=graph.name)
        members.append(whole)
        b.connect(graph.inputs[0], whole.id, "main")
        for node in graph.nodes:
            for value in node.outputs:
                b.drawn[value] = whole.id
    else:
        b.members(graph.root, members, 1)
    for name, value in graph.outputs:
        sink = Box(b.unique(f"@output{'.' + name if name else ''}"), "output", "io",
                   f"output {name}".strip(), [labels.shape_text(graph.shapes[value])])
        members.append(sink)
        b.connect(value, sink.id, "main")
    totals = labels.totals_text(graph.root)
    title = f"{graph.name}: {totals}" if totals else graph.name
    return Diagram(graph.name, title, members, b.edges)
