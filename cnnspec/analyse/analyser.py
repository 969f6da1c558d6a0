"""Stage 4, analyse: walk the resolved tree, feeding each node its input shape.

Fills every node's shapes, tensors, MACs, receptive field and subtree totals; builds automatic
projection shortcuts (they depend on shapes); checks that residual and concat branches agree. Errors
point at the setting at fault where there is one, else at the layer."""

from __future__ import annotations

from cnnspec.analyse.rules import RULES, RuleError, fmt, prod
from cnnspec.errors import SpecError
from cnnspec.graph import Node, Shape
from cnnspec.validate.ops import OPS

RF = tuple[tuple[int, int], ...]  # (size, jump) per spatial axis of the model's input


def analyse(root: Node, input_shape: Shape) -> None:
    """Analyse the tree under ``root`` for an input of ``input_shape`` (no batch axis), in place."""
    rf: RF = tuple((1, 1) for _ in input_shape[1:])
    _run(root, input_shape, rf)


def _run(node: Node, shape: Shape, rf: RF) -> tuple[Shape, RF]:
    node.input_shape = shape
    if node.is_leaf:
        shape, rf = _leaf(node, shape, rf)
    elif node.op == "residual":
        shape, rf = _residual(node, shape, rf)
    elif node.op == "concat":
        shape, rf = _concat(node, shape, rf)
    else:
        for child in node.children:
            shape, rf = _run(child, shape, rf)
    node.output_shape = shape
    node.rf_size, node.rf_stride = (tuple(axis) for axis in zip(*rf)) if rf else ((), ())
    _totals(node)
    return shape, rf


def _label(node: Node) -> str:
    return f"{node.op} `{node.path}`" if node.path else node.op


def _leaf(node: Node, shape: Shape, rf: RF) -> tuple[Shape, RF]:
    try:
        result = RULES[node.op](node.settings, shape, _label(node))
    except RuleError as exc:
        raise SpecError(exc.message, node.field_pos.get(exc.field or "", node.pos)) from None
    node.attrs, node.params, node.buffers, node.macs = result.attrs, result.params, result.buffers, result.macs
    if result.window is not None and len(result.window) == len(rf):
        rf = tuple((size + (k - 1) * jump, jump * s) for (size, jump), (k, s) in zip(rf, result.window))
    elif result.whole and len(shape) - 1 == len(rf):
        rf = tuple((size + (length - 1) * jump, jump * length) for (size, jump), length in zip(rf, shape[1:]))
    return result.shape, rf


def _branch(nodes: list[Node], shape: Shape, rf: RF) -> tuple[Shape, RF]:
    for child in nodes:
        shape, rf = _run(child, shape, rf)
    return shape, rf


def _merge_rf(a: RF, b: RF) -> RF:
    return tuple((max(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b))


def _residual(node: Node, shape: Shape, rf: RF) -> tuple[Shape, RF]:
    body_shape, body_rf = _branch(node.branches[0], shape, rf)
    projection = node.attrs.get("projection")
    if projection is not None:
        node.branches[1] = _projection(node, projection, shape, body_shape)
    short_shape, short_rf = _branch(node.branches[1], shape, rf)
    if body_shape != short_shape:
        hint = ("; add `shortcut: {projection: auto}` to project the input" if projection is None and
                not node.branches[1] else "")
        raise SpecError(f"residual add: the body gives {fmt(body_shape)} but the shortcut gives "
                        f"{fmt(short_shape)}{hint}", node.pos)
    node.activation_elems = prod(body_shape)
    return body_shape, _merge_rf(body_rf, short_rf)


def _projection(node: Node, projection: dict, shape: Shape, body_shape: Shape) -> list[Node]:
    """torchvision's downsample: 1x1 conv (no bias) with the stride that matches the body, plus batchnorm."""
    if projection["mode"] == "auto" and body_shape == shape:
        return []
    if len(body_shape) != len(shape) or len(shape) < 2:
        raise SpecError(f"residual add: cannot project a {fmt(shape)} input onto the body's {fmt(body_shape)} "
                        "output with a 1x1 conv", projection["pos"])
    strides = []
    for length, target in zip(shape[1:], body_shape[1:]):
        stride = projection_stride(length, target)
        if stride is None:
            raise SpecError(f"residual add: no 1x1 conv stride turns the input {fmt(shape)} into the body's "
                            f"{fmt(body_shape)}", projection["pos"])
        strides.append(stride)
    path, pos = projection["path"], projection["pos"]
    conv_settings = OPS["conv"](out=body_shape[0], kernel=1, stride=strides, bias=False).model_dump(exclude={"name"})
    children = [Node(op="conv", name="0", path=f"{path}.0", pos=pos, settings=conv_settings)]
    if projection["norm"] == "batchnorm":
        bn_settings = OPS["batchnorm"]().model_dump(exclude={"name"})
        children.append(Node(op="batchnorm", name="1", path=f"{path}.1", pos=pos, settings=bn_settings))
    return [Node(op="sequential", name=projection["name"], path=path, pos=pos, children=children)]


def projection_stride(length: int, target: int) -> int | None:
    """The smallest stride s of a 1x1 conv taking ``length`` to ``target`` (conv_length(length, 1, s, 0, 1),
    i.e. (L - 1) // s + 1 == target), or None. Closed form: a search up to L hung on a 10^12 input."""
    m, t = length - 1, target - 1
    if t < 0 or length < 1:
        return None
    if t == 0:
        return length
    stride = m // (t + 1) + 1  # the smallest s with m // s <= t
    return stride if m // stride == t else None


def _concat(node: Node, shape: Shape, rf: RF) -> tuple[Shape, RF]:
    outs = [_branch(branch, shape, rf) for branch in node.branches]
    first = outs[0][0]
    for index, (out, _) in enumerate(outs[1:], start=2):
        if len(out) != len(first) or out[1:] != first[1:]:
            raise SpecError(f"concat: branch {index} gives {fmt(out)} but branch 1 gives {fmt(first)}; all "
                            "branches must agree on everything but the channels", node.pos)
    merged = (sum(out[0] for out, _ in outs), *first[1:])
    merged_rf = outs[0][1]
    for _, branch_rf in outs[1:]:
        merged_rf = _merge_rf(merged_rf, branch_rf)
    node.activation_elems = prod(merged)
    return merged, merged_rf


def _totals(node: Node) -> None:
    if node.is_leaf:
        numels = [(t.numel, t.trainable) for t in node.params]
        node.total_params = sum(n for n, _ in numels)
        node.total_trainable = sum(n for n, trainable in numels if trainable)
        node.total_buffers = sum(t.numel for t in node.buffers)
        node.total_macs = node.macs
        node.activation_elems = prod(node.output_shape)
        return
    params = trainable = buffers = macs = elems = 0
    for child in node.child_nodes():
        params += child.total_params
        trainable += child.total_trainable
        buffers += child.total_buffers
        macs += child.total_macs
        elems += child.activation_elems
    node.total_params, node.total_trainable, node.total_buffers, node.total_macs = params, trainable, buffers, macs
    own = node.activation_elems if node.op in ("residual", "concat") else 0
    node.activation_elems = own + elems
