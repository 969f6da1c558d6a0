"""Normalisation: batch norm (inference: running statistics), instance norm (each sample's channels over
their own positions), layer norm (over the channels, as ConvNeXt's LayerNorm2d, or over the last axis, as
nn.LayerNorm) and group norm."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from cnnspec.ir import Init, Shape, TensorSpec
from cnnspec.ops.base import (
    Inferred,
    OnnxContext,
    OnnxValue,
    Op,
    OpSettings,
    RuleError,
    TorchContext,
    TorchModule,
    Traits,
)
from cnnspec.ops.shape import check_eps, fmt
from cnnspec.settings import Field

ZEROS = Init("constant", value=0.0)  # Init is frozen: one shared instance each
ONES = Init("constant", value=1.0)


@functools.lru_cache(maxsize=1024)  # TensorSpec is frozen: equal ones are shared between layers
def affine(channels: int, enabled: bool) -> tuple[TensorSpec, ...]:
    """A norm's learnable per-channel scale (ones) and shift (zeros)."""
    if not enabled:
        return ()
    return TensorSpec("weight", (channels,), ONES), TensorSpec("bias", (channels,), ZEROS)


@functools.lru_cache(maxsize=1024)
def _bn_buffers(channels: int) -> tuple[TensorSpec, ...]:
    return (TensorSpec("running_mean", (channels,), ZEROS, False),
            TensorSpec("running_var", (channels,), ONES, False),
            TensorSpec("num_batches_tracked", (), Init("constant", value=0), False, "int64"))


def _channel_view(x: OnnxValue) -> tuple[int, ...]:
    """The shape (C, 1, 1, ...) that broadcasts a per-channel vector over ``x``."""
    return (int(x.shape[1]),) + (1,) * (len(x.shape) - 2)


def _scale_shift(ctx: OnnxContext, enabled: bool, x: OnnxValue, y: OnnxValue) -> OnnxValue:
    """y * weight + bias with per-channel affine parameters (skipped when the layer has none)."""
    if not enabled:
        return y
    view = _channel_view(x)
    y = ctx.op("Mul", [y.name, ctx.param("weight", view)], x.shape, suffix="Scale")
    return ctx.op("Add", [y.name, ctx.param("bias", view)], x.shape)


def _normalize(ctx: OnnxContext, x: OnnxValue, axes: Sequence[int], eps: float, last: bool) -> OnnxValue:
    """(x - mean) / sqrt(var + eps) with mean and biased var over ``axes``; the final node takes the
    layer's own name when ``last``."""
    stat_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    ax = ctx.const("axes", list(axes), integer=True)
    mean = ctx.op("ReduceMean", [x.name, ax], stat_shape, suffix="Mean", keepdims=1)
    d = ctx.op("Sub", [x.name, mean.name], x.shape, suffix="Center")
    sq = ctx.op("Mul", [d.name, d.name], x.shape, suffix="Square")
    var = ctx.op("ReduceMean", [sq.name, ax], stat_shape, suffix="Var", keepdims=1)
    var = ctx.op("Add", [var.name, ctx.const("eps", eps)], stat_shape, suffix="AddEps")
    std = ctx.op("Sqrt", [var.name], stat_shape, suffix="Std")
    return ctx.op("Div", [d.name, std.name], x.shape, suffix=None if last else "Normalize")


def _statistics_keywords(ctx: TorchContext, default: bool) -> list[tuple[str, Any]]:
    """Batch and instance norm's keywords: ``affine`` and ``track_running_stats`` default to ``default``
    (True for nn.BatchNormNd, False for nn.InstanceNormNd)."""
    return [
        ("eps", ctx.value("eps", "eps", default=1e-5)),
        ("momentum", ctx.value("momentum", "momentum", default=0.1)),
        ("affine", ctx.value("affine", "affine", default=default)),
        ("track_running_stats", ctx.value("track_running_stats", "track_running_stats", default=default)),
    ]


def _with_running_statistics(ctx: OnnxContext, a: BatchNormAttrs, x: OnnxValue) -> OnnxValue:
    """eval() with running statistics: BatchNormalization."""
    scale, bias = _scale_and_bias(ctx, a.affine, int(x.shape[1]))
    inputs = [x.name, scale, bias, ctx.param("running_mean"), ctx.param("running_var")]
    return ctx.op("BatchNormalization", inputs, x.shape, epsilon=a.eps)


def _scale_and_bias(ctx: OnnxContext, enabled: bool, n: int) -> tuple[str, str]:
    if enabled:
        return ctx.param("weight"), ctx.param("bias")
    return ctx.const("ones", [1.0] * n), ctx.const("zeros", [0.0] * n)


