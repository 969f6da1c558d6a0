"""max/avg/sum pooling, adaptive and global pooling.

``ceil_mode`` is never handed to onnxruntime: the end padding is widened until the pool yields the static
output size cnnspec computed with PyTorch's rule (the last window may not start in the right padding).
Padding that ONNX pools ignore (MaxPool, AveragePool with ``count_include_pad=0``) is exactly PyTorch's
treatment of that overhang, so the result matches without relying on each runtime's ceil rule."""

from __future__ import annotations

import math

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.compile.onnx.ops.conv import pad_spatial
from cnnspec.graph import Node


def _window_pads(node: Node, x: Value) -> tuple[list[int], list[int]]:
    """(declared pads begin+end, pads with the ceil-mode overhang added at the end)."""
    a = node.attrs
    padding = list(a["padding"])
    dilation = list(a.get("dilation", [1] * len(padding)))
    out = node.output_shape[1:]
    ends = []
    for length, k, s, p, d, o in zip(x.shape[2:], a["kernel"], a["stride"], padding, dilation, out, strict=True):
        ends.append(max(p, (o - 1) * s + d * (k - 1) + 1 - int(length) - p))
    return [*padding, *padding], [*padding, *ends]


def _pool_attrs(node: Node, pads: list[int]) -> dict:
    return {"kernel_shape": list(node.attrs["kernel"]), "strides": list(node.attrs["stride"]), "pads": pads}


def emit_maxpool(b: Builder, node: Node, x: Value) -> Value:
    _, pads = _window_pads(node, x)
    rank = len(pads) // 2
    dilated = any(d > 1 for d in node.attrs["dilation"]) and any(pads)
    if dilated or any(p >= k for p, k in zip(pads, [*node.attrs["kernel"]] * 2, strict=True)):
        # onnxruntime wants pads smaller than the kernel, and a dilated window can see padding only,
        # where onnxruntime gives the lowest float and PyTorch -inf: pad with -inf explicitly
        x = pad_spatial(b, node, x, pads, "constant", value=float("-inf"))
        pads = [0] * (2 * rank)
    return b.op(node, "MaxPool", [x.name], b.out_shape(node), dilations=list(node.attrs["dilation"]),
                **_pool_attrs(node, pads))


def emit_avgpool(b: Builder, node: Node, x: Value) -> Value:
    declared, pads = _window_pads(node, x)
    include = bool(node.attrs.get("count_include_pad", True))
    if include and pads != declared:
        # PyTorch divides by the window clipped to the declared padding, never by the ceil overhang
        if any(declared):
            x = pad_spatial(b, node, x, declared, "constant")
            rank = len(pads) // 2
            pads = [0] * rank + [e - p for e, p in zip(pads[rank:], declared[rank:], strict=True)]
        include = False
    return b.op(node, "AveragePool", [x.name], b.out_shape(node), count_include_pad=int(include),
                **_pool_attrs(node, pads))


def emit_sumpool(b: Builder, node: Node, x: Value) -> Value:
    """Window sums: an average over every window position (padding included) times the window size."""
    _, pads = _window_pads(node, x)
    shape = b.out_shape(node)
    avg = b.op(node, "AveragePool", [x.name], shape, suffix="AveragePool", count_include_pad=1,
               **_pool_attrs(node, pads))
    size = b.const(f"{node.path}/window", math.prod(node.attrs["kernel"]))
    return b.op(node, "Mul", [avg.name, size], shape)


def emit_global(op_type: str):
    def emit(b: Builder, node: Node, x: Value) -> Value:
        return b.op(node, op_type, [x.name], b.out_shape(node))

    return emit


def emit_adaptive(kind: str):
    """Adaptive pooling: one strided pool when every size divides, else PyTorch's windows
    [floor(i*L/o), ceil((i+1)*L/o)) one axis at a time (max and mean over a box are separable)."""
    pool, reduce = ("MaxPool", "ReduceMax") if kind == "max" else ("AveragePool", "ReduceMean")

    def emit(b: Builder, node: Node, x: Value) -> Value:
        sizes = [int(d) for d in x.shape[2:]]
        outs = list(node.attrs["out"])
        if all(o == 1 for o in outs):
            return b.op(node, "Global" + pool, [x.name], b.out_shape(node))
        if all(length % o == 0 for length, o in zip(sizes, outs, strict=True)):
            kernel = [length // o for length, o in zip(sizes, outs, strict=True)]
            return b.op(node, pool, [x.name], b.out_shape(node), kernel_shape=kernel, strides=kernel)
        todo = [(axis, o) for axis, (length, o) in enumerate(zip(sizes, outs, strict=True), start=2) if length != o]
        for axis, o in todo:
            x = _adaptive_axis(b, node, x, axis, o, reduce, last=axis == todo[-1][0])
        return x

    return emit


def _adaptive_axis(b: Builder, node: Node, x: Value, axis: int, out: int, reduce: str, last: bool) -> Value:
    length = int(x.shape[axis])
    cell_shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    cells = []
    axes = b.ints(f"{node.path}/axis{axis}", [axis])
    for i in range(out):
        start, end = (i * length) // out, -((-(i + 1) * length) // out)
        part = b.op(node, "Slice", [x.name, b.ints(f"{node.path}/start", [start]), b.ints(f"{node.path}/end", [end]),
                                    axes], tuple(end - start if j == axis else d for j, d in enumerate(x.shape)),
                    suffix=f"Slice{axis}_{i}")
        cells.append(b.op(node, reduce, [part.name, axes], cell_shape, suffix=f"{reduce}{axis}_{i}", keepdims=1).name)
    shape = tuple(out if i == axis else d for i, d in enumerate(x.shape))
    return b.op(node, "Concat", cells, shape, suffix=None if last else f"Concat{axis}", axis=axis)


EMITTERS = {
    "maxpool": emit_maxpool,
    "avgpool": emit_avgpool,
    "sumpool": emit_sumpool,
    "adaptive_avgpool": emit_adaptive("avg"),
    "adaptive_maxpool": emit_adaptive("max"),
    "global_avgpool": emit_global("GlobalAveragePool"),
    "global_maxpool": emit_global("GlobalMaxPool"),
}
