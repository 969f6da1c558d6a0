"""Layout ops: flatten and permute."""

from __future__ import annotations

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.graph import Node


def emit_flatten(b: Builder, node: Node, x: Value) -> Value:
    return b.op(node, "Flatten", [x.name], b.out_shape(node), axis=1)


def emit_permute(b: Builder, node: Node, x: Value) -> Value:
    dims = [int(d) for d in node.attrs["dims"]]
    return b.op(node, "Transpose", [x.name], tuple(x.shape[d] for d in dims), perm=dims)


EMITTERS = {"flatten": emit_flatten, "permute": emit_permute}