class BatchNormSettings(OpSettings):
    summary: ClassVar[str] = "Batch normalisation over channels, nn.BatchNormNd."
    example: ClassVar[dict[str, Any]] = {"name": "bn1"}
    eps: float = Field(1e-5, description="Added to the variance.")
    momentum: float = Field(0.1, description="Running statistics update factor.")
    affine: bool = Field(True, description="Learnable scale and shift.")
    track_running_stats: bool = Field(True, description="Keep running mean and variance buffers.")


@dataclass(frozen=True)
class BatchNormAttrs:
    num_features: int
    eps: float
    momentum: float
    affine: bool
    track_running_stats: bool


class BatchNorm(Op):
    name = "batchnorm"
    family = "norm"
    Settings = BatchNormSettings
    traits = Traits(fresh_output=True)

    def infer(self, s: BatchNormSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape; weight and bias ``(C,)`` when affine; buffers running mean, variance and the int64
        ``num_batches_tracked`` when tracking statistics.

        >>> BatchNorm().infer(BatchNormSettings(), ((16, 64),), "bn").buffers[2].dtype
        'int64'
        """
        shape = inputs[0]
        if len(shape) > 4:
            raise RuleError(f"{label}: batchnorm works on 1D, 2D or 3D inputs, got {fmt(shape)}")
        check_eps(s.eps, label)
        c = shape[0]
        if not s.track_running_stats and math.prod(shape[1:]) == 1:
            raise RuleError(f"{label}: batchnorm without running statistics normalises with the batch's own "
                            f"statistics, and on {fmt(shape)} that is one value per channel at batch 1: PyTorch "
                            "refuses it ('Expected more than 1 value per channel'); keep track_running_stats, "
                            "or normalise where there is more than one value per channel", "track_running_stats")
        buffers = _bn_buffers(c) if s.track_running_stats else ()
        attrs = BatchNormAttrs(c, s.eps, s.momentum, s.affine, s.track_running_stats)
        return Inferred(attrs, shape, affine(c, s.affine), buffers)

    def torch(self, a: BatchNormAttrs, ctx: TorchContext) -> TorchModule:
        features = ctx.derived("num_features", ctx.input[0])
        return TorchModule(ctx.call(f"nn.BatchNorm{ctx.rank}d", [features], _statistics_keywords(ctx, True)),
                           list(ctx.input))

    def onnx(self, a: BatchNormAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        if not a.track_running_stats:  # PyTorch normalises with batch statistics, even in eval()
            axes = [0, *range(2, len(x.shape))]
            return _scale_shift(ctx, a.affine, x, _normalize(ctx, x, axes, a.eps, last=not a.affine))
        return _with_running_statistics(ctx, a, x)

    def reference(self, a: BatchNormAttrs, inputs: tuple[Shape, ...]) -> str:
        return (f"nn.BatchNorm{max(len(inputs[0]) - 1, 1)}d({a.num_features}, eps={a.eps}, momentum={a.momentum}, "
                f"affine={a.affine}, track_running_stats={a.track_running_stats})")


class InstanceNormSettings(OpSettings):
    summary: ClassVar[str] = "Instance normalisation, nn.InstanceNormNd: each channel of each sample over its positions."
    example: ClassVar[dict[str, Any]] = {"affine": True}
    eps: float = Field(1e-5, description="Added to the variance.")
    momentum: float = Field(0.1, description="Running statistics update factor (with track_running_stats).")
    affine: bool = Field(False, description="Learnable per-channel scale and shift (PyTorch's default: none; "
                         "MONAI's networks set it).")
    track_running_stats: bool = Field(False, description="Keep running mean and variance buffers and use them "
                                      "in eval(), as batchnorm does (PyTorch's default: no).")


class InstanceNorm(Op):
    name = "instancenorm"
    family = "norm"
    Settings = InstanceNormSettings
    traits = Traits(fresh_output=True)

    def infer(self, s: InstanceNormSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape. Each sample's channel c is normalised over its own positions:
        ``y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c`` (biased variance), as
        ``nn.InstanceNorm{1,2,3}d``; weight and bias ``(C,)`` when affine; running-statistics buffers as
        batchnorm's when tracking them. With no statistics tracked, a channel of one position normalises to 0
        and PyTorch refuses it, so does this. Worked example, MONAI's 3D U-Net: 32x64x64x64 gives 64 params.

        >>> InstanceNorm().infer(InstanceNormSettings(affine=True), ((32, 64, 64, 64),), "in").params[0].shape
        (32,)
        """
        shape = inputs[0]
        if not 2 <= len(shape) <= 4:
            raise RuleError(f"{label}: instancenorm normalises each channel over its positions, so it needs a "
                            f"1D, 2D or 3D input with channels first, got {fmt(shape)}")
        check_eps(s.eps, label)
        c = shape[0]
        if not s.track_running_stats and math.prod(shape[1:]) == 1:
            raise RuleError(f"{label}: instancenorm normalises each channel over its positions, and {fmt(shape)} "
                            "has one position, which always normalises to 0 (PyTorch refuses it: 'Expected more "
                            "than 1 spatial element'); normalise before the size shrinks to 1")
        buffers = _bn_buffers(c) if s.track_running_stats else ()
        attrs = BatchNormAttrs(c, s.eps, s.momentum, s.affine, s.track_running_stats)
        return Inferred(attrs, shape, affine(c, s.affine), buffers)

    def caption(self, a: BatchNormAttrs) -> str:
        return "instancenorm"

    def torch(self, a: BatchNormAttrs, ctx: TorchContext) -> TorchModule:
        features = ctx.derived("num_features", ctx.input[0])
        return TorchModule(ctx.call(f"nn.InstanceNorm{ctx.rank}d", [features], _statistics_keywords(ctx, False)),
                           list(ctx.input))

    def onnx(self, a: BatchNormAttrs, ctx: OnnxContext) -> OnnxValue:
        """InstanceNormalization (ones and zeros when not affine); with tracked statistics eval() uses them,
        which is BatchNormalization."""
        x = ctx.inputs[0]
        if a.track_running_stats:
            return _with_running_statistics(ctx, a, x)
        scale, bias = _scale_and_bias(ctx, a.affine, int(x.shape[1]))
        return ctx.op("InstanceNormalization", [x.name, scale, bias], x.shape, epsilon=a.eps)

    def reference(self, a: BatchNormAttrs, inputs: tuple[Shape, ...]) -> str:
        return (f"nn.InstanceNorm{len(inputs[0]) - 1}d({a.num_features}, eps={a.eps}, momentum={a.momentum}, "
                f"affine={a.affine}, track_running_stats={a.track_running_stats})")


CHANNEL_LAYER_NORM = '''class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a channel-first tensor (torchvision's ``LayerNorm2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)
'''


class LayerNormSettings(OpSettings):
    summary: ClassVar[str] = "Layer normalisation over the channels (LayerNorm2d) or the last axis."
    example: ClassVar[dict[str, Any]] = {"eps": 1e-6}
    over: Literal["channels", "last"] = Field(
        "channels", description="`channels`: each position's channel vector (ConvNeXt's LayerNorm2d); "
        "`last`: the last axis, as nn.LayerNorm."
    )
    eps: float = Field(1e-5, description="Added to the variance.")
    affine: bool = Field(True, description="Learnable scale and shift.")


@dataclass(frozen=True)
class LayerNormAttrs:
    over: str
    normalized: int
    eps: float
    affine: bool


class LayerNorm(Op):
    name = "layernorm"
    family = "norm"
    Settings = LayerNormSettings
    traits = Traits(fresh_output=True, layout_aware=True)

    def infer(self, s: LayerNormSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape; weight and bias over the normalised axis (channels, or the last axis).

        >>> LayerNorm().infer(LayerNormSettings(over="last"), ((56, 56, 96),), "ln").params[0].shape
        (96,)
        """
        shape = inputs[0]
        check_eps(s.eps, label)
        size = shape[0] if s.over == "channels" else shape[-1]
        return Inferred(LayerNormAttrs(s.over, size, s.eps, s.affine), shape, affine(size, s.affine))

    def caption(self, a: LayerNormAttrs) -> str:
        return "layernorm" if a.over == "channels" else "layernorm (last axis)"

    def torch(self, a: LayerNormAttrs, ctx: TorchContext) -> TorchModule:
        keywords = [
            ("eps", ctx.value("eps", "eps", default=1e-5)),
            ("elementwise_affine", ctx.value("affine", "affine", default=True)),
        ]
        if a.over == "channels":
            ctx.helper("ChannelLayerNorm", CHANNEL_LAYER_NORM)
            return TorchModule(ctx.call("ChannelLayerNorm", [ctx.derived("normalized", ctx.input[0])], keywords),
                               list(ctx.input))
        return TorchModule(ctx.call("nn.LayerNorm", [ctx.derived("normalized", ctx.input[-1])], keywords),
                           list(ctx.input))

    def takes_channels_last(self, a: LayerNormAttrs) -> bool:
        return a.over == "last"

    def onnx(self, a: LayerNormAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        if x.channels_last:  # the logical last axis is the physical channel axis
            return ctx.relabel(self._over_channels(a, ctx, x), channels_last=True, origin=x)
        if a.over == "last" or len(x.shape) == 2:
            return self._over_last(a, ctx, x)
        return self._over_channels(a, ctx, x)

    def _over_last(self, a: LayerNormAttrs, ctx: OnnxContext, x: OnnxValue, suffix: str | None = None
                   ) -> OnnxValue:
        scale, bias = _scale_and_bias(ctx, a.affine, int(x.shape[-1]))
        return ctx.op("LayerNormalization", [x.name, scale, bias], x.shape, suffix=suffix, axis=-1, epsilon=a.eps)

    def _over_channels(self, a: LayerNormAttrs, ctx: OnnxContext, x: OnnxValue) -> OnnxValue:
        """Transpose to channels-last, LayerNormalization, back: onnxruntime's fused LayerNormalization beat
        a ReduceMean formulation over axis 1 (docs/onnx-backend.md)."""
        rank = len(x.shape)
        to_last, back = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
        t = ctx.op("Transpose", [x.name], tuple(x.shape[i] for i in to_last), suffix="ToLast", perm=to_last)
        y = self._over_last(a, ctx, t, suffix="LayerNormalization")
        return ctx.op("Transpose", [y.name], x.shape, perm=back)

    def symbolic_axes(self, a: Any, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        if a.over == "last" and len(shape) - 1 in axes:
            return "over the last axis its weights follow that axis's size"
        return axes

    def reference(self, a: LayerNormAttrs, inputs: tuple[Shape, ...]) -> str:
        norm = f"nn.LayerNorm({a.normalized}, eps={a.eps}, elementwise_affine={a.affine})"
        return norm if a.over == "last" or len(inputs[0]) == 1 else f"moved({norm})"


class GroupNormSettings(OpSettings):
    summary: ClassVar[str] = "Group normalisation, nn.GroupNorm."
    example: ClassVar[dict[str, Any]] = {"groups": 32}
    groups: int = Field(description="Number of channel groups; must divide the channels.", examples=[32])
    eps: float = Field(1e-5, description="Added to the variance.")
    affine: bool = Field(True, description="Learnable per-channel scale and shift.")


@dataclass(frozen=True)
class GroupNormAttrs:
    groups: int
    num_channels: int
    eps: float
    affine: bool


class GroupNorm(Op):
    name = "groupnorm"
    family = "norm"
    Settings = GroupNormSettings
    traits = Traits(fresh_output=True, dynamic_spatial=False)  # ONNX: reshapes back to the input's sizes

    def infer(self, s: GroupNormSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape; ``groups`` must divide the channels; affine weight and bias ``(C,)``.

        >>> GroupNorm().infer(GroupNormSettings(groups=32), ((64, 8, 8),), "gn").shape
        (64, 8, 8)
        """
        shape = inputs[0]
        check_eps(s.eps, label)
        c, groups = shape[0], s.groups
        if groups < 1 or c % groups:
            raise RuleError(f"{label}: groups={groups} must divide the {c} channels", "groups")
        if c // groups * math.prod(shape[1:]) == 1:
            raise RuleError(f"{label}: each of the {groups} groups of {fmt(shape)} holds one value, and a value "
                            "normalised by itself is always 0 (PyTorch refuses it at batch 1: 'Expected more "
                            "than 1 value per channel'); use fewer groups", "groups")
        return Inferred(GroupNormAttrs(groups, c, s.eps, s.affine), shape, affine(c, s.affine))

    def caption(self, a: GroupNormAttrs) -> str:
        return f"groupnorm, {a.groups} groups"

    def torch(self, a: GroupNormAttrs, ctx: TorchContext) -> TorchModule:
        keywords = [
            ("eps", ctx.value("eps", "eps", default=1e-5)),
            ("affine", ctx.value("affine", "affine", default=True)),
        ]
        positional = [ctx.value("groups", "groups"), ctx.derived("num_channels", ctx.input[0])]
        return TorchModule(ctx.call("nn.GroupNorm", positional, keywords), list(ctx.input))

    def onnx(self, a: GroupNormAttrs, ctx: OnnxContext) -> OnnxValue:
        """Reshape to (N, groups, -1), InstanceNormalization per group, reshape back, per-channel affine."""
        x = ctx.inputs[0]
        groups = a.groups
        numel = 1
        for d in x.shape[1:]:
            numel *= int(d)
        flat = (x.shape[0], groups, numel // groups)
        g = ctx.op("Reshape", [x.name, ctx.const("grouped", [0, groups, -1], integer=True)], flat, suffix="Group")
        ones, zeros = ctx.const("ones", [1.0] * groups), ctx.const("zeros", [0.0] * groups)
        g = ctx.op("InstanceNormalization", [g.name, ones, zeros], flat, suffix="InstanceNormalization",
                   epsilon=a.eps)
        back = [0, *(int(d) for d in x.shape[1:])]
        y = ctx.op("Reshape", [g.name, ctx.const("ungrouped", back, integer=True)], x.shape,
                   suffix="Ungroup" if a.affine else None)
        return _scale_shift(ctx, a.affine, x, y)

    def reference(self, a: GroupNormAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"nn.GroupNorm({a.groups}, {a.num_channels}, eps={a.eps}, affine={a.affine})"


OPS = (BatchNorm(), InstanceNorm(), LayerNorm(), GroupNorm())
