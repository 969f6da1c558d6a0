"""linear (flat features, last axis, or over the channels of a channel-first tensor) and layer scale."""

from __future__ import annotations

from dataclasses import replace

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.graph import Node

# How a linear over channels (a pointwise layer on NCHW) is written: "conv" (a 1x1 Conv with the weight
# viewed as (out, in, 1, 1): no layout change) or "transpose" (to channels-last, MatMul, back: what
# torch.onnx exports for movedim + Linear). Chosen by measurement: see docs/onnx-backend.md.
CHANNEL_LINEAR = "conv"


def emit_linear(b: Builder, node: Node, x: Value) -> Value:
    over = node.attrs.get("over", "features")
    if len(x.shape) == 2:
        inputs = [x.name, b.param(node, "weight")]
        if node.attrs.get("bias", True):
            inputs.append(b.param(node, "bias"))
        return b.op(node, "Gemm", inputs, b.out_shape(node), transB=1)
    if x.channels_last:  # the logical last axis is the physical channel axis
        y = _over_channels(b, node, x, b.out_shape(node, channels_last=True))
        return replace(y, channels_last=True, origin=x.origin)
    if over == "channels":
        return _over_channels(b, node, x, b.out_shape(node))
    return _matmul(b, node, x)


def _over_channels(b: Builder, node: Node, x: Value, shape: tuple) -> Value:
    if CHANNEL_LINEAR == "conv":
        return _pointwise_conv(b, node, x, shape)
    rank = len(x.shape)
    to_last, back = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
    t = b.op(node, "Transpose", [x.name], tuple(x.shape[i] for i in to_last), suffix="ToLast", perm=to_last)
    y = _matmul(b, node, t, suffix="MatMulLast")
    return b.op(node, "Transpose", [y.name], shape, perm=back)


def _matmul(b: Builder, node: Node, x: Value, suffix: str | None = None) -> Value:
    """x @ weight.T (+ bias) on the last axis; the weight is stored transposed, as MatMul reads it."""
    out = int(node.attrs["out_features"])
    shape = (*x.shape[:-1], out)
    has_bias = node.attrs.get("bias", True)
    y = b.op(node, "MatMul", [x.name, b.param(node, "weight", transpose=True)], shape,
             suffix="MatMul" if has_bias else suffix)
    if has_bias:
        y = b.op(node, "Add", [y.name, b.param(node, "bias")], shape, suffix=suffix)
    return y


def _pointwise_conv(b: Builder, node: Node, x: Value, shape: tuple) -> Value:
    spatial = len(x.shape) - 2
    out, inp = int(node.attrs["out_features"]), int(node.attrs["in_features"])
    inputs = [x.name, b.param(node, "weight", (out, inp) + (1,) * spatial)]
    if node.attrs.get("bias", True):
        inputs.append(b.param(node, "bias"))
    return b.op(node, "Conv", inputs, shape, kernel_shape=[1] * spatial)


def emit_layer_scale(b: Builder, node: Node, x: Value) -> Value:
    """out = scale * x; the scale (a parameter of the enclosing module) already broadcasts: (C, 1, 1)."""
    return b.op(node, "Mul", [x.name, b.param(node, "")], x.shape)


EMITTERS = {"linear": emit_linear, "layer_scale": emit_layer_scale}
