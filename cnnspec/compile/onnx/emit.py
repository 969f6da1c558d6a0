"""Walk the analysed graph in execution order and emit every leaf through ``EMITTERS``."""

from __future__ import annotations

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.compile.onnx.registry import EMITTERS
from cnnspec.errors import SpecError
from cnnspec.graph import Node


def emit_node(b: Builder, node: Node, x: Value, scope: str) -> Value:
    """Emit ``node`` on input ``x``; ``scope`` is the enclosing scope's path (names residual adds)."""
    if node.is_scope:
        for child in node.children:
            x = emit_node(b, child, x, node.path)
        return x
    if node.op == "residual":
        return _residual(b, node, x, scope)
    if node.op == "concat":
        return _concat(b, node, x, scope)
    emitter = EMITTERS.get(node.op)
    if emitter is None:
        raise SpecError(f"the ONNX compiler has no emitter for op '{node.op}' ({node.path})", node.pos)
    return emitter(b, node, x)


def _branch(b: Builder, branch: list[Node], x: Value, scope: str) -> Value:
    for child in branch:
        x = emit_node(b, child, x, scope)
    return x


def _join(scope: str, what: str) -> str:
    return f"{scope}/{what}" if scope else what


def _residual(b: Builder, node: Node, x: Value, scope: str) -> Value:
    body = _branch(b, node.branches[0], x, scope)
    shortcut = _branch(b, node.branches[1], x, scope) if len(node.branches) > 1 else x
    return b.raw_op(_join(scope, "add"), "Add", [body.name, shortcut.name], (b.batch, *node.output_shape))


def _concat(b: Builder, node: Node, x: Value, scope: str) -> Value:
    parts = [_branch(b, branch, x, scope).name for branch in node.branches]
    return b.raw_op(_join(scope, "concat"), "Concat", parts, (b.batch, *node.output_shape), axis=1)
