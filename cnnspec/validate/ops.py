"""Stage 2, validate: one pydantic model per op, holding the settings a spec may write for it.

Models are strict and forbid unknown keys. They are validated after ``$expressions`` are substituted
(``resolve``), so the types here are the concrete ones; numeric limits (positive sizes, groups dividing
channels, ...) need the input shape and are checked by the shape rules in ``cnnspec.analyse.rules``,
which word them for the user. ``OPS`` maps every op name to its model; the JSON Schema is derived from
these same models.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

IntOrList = int | list[int]
Name = str | int

_NAME = Field(
    None,
    description="Name of the layer: an identifier, or a non-negative index. It becomes the dotted path, "
    "the state_dict prefix and the ONNX node name. Unnamed layers take their position in their scope.",
    examples=["conv1", "fc"],
)


class OpSettings(BaseModel):
    """Settings shared by every op."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
    op: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    name: Name | None = _NAME


class Conv(OpSettings):
    op: ClassVar[str] = "conv"
    summary: ClassVar[str] = "Convolution (1D/2D/3D by the input's rank), PyTorch's nn.ConvNd."
    out: int | None = Field(None, description="Output channels; defaults from fixed `weights`.", examples=[64])
    kernel: IntOrList | None = Field(None, description="Kernel size: one int or one per spatial dim.", examples=[3])
    stride: IntOrList = Field(1, description="Stride: one int or one per spatial dim.", examples=[2])
    padding: IntOrList | Literal["same", "valid"] = Field(
        0, description="Zero-based padding per side, or `same` / `valid`.", examples=[1, "same"]
    )
    dilation: IntOrList = Field(1, description="Spacing between kernel taps.", examples=[2])
    groups: int = Field(1, description="Channel groups; equal to the input channels for depthwise.", examples=[32])
    bias: bool | None = Field(
        None, description="Add a learnable bias (default true; false with `weights`).", examples=[False]
    )
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = Field(
        "zeros", description="How the border is padded."
    )
    weights: list[Any] | None = Field(
        None,
        description="Fixed kernel values: one kernel of the spatial rank (applied to every input channel "
        "and output channel) or the full [out, in/groups, *kernel] array.",
        examples=[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]],
    )
    trainable: bool = Field(True, description="false freezes the weights (fixed-kernel filters).")


class _Pool(OpSettings):
    kernel: IntOrList = Field(description="Window size: one int or one per spatial dim.", examples=[2])
    stride: IntOrList | None = Field(None, description="Window step (default: the kernel size).", examples=[2])
    padding: IntOrList = Field(0, description="Implicit padding per side (at most half the kernel).")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


class MaxPool(_Pool):
    op: ClassVar[str] = "maxpool"
    summary: ClassVar[str] = "Max pooling, nn.MaxPoolNd."
    dilation: IntOrList = Field(1, description="Spacing between window taps.")


class AvgPool(_Pool):
    op: ClassVar[str] = "avgpool"
    summary: ClassVar[str] = "Average pooling, nn.AvgPoolNd."
    count_include_pad: bool = Field(True, description="Count padded zeros in the average.")


class SumPool(_Pool):
    op: ClassVar[str] = "sumpool"
    summary: ClassVar[str] = "Sum pooling: the window's sum (padding counts as zero)."


class AdaptiveAvgPool(OpSettings):
    op: ClassVar[str] = "adaptive_avgpool"
    summary: ClassVar[str] = "Adaptive average pooling to a fixed output size, nn.AdaptiveAvgPoolNd."
    out: IntOrList = Field(description="Output size: one int or one per spatial dim.", examples=[7])


class AdaptiveMaxPool(AdaptiveAvgPool):
    op: ClassVar[str] = "adaptive_maxpool"
    summary: ClassVar[str] = "Adaptive max pooling to a fixed output size, nn.AdaptiveMaxPoolNd."


class GlobalAvgPool(OpSettings):
    op: ClassVar[str] = "global_avgpool"
    summary: ClassVar[str] = "Average over all positions; output [C, 1, ...]."


class GlobalMaxPool(OpSettings):
    op: ClassVar[str] = "global_maxpool"
    summary: ClassVar[str] = "Maximum over all positions; output [C, 1, ...]."


class BatchNorm(OpSettings):
    op: ClassVar[str] = "batchnorm"
    summary: ClassVar[str] = "Batch normalisation over channels, nn.BatchNormNd."
    eps: float = Field(1e-5, description="Added to the variance.")
    momentum: float = Field(0.1, description="Running statistics update factor.")
    affine: bool = Field(True, description="Learnable scale and shift.")
    track_running_stats: bool = Field(True, description="Keep running mean and variance buffers.")


