"""Hand-built analysed graphs for diagram cases no zoo spec has: concat branches (one of them empty) and
names that need escaping (a spec cannot even write some of them). Shapes, params and MACs follow the
textbook rules (2D, PyTorch's output-size formula), only for the ops these fixtures use."""

from __future__ import annotations

from cnnspec.graph import Graph, Node, Shape, SourcePos

POS = SourcePos("fixture.yaml", 1, 1)


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def leaf(op: str, name: str, path: str, shape: Shape, **kw: object) -> Node:
    """One analysed leaf taking ``shape``; conv/pool/linear/flatten/global_avgpool change it."""
    attrs: dict[str, object] = {}
    out, params, macs = shape, 0, 0
    if op == "conv":
        k, s, p, c = kw["kernel"], kw.get("stride", 1), kw.get("padding", 0), kw["out"]
        groups = kw.get("groups", 1)
        out = (c, _out(shape[1], k, s, p), _out(shape[2], k, s, p))
        attrs = {"in_channels": shape[0], "out_channels": c, "kernel": (k, k), "stride": (s, s),
                 "dilation": (1, 1), "padding": (p, p), "groups": groups, "bias": kw.get("bias", False)}
        params = c * shape[0] // groups * k * k + (c if attrs["bias"] else 0)
        macs = c * shape[0] // groups * k * k * out[1] * out[2]
    elif op in ("maxpool", "avgpool"):
        k, s, p = kw["kernel"], kw.get("stride", kw["kernel"]), kw.get("padding", 0)
        out = (shape[0], _out(shape[1], k, s, p), _out(shape[2], k, s, p))
        attrs = {"kernel": (k, k), "stride": (s, s), "padding": (p, p)}
    elif op == "batchnorm":
        params = 2 * shape[0]
    elif op == "global_avgpool":
        out = (shape[0], 1, 1)
    elif op == "flatten":
        n = 1
        for d in shape:
            n *= d
        out = (n,)
    elif op == "linear":
        out = (kw["out"],)
        attrs = {"in_features": shape[0], "out_features": kw["out"], "bias": True, "over": "features"}
        params, macs = shape[0] * kw["out"] + kw["out"], shape[0] * kw["out"]
    node = Node(op, name, path, POS, attrs=attrs, input_shape=shape, output_shape=out, macs=macs)
    node.total_params = node.total_trainable = params
    node.total_macs = macs
    return node


def seq_total(node: Node, members: list[Node], shape: Shape) -> Node:
    node.input_shape = shape
    node.output_shape = members[-1].output_shape if members else shape
    node.total_params = node.total_trainable = sum(m.total_params for m in members)
    node.total_macs = sum(m.total_macs for m in members)
    return node


def chain(prefix: str, shape: Shape, layers: list[tuple[str, str, dict]]) -> list[Node]:
    """Leaves one after the other: ``(op, name, settings)``; paths are ``prefix.name``."""
    out: list[Node] = []
    for op, name, kw in layers:
        path = f"{prefix}.{name}" if prefix else name
        out.append(leaf(op, name, path, shape, **kw))
        shape = out[-1].output_shape
    return out


def residual(path: str, shape: Shape, body: list[Node], shortcut: list[Node]) -> Node:
    node = Node("residual", "", path, POS, branches=[body, shortcut])
    return seq_total(node, body + shortcut, shape) if body else node


def concat(path: str, shape: Shape, branches: list[list[Node]]) -> Node:
    node = Node("concat", "", path, POS, branches=branches)
    seq_total(node, [n for b in branches for n in b], shape)
    channels = sum(b[-1].output_shape[0] if b else shape[0] for b in branches)
    node.output_shape = (channels, *shape[1:])
    return node


def graph(name: str, shape: Shape, layers: list[Node]) -> Graph:
    root = seq_total(Node("model", name, "", POS, children=layers), layers, shape)
    return Graph(name, "fixture.yaml", root, shape, {})


def inception_like() -> Graph:
    """A concat with three branches, one of them empty (the input passed through)."""
    shape: Shape = (8, 16, 16)
    b1 = chain("", shape, [("conv", "b1", {"out": 4, "kernel": 1})])
    b2 = chain("", shape, [("conv", "b2a", {"out": 4, "kernel": 1}), ("relu", "b2r", {}),
                           ("conv", "b2b", {"out": 6, "kernel": 3, "padding": 1})])
    cat = concat("", shape, [b1, b2, []])
    tail = chain("", cat.output_shape, [("global_avgpool", "pool", {}), ("flatten", "flat", {}),
                                        ("linear", "head", {"out": 3})])
    return graph("inception_like", shape, [cat, *tail])


def odd_names() -> Graph:
    """Names that need quoting in DOT: quotes, backslashes, HTML metacharacters, unicode."""
    shape: Shape = (3, 8, 8)
    layers = chain("", shape, [("conv", 'c"1\\x', {"out": 4, "kernel": 3}), ("relu", "<b>&amp;", {}),
                               ("flatten", "ü}{", {}), ("linear", "cluster_x", {"out": 2})])
    return graph('odd "model"', shape, layers)
