"""batchnorm (inference), layernorm (last axis or over channels), groupnorm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.graph import Node

# How a channel LayerNorm (ConvNeXt's LayerNorm2d) is written for NCHW tensors: "reduce" (ReduceMean over
# axis 1, no layout change) or "transpose" (to channels-last, LayerNormalization, back: what torch.onnx
# exports). Chosen by measurement in onnxruntime: see docs/onnx-backend.md.
CHANNEL_LAYERNORM = "transpose"


def _channel_view(x: Value) -> tuple[int, ...]:
    """The shape (C, 1, 1, ...) that broadcasts a per-channel vector over ``x``."""
    return (int(x.shape[1]),) + (1,) * (len(x.shape) - 2)


def _scale_shift(b: Builder, node: Node, x: Value, y: Value) -> Value:
    """y * weight + bias with per-channel affine parameters (skipped when the layer has none)."""
    if not node.attrs.get("affine", True):
        return y
    view = _channel_view(x)
    y = b.op(node, "Mul", [y.name, b.param(node, "weight", view)], x.shape, suffix="Scale")
    return b.op(node, "Add", [y.name, b.param(node, "bias", view)], x.shape)


def _normalize(b: Builder, node: Node, x: Value, axes: Sequence[int], eps: float, last: bool) -> Value:
    """(x - mean) / sqrt(var + eps) with mean and biased var over ``axes``; the final node takes the
    layer's own name when ``last``."""
    stat_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    ax = b.ints(f"{node.path}/axes", list(axes))
    mean = b.op(node, "ReduceMean", [x.name, ax], stat_shape, suffix="Mean", keepdims=1)
    d = b.op(node, "Sub", [x.name, mean.name], x.shape, suffix="Center")
    sq = b.op(node, "Mul", [d.name, d.name], x.shape, suffix="Square")
    var = b.op(node, "ReduceMean", [sq.name, ax], stat_shape, suffix="Var", keepdims=1)
    var = b.op(node, "Add", [var.name, b.const(f"{node.path}/eps", eps)], stat_shape, suffix="AddEps")
    std = b.op(node, "Sqrt", [var.name], stat_shape, suffix="Std")
    return b.op(node, "Div", [d.name, std.name], x.shape, suffix=None if last else "Normalize")


def emit_batchnorm(b: Builder, node: Node, x: Value) -> Value:
    a = node.attrs
    eps = float(a.get("eps", 1e-5))
    if not a.get("track_running_stats", True):  # PyTorch normalises with batch statistics, even in eval()
        axes = [0, *range(2, len(x.shape))]
        y = _normalize(b, node, x, axes, eps, last=not a.get("affine", True))
        return _scale_shift(b, node, x, y)
    c = int(x.shape[1])
    if a.get("affine", True):
        scale, bias = b.param(node, "weight"), b.param(node, "bias")
    else:
        scale, bias = b.const(f"{node.path}/ones", np.ones(c)), b.const(f"{node.path}/zeros", np.zeros(c))
    inputs = [x.name, scale, bias, b.param(node, "running_mean"), b.param(node, "running_var")]
    return b.op(node, "BatchNormalization", inputs, x.shape, epsilon=eps)


def _layernorm_last(b: Builder, node: Node, x: Value, suffix: str | None = None) -> Value:
    n = int(x.shape[-1])
    if node.attrs.get("affine", True):
        scale, bias = b.param(node, "weight"), b.param(node, "bias")
    else:
        scale, bias = b.const(f"{node.path}/ones", np.ones(n)), b.const(f"{node.path}/zeros", np.zeros(n))
    return b.op(node, "LayerNormalization", [x.name, scale, bias], x.shape, suffix=suffix, axis=-1,
                epsilon=float(node.attrs.get("eps", 1e-5)))


def emit_layernorm(b: Builder, node: Node, x: Value) -> Value:
    if x.channels_last:  # the logical last axis is the physical channel axis
        return replace(_channel_layernorm(b, node, x), channels_last=True, origin=x.origin)
    if node.attrs.get("over", "last") == "last" or len(x.shape) == 2:
        return _layernorm_last(b, node, x)
    return _channel_layernorm(b, node, x)


def _channel_layernorm(b: Builder, node: Node, x: Value) -> Value:
    if CHANNEL_LAYERNORM == "transpose":
        rank = len(x.shape)
        to_last, back = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
        t = b.op(node, "Transpose", [x.name], tuple(x.shape[i] for i in to_last), suffix="ToLast", perm=to_last)
        y = _layernorm_last(b, node, t, suffix="LayerNormalization")
        return b.op(node, "Transpose", [y.name], x.shape, perm=back)
    y = _normalize(b, node, x, [1], float(node.attrs.get("eps", 1e-5)), last=not node.attrs.get("affine", True))
    return _scale_shift(b, node, x, y)


def emit_groupnorm(b: Builder, node: Node, x: Value) -> Value:
    """Reshape to (N, groups, -1), InstanceNormalization per group, reshape back, per-channel affine."""
    groups = int(node.attrs["groups"])
    flat = (x.shape[0], groups, int(np.prod([int(d) for d in x.shape[1:]])) // groups)
    g = b.op(node, "Reshape", [x.name, b.ints(f"{node.path}/grouped", [0, groups, -1])], flat, suffix="Group")
    ones, zeros = b.const(f"{node.path}/ones", np.ones(groups)), b.const(f"{node.path}/zeros", np.zeros(groups))
    g = b.op(node, "InstanceNormalization", [g.name, ones, zeros], flat, suffix="InstanceNormalization",
             epsilon=float(node.attrs.get("eps", 1e-5)))
    back = [0, *(int(d) for d in x.shape[1:])]
    affine = node.attrs.get("affine", True)
    y = b.op(node, "Reshape", [g.name, b.ints(f"{node.path}/ungrouped", back)], x.shape,
             suffix="Ungroup" if affine else None)
    return _scale_shift(b, node, x, y)


EMITTERS = {"batchnorm": emit_batchnorm, "layernorm": emit_layernorm, "groupnorm": emit_groupnorm}
