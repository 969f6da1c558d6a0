"""Layout ops: flatten and permute."""

from __future__ import annotations

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.graph import Node


def emit_flatten(b: Builder, node: Node, x: Value) -> Value:
    return b.op(node, "Flatten", [x.name], b.out_shape(node), axis=1)


def emit_permute(b: Builder, node: Node, x: Value) -> Value:
    """A Transpose, except between channel-first and channels-last when permutes are deferred: then the
    value is only marked (or unmarked) as channels-last and no node is emitted."""
    dims = [int(d) for d in node.attrs["dims"]]
    rank = len(dims)
    to_last, to_first = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
    if b.defer_permutes and rank >= 3:
        if not x.channels_last and dims == to_last:
            return Value(x.name, x.shape, channels_last=True, origin=node.path)
        if x.channels_last and dims == to_first:
            return Value(x.name, x.shape)
    x = b.materialize(x)
    return b.op(node, "Transpose", [x.name], tuple(x.shape[d] for d in dims), perm=dims)


EMITTERS = {"flatten": emit_flatten, "permute": emit_permute}