class LayerNorm(OpSettings):
    op: ClassVar[str] = "layernorm"
    summary: ClassVar[str] = "Layer normalisation over the channels (LayerNorm2d) or the last axis."
    over: Literal["channels", "last"] = Field(
        "channels", description="`channels`: each position's channel vector (ConvNeXt's LayerNorm2d); "
        "`last`: the last axis, as nn.LayerNorm."
    )
    eps: float = Field(1e-5, description="Added to the variance.")
    affine: bool = Field(True, description="Learnable scale and shift.")


class GroupNorm(OpSettings):
    op: ClassVar[str] = "groupnorm"
    summary: ClassVar[str] = "Group normalisation, nn.GroupNorm."
    groups: int = Field(description="Number of channel groups; must divide the channels.", examples=[32])
    eps: float = Field(1e-5, description="Added to the variance.")
    affine: bool = Field(True, description="Learnable per-channel scale and shift.")


class ReLU(OpSettings):
    op: ClassVar[str] = "relu"
    summary: ClassVar[str] = "max(x, 0)."


class LeakyReLU(OpSettings):
    op: ClassVar[str] = "leaky_relu"
    summary: ClassVar[str] = "x for x > 0, slope * x otherwise."
    slope: float = Field(0.01, description="Slope for negative inputs.")


class GELU(OpSettings):
    op: ClassVar[str] = "gelu"
    summary: ClassVar[str] = "Gaussian error linear unit."
    approximate: Literal["none", "tanh"] = Field("none", description="`tanh` uses the tanh approximation.")


class SiLU(OpSettings):
    op: ClassVar[str] = "silu"
    summary: ClassVar[str] = "x * sigmoid(x) (swish)."


class Sigmoid(OpSettings):
    op: ClassVar[str] = "sigmoid"
    summary: ClassVar[str] = "1 / (1 + exp(-x))."


class Tanh(OpSettings):
    op: ClassVar[str] = "tanh"
    summary: ClassVar[str] = "Hyperbolic tangent."


class Softmax(OpSettings):
    op: ClassVar[str] = "softmax"
    summary: ClassVar[str] = "Softmax over the channels or the last axis."
    over: Literal["channels", "last"] = Field("channels", description="Axis the probabilities sum over.")


class Identity(OpSettings):
    op: ClassVar[str] = "identity"
    summary: ClassVar[str] = "Passes the input through."


class Dropout(OpSettings):
    op: ClassVar[str] = "dropout"
    summary: ClassVar[str] = "Zeroes elements with probability p in training."
    p: float = Field(0.5, description="Drop probability, 0 <= p < 1.")


class StochasticDepth(OpSettings):
    op: ClassVar[str] = "stochastic_depth"
    summary: ClassVar[str] = "Drops the whole residual branch with probability p in training."
    p: float = Field(description="Drop probability, 0 <= p < 1.", examples=[0.1])
    mode: Literal["row", "batch"] = Field("row", description="Per sample (`row`) or per batch.")


class Flatten(OpSettings):
    op: ClassVar[str] = "flatten"
    summary: ClassVar[str] = "[C, ...] to one feature axis."


class Linear(OpSettings):
    op: ClassVar[str] = "linear"
    summary: ClassVar[str] = "Fully connected layer, nn.Linear."
    out: int = Field(description="Output features.", examples=[10])
    bias: bool = Field(True, description="Add a learnable bias.")
    over: Literal["features", "channels", "last"] = Field(
        "features", description="`features`: a flat input; `channels`: at every position of a channel-first "
        "tensor (ConvNeXt's pointwise layers); `last`: the last axis, as nn.Linear."
    )


class LayerScale(OpSettings):
    op: ClassVar[str] = "layer_scale"
    summary: ClassVar[str] = "One learnable scale per channel (ConvNeXt)."
    init: float = Field(1e-6, description="Initial scale.")


class Permute(OpSettings):
    op: ClassVar[str] = "permute"
    summary: ClassVar[str] = "Reorders the axes, torch.permute (batch axis 0 included and kept first)."
    dims: list[int] = Field(description="New order of the axes, batch first.", examples=[[0, 2, 3, 1]])


OPS: dict[str, type[OpSettings]] = {
    model.op: model
    for model in (
        Conv, MaxPool, AvgPool, SumPool, AdaptiveAvgPool, AdaptiveMaxPool, GlobalAvgPool, GlobalMaxPool,
        BatchNorm, LayerNorm, GroupNorm, ReLU, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, Softmax, Identity,
        Dropout, StochasticDepth, Flatten, Linear, LayerScale, Permute,
    )
}
