"""Walk the analysed graph in execution order and emit every leaf through ``EMITTERS``.

Channels-last regions are emitted without their permutes: a ``permute`` to channels-last (ConvNeXt's
``[0, 2, 3, 1]``) only marks the value, the ops that follow work on the physical channel-first tensor
(a layernorm over the last axis becomes one over axis 1, a linear over the last axis a 1x1 Conv,
activations are unchanged), and the permute back is a no-op. Any other op first gets a real Transpose.
onnxruntime's CPU kernels are channel-first, so this removes every Transpose from such blocks."""

from __future__ import annotations

from dataclasses import replace

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.compile.onnx.registry import EMITTERS
from cnnspec.errors import SpecError
from cnnspec.graph import Node

# ops whose emitters take a channels-last value (layernorm and linear only over the last axis)
CHANNELS_LAST_AWARE = frozenset({"layernorm", "linear", "permute"})
ELEMENTWISE = frozenset({"relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "identity", "dropout",
                         "stochastic_depth"})


def emit_graph(b: Builder, root: Node, x: Value) -> Value:
    return b.materialize(emit_node(b, root, x, ""))


def emit_node(b: Builder, node: Node, x: Value, scope: str) -> Value:
    """Emit ``node`` on input ``x``; ``scope`` is the enclosing scope's path (names residual adds)."""
    if node.is_scope:
        for child in node.children:
            x = emit_node(b, child, x, node.path)
        return x
    if node.op == "residual":
        return _residual(b, node, b.materialize(x), scope)
    if node.op == "concat":
        return _concat(b, node, b.materialize(x), scope)
    emitter = EMITTERS.get(node.op)
    if emitter is None:
        raise SpecError(f"the ONNX compiler has no emitter for op '{node.op}' ({node.path})", node.pos)
    if x.channels_last and not _takes_channels_last(node):
        x = b.materialize(x)
    y = emitter(b, node, x)
    if node.op in ELEMENTWISE:
        y = replace(y, channels_last=x.channels_last, origin=x.origin)
    b.produced.append((y, node))
    return y


def _takes_channels_last(node: Node) -> bool:
    if node.op in ELEMENTWISE or node.op == "permute":
        return True
    return node.op in CHANNELS_LAST_AWARE and node.attrs.get("over") == "last"


def _branch(b: Builder, branch: list[Node], x: Value, scope: str) -> Value:
    for child in branch:
        x = emit_node(b, child, x, scope)
    return b.materialize(x)


def _join(scope: str, what: str) -> str:
    return f"{scope}/{what}" if scope else what


def _residual(b: Builder, node: Node, x: Value, scope: str) -> Value:
    body = _branch(b, node.branches[0], x, scope)
    shortcut = _branch(b, node.branches[1], x, scope) if len(node.branches) > 1 else x
    return b.raw_op(_join(scope, "add"), "Add", [body.name, shortcut.name], (b.batch, *node.output_shape))


def _concat(b: Builder, node: Node, x: Value, scope: str) -> Value:
    parts = [_branch(b, branch, x, scope).name for branch in node.branches]
    return b.raw_op(_join(scope, "concat"), "Concat", parts, (b.batch, *node.output_shape), axis=1)
