"""Fully connected layers (``linear``: on a flat vector, at every position over the channels, or over the
last axis) and ConvNeXt's per-channel ``layer_scale``."""

from __future__ import annotations

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
    TorchExpression,
    TorchModule,
    Traits,
)
from cnnspec.ops.conv import uniform
from cnnspec.ops.shape import fmt, prod
from cnnspec.settings import Field


class LinearSettings(OpSettings):
    summary: ClassVar[str] = "Fully connected layer, nn.Linear."
    example: ClassVar[dict[str, Any]] = {"out": "$num_classes", "name": "fc"}
    out: int = Field(description="Output features.", examples=[10])
    bias: bool = Field(True, description="Add a learnable bias.")
    over: Literal["features", "channels", "last"] = Field(
        "features", description="`features`: a flat input; `channels`: at every position of a channel-first "
        "tensor (ConvNeXt's pointwise layers); `last`: the last axis, as nn.Linear."
    )


@dataclass(frozen=True)
class LinearAttrs:
    in_features: int
    out_features: int
    bias: bool
    over: str


POINTWISE_LINEAR = '''class PointwiseLinear(nn.Linear):
    """``nn.Linear`` applied at every position of a channel-first tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)
'''


class Linear(Op):
    name = "linear"
    family = "linear"
    Settings = LinearSettings
    traits = Traits(fresh_output=True, layout_aware=True)

    def infer(self, s: LinearSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The transformed axis becomes ``out``; weight ``(out, in)``; MACs ``in * out`` per position.

        >>> r = Linear().infer(LinearSettings(out=10), ((512,),), "fc")
        >>> r.shape, r.params[0].shape, r.macs
        ((10,), (10, 512), 5120)
        """
        shape = inputs[0]
        over, out = s.over, s.out
        if out < 1:
            raise RuleError(f"{label}: `out` must be at least 1, got {out}", "out")
        if over == "features" and len(shape) != 1:
            raise RuleError(f"{label} needs a flat feature vector but gets a {fmt(shape)} tensor; add `- flatten` "
                            "before it, or set `over: channels` to apply it at every position", "over")
        axis = len(shape) - 1 if over == "last" else 0
        cin = shape[axis]
        out_shape = shape[:axis] + (out,) + shape[axis + 1:]
        params = [TensorSpec("weight", (out, cin), uniform(cin))]
        if s.bias:
            params.append(TensorSpec("bias", (out,), uniform(cin)))
        return Inferred(LinearAttrs(cin, out, s.bias, over), out_shape, tuple(params),
                        macs=cin * out * (prod(shape) // cin))

    def caption(self, a: LinearAttrs) -> str:
        where = {"channels": " per position", "last": " on last axis"}.get(a.over, "")
        return f"linear {a.in_features} -> {a.out_features}{where}"

    def torch(self, a: LinearAttrs, ctx: TorchContext) -> TorchModule:
        axis = -1 if a.over == "last" else 0
        in_f = ctx.derived("in_features", ctx.input[axis])
        out = ctx.value("out_features", "out")
        bias = ctx.value("bias", "bias", default=True)
        cls = "nn.Linear"
        if a.over == "channels":
            ctx.helper("PointwiseLinear", POINTWISE_LINEAR)
            cls = "PointwiseLinear"
        shape = list(ctx.input)
        shape[axis] = out.expr
        return TorchModule(ctx.call(cls, [in_f, out], [("bias", bias)]), ctx.shape(shape))

    def takes_channels_last(self, a: LinearAttrs) -> bool:
        return a.over == "last"

    def onnx(self, a: LinearAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        if len(x.shape) == 2:
            inputs = [x.name, ctx.param("weight")]
            if a.bias:
                inputs.append(ctx.param("bias"))
            return ctx.op("Gemm", inputs, ctx.out_shape(), transB=1)
        if x.channels_last:  # the logical last axis is the physical channel axis
            return ctx.relabel(_pointwise_conv(a, ctx, x, ctx.out_shape(channels_last=True)), True, origin=x)
        if a.over == "channels":
            return _pointwise_conv(a, ctx, x, ctx.out_shape())
        return _matmul(a, ctx, x)

    def symbolic_axes(self, a: Any, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        if a.over == "last" and len(shape) - 1 in axes:
            return "over the last axis its weights follow that axis's size"
        return axes

    def reference(self, a: LinearAttrs, inputs: tuple[Shape, ...]) -> str:
        linear = f"nn.Linear({a.in_features}, {a.out_features}, bias={a.bias})"
        return f"moved({linear})" if a.over == "channels" else linear


def _matmul(a: LinearAttrs, ctx: OnnxContext, x: OnnxValue) -> OnnxValue:
    """x @ weight.T (+ bias) on the last axis; the weight is stored transposed, as MatMul reads it."""
    shape = (*x.shape[:-1], a.out_features)
    y = ctx.op("MatMul", [x.name, ctx.param("weight", transpose=True)], shape, suffix="MatMul" if a.bias else None)
    if a.bias:
        y = ctx.op("Add", [y.name, ctx.param("bias")], shape)
    return y


def _pointwise_conv(a: LinearAttrs, ctx: OnnxContext, x: OnnxValue, shape: tuple[Any, ...]) -> OnnxValue:
    """A linear over the channels of a channel-first tensor as a 1x1 Conv with the weight viewed as
    (out, in, 1, ...): no layout change (faster in onnxruntime than Transpose + MatMul + Transpose,
    docs/onnx-backend.md)."""
    spatial = len(x.shape) - 2
    inputs = [x.name, ctx.param("weight", (a.out_features, a.in_features) + (1,) * spatial)]
    if a.bias:
        inputs.append(ctx.param("bias"))
    return ctx.op("Conv", inputs, shape, kernel_shape=[1] * spatial)


class LayerScaleSettings(OpSettings):
    summary: ClassVar[str] = "One learnable scale per channel (ConvNeXt)."
    example: ClassVar[dict[str, Any]] = {"init": 1e-6}
    init: float = Field(1e-6, description="Initial scale.")


@dataclass(frozen=True)
class LayerScaleAttrs:
    channels: int
    init: float


class LayerScale(Op):
    name = "layer_scale"
    family = "scale"
    Settings = LayerScaleSettings
    traits = Traits(fresh_output=True, torch_module=False)

    def infer(self, s: LayerScaleSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape; one parameter ``(C, 1, ...)``, owned by the enclosing module (its key is the layer's
        path, as torchvision's ``features.1.0.layer_scale``).

        >>> LayerScale().infer(LayerScaleSettings(), ((96, 56, 56),), "ls").params[0].shape
        (96, 1, 1)
        """
        shape = inputs[0]
        c = shape[0]
        param = TensorSpec("", (c,) + (1,) * (len(shape) - 1), Init("constant", value=s.init))
        return Inferred(LayerScaleAttrs(c, s.init), shape, (param,))

    def torch(self, a: LayerScaleAttrs, ctx: TorchContext) -> TorchExpression:
        channels = ctx.derived("channels", ctx.input[0])
        init = ctx.value("init", "init")
        shape = [str(channels.src), *["1"] * (len(ctx.input) - 1)]
        shape_src = f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(shape)})"
        return TorchExpression("{param} * {0}", list(ctx.input),
                               parameter=f"nn.Parameter(torch.full({shape_src}, {init.src}))")

    def onnx(self, a: LayerScaleAttrs, ctx: OnnxContext) -> OnnxValue:
        """out = scale * x; the scale (a parameter of the enclosing module) already broadcasts: (C, 1, 1)."""
        x = ctx.inputs[0]
        return ctx.op("Mul", [x.name, ctx.param("")], x.shape)

    def reference(self, a: LayerScaleAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x * {a.init}"


OPS = (Linear(), LayerScale())
