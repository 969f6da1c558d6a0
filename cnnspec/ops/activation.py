"""Activations: elementwise non-linearities (shape unchanged; no parameters but PReLU's slopes) and softmax."""

from __future__ import annotations

import math
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
from cnnspec.settings import Field

ELEMENTWISE = Traits(stateless=True, elementwise=True)
IN_PLACE = Traits(stateless=True, elementwise=True, in_place=True)


class Elementwise(Op):
    """An activation applied to every element: same shape, no parameters. Subclasses give the PyTorch
    module, its ONNX node and, where torchvision writes one, the plain functional call."""

    family = "activation"
    traits = ELEMENTWISE
    module: ClassVar[str]  # nn class
    onnx_op: ClassVar[str] = ""
    functional: ClassVar[str | None] = None

    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's shape; the settings are the attributes.

        >>> ReLU().infer(ReLUSettings(), ((8, 4, 4),), "relu").shape
        (8, 4, 4)
        """
        return Inferred(s, inputs[0])

    def keywords(self, ctx: TorchContext) -> list[tuple[str, Any]]:
        return []

    def torch(self, a: Any, ctx: TorchContext) -> TorchModule:
        keywords = self.keywords(ctx)
        constructor = ctx.call(self.module, [], keywords)
        in_place = ctx.call(self.module, [], [*keywords, ("inplace", "True")]) if self.traits.in_place else None
        return TorchModule(constructor, list(ctx.input), self.functional, in_place)

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        return ctx.op(self.onnx_op, [x.name], x.shape, **self.onnx_attrs(a))

    def onnx_attrs(self, a: Any) -> dict[str, Any]:
        return {}

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        return f"{self.module}()"


class ReLUSettings(OpSettings):
    summary: ClassVar[str] = "max(x, 0)."
    example: ClassVar[dict[str, Any]] = {"name": "relu"}


class ReLU(Elementwise):
    name = "relu"
    Settings = ReLUSettings
    traits = IN_PLACE
    module = "nn.ReLU"
    onnx_op = "Relu"
    functional = "torch.relu({})"


class SigmoidSettings(OpSettings):
    summary: ClassVar[str] = "1 / (1 + exp(-x))."
    example: ClassVar[dict[str, Any]] = {"name": "gate"}


class Sigmoid(Elementwise):
    name = "sigmoid"
    Settings = SigmoidSettings
    module = "nn.Sigmoid"
    onnx_op = "Sigmoid"
    functional = "torch.sigmoid({})"


class TanhSettings(OpSettings):
    summary: ClassVar[str] = "Hyperbolic tangent."
    example: ClassVar[dict[str, Any]] = {"name": "act"}


class Tanh(Elementwise):
    name = "tanh"
    Settings = TanhSettings
    module = "nn.Tanh"
    onnx_op = "Tanh"
    functional = "torch.tanh({})"


class SiLUSettings(OpSettings):
    summary: ClassVar[str] = "x * sigmoid(x) (swish)."
    example: ClassVar[dict[str, Any]] = {"name": "act"}


class SiLU(Elementwise):
    name = "silu"
    Settings = SiLUSettings
    module = "nn.SiLU"
    functional = "nn.functional.silu({})"

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        """x * sigmoid(x): onnxruntime fuses the pair into one kernel."""
        x = ctx.inputs[0]
        s = ctx.op("Sigmoid", [x.name], x.shape, suffix="Sigmoid")
        return ctx.op("Mul", [x.name, s.name], x.shape)


class IdentitySettings(OpSettings):
    summary: ClassVar[str] = "Passes the input through."
    example: ClassVar[dict[str, Any]] = {"name": "skip"}


class Identity(Elementwise):
    name = "identity"
    family = "reshape"
    Settings = IdentitySettings
    traits = Traits(stateless=True, elementwise=True, pass_through=True)
    module = "nn.Identity"

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        """Nothing to compute: no node is emitted."""
        return ctx.inputs[0]


class LeakyReLUSettings(OpSettings):
    summary: ClassVar[str] = "x for x > 0, slope * x otherwise."
    example: ClassVar[dict[str, Any]] = {"slope": 0.2}
    slope: float = Field(0.01, description="Slope for negative inputs.")


class LeakyReLU(Elementwise):
    name = "leaky_relu"
    Settings = LeakyReLUSettings
    module = "nn.LeakyReLU"
    onnx_op = "LeakyRelu"

    def caption(self, a: LeakyReLUSettings) -> str:
        return f"leaky relu {a.slope:g}"

    def keywords(self, ctx: TorchContext) -> list[tuple[str, Any]]:
        return [("negative_slope", ctx.value("slope", "slope", default=0.01))]

    def onnx_attrs(self, a: LeakyReLUSettings) -> dict[str, Any]:
        return {"alpha": float(a.slope)}

    def reference(self, a: LeakyReLUSettings, inputs: tuple[Shape, ...]) -> str:
        return f"nn.LeakyReLU({a.slope})"


class GELUSettings(OpSettings):
    summary: ClassVar[str] = "Gaussian error linear unit."
    example: ClassVar[dict[str, Any]] = {"approximate": "tanh"}
    approximate: Literal["none", "tanh"] = Field("none", description="`tanh` uses the tanh approximation.")


class GELU(Elementwise):
    name = "gelu"
    Settings = GELUSettings
    module = "nn.GELU"

    def caption(self, a: GELUSettings) -> str:
        return "gelu (tanh)" if a.approximate == "tanh" else "gelu"

    def torch(self, a: GELUSettings, ctx: TorchContext) -> TorchModule:
        keywords = [("approximate", ctx.value("approximate", "approximate", default="none"))]
        functional = "nn.functional.gelu({})" if all(x.approximate == "none" for x in ctx.attrs) else None
        return TorchModule(ctx.call(self.module, [], keywords), list(ctx.input), functional)

    def onnx(self, a: GELUSettings, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        if ctx.opset >= 20:
            return ctx.op("Gelu", [x.name], x.shape, approximate=a.approximate)
        if a.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = ctx.op("Pow", [x.name, ctx.const("three", 3.0)], x.shape, suffix="Pow")
            inner = ctx.op("Mul", [cube.name, ctx.const("c", 0.044715)], x.shape, suffix="Mul")
            inner = ctx.op("Add", [x.name, inner.name], x.shape, suffix="Add")
            inner = ctx.op("Mul", [inner.name, ctx.const("k", math.sqrt(2 / math.pi))], x.shape, suffix="Scale")
            t = ctx.op("Tanh", [inner.name], x.shape, suffix="Tanh")
        else:  # 0.5 x (1 + erf(x / sqrt(2)))
            scaled = ctx.op("Div", [x.name, ctx.const("sqrt2", math.sqrt(2))], x.shape, suffix="Div")
            t = ctx.op("Erf", [scaled.name], x.shape, suffix="Erf")
        one = ctx.op("Add", [t.name, ctx.const("one", 1.0)], x.shape, suffix="AddOne")
        half = ctx.op("Mul", [x.name, ctx.const("half", 0.5)], x.shape, suffix="Half")
        return ctx.op("Mul", [half.name, one.name], x.shape)

    def reference(self, a: GELUSettings, inputs: tuple[Shape, ...]) -> str:
        return f"nn.GELU(approximate={a.approximate!r})"


class ReLU6Settings(OpSettings):
    summary: ClassVar[str] = "min(max(x, 0), 6), nn.ReLU6 (MobileNet)."
    example: ClassVar[dict[str, Any]] = {"name": "act"}


class ReLU6(Elementwise):
    name = "relu6"
    Settings = ReLU6Settings
    traits = IN_PLACE
    module = "nn.ReLU6"

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        return ctx.op("Clip", [x.name, ctx.const("min", 0.0), ctx.const("max", 6.0)], x.shape)


class HardtanhSettings(OpSettings):
    summary: ClassVar[str] = "x clipped to [min, max], nn.Hardtanh."
    example: ClassVar[dict[str, Any]] = {"min": -1.0, "max": 1.0}
    min: float = Field(-1.0, description="Lower bound.")
    max: float = Field(1.0, description="Upper bound.")


class Hardtanh(Elementwise):
    name = "hardtanh"
    Settings = HardtanhSettings
    traits = IN_PLACE
    module = "nn.Hardtanh"

    def infer(self, s: HardtanhSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's shape; ``max`` must exceed ``min`` (PyTorch refuses otherwise).

        >>> Hardtanh().infer(HardtanhSettings(min=0.0, max=6.0), ((4,),), "h").shape
        (4,)
        """
        if not s.max > s.min:
            raise RuleError(f"{label}: `max` ({s.max:g}) must be greater than `min` ({s.min:g})", "max")
        return Inferred(s, inputs[0])

    def caption(self, a: HardtanhSettings) -> str:
        return f"hardtanh [{a.min:g}, {a.max:g}]"

    def keywords(self, ctx: TorchContext) -> list[tuple[str, Any]]:
        return [("min_val", ctx.value("min", "min", default=-1.0)), ("max_val", ctx.value("max", "max", default=1.0))]

    def onnx(self, a: HardtanhSettings, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        return ctx.op("Clip", [x.name, ctx.const("min", float(a.min)), ctx.const("max", float(a.max))], x.shape)

    def reference(self, a: HardtanhSettings, inputs: tuple[Shape, ...]) -> str:
        return f"nn.Hardtanh({a.min}, {a.max})"


class HardswishSettings(OpSettings):
    summary: ClassVar[str] = "x * relu6(x + 3) / 6, nn.Hardswish (MobileNetV3)."
    example: ClassVar[dict[str, Any]] = {"name": "act"}


class Hardswish(Elementwise):
    name = "hardswish"
    Settings = HardswishSettings
    traits = IN_PLACE
    module = "nn.Hardswish"
    onnx_op = "HardSwish"


class HardsigmoidSettings(OpSettings):
    summary: ClassVar[str] = "relu6(x + 3) / 6, nn.Hardsigmoid (MobileNetV3's squeeze-and-excitation gate)."
    example: ClassVar[dict[str, Any]] = {"name": "gate"}


class Hardsigmoid(Elementwise):
    name = "hardsigmoid"
    Settings = HardsigmoidSettings
    traits = IN_PLACE
    module = "nn.Hardsigmoid"
    onnx_op = "HardSigmoid"

    def onnx_attrs(self, a: Any) -> dict[str, Any]:
        return {"alpha": 1.0 / 6.0, "beta": 0.5}  # ONNX's defaults are 0.2 and 0.5


class SoftmaxSettings(OpSettings):
    summary: ClassVar[str] = "Softmax over the channels or the last axis."
    example: ClassVar[dict[str, Any]] = {"over": "channels"}
    over: Literal["channels", "last"] = Field("channels", description="Axis the probabilities sum over.")


@dataclass(frozen=True)
class SoftmaxAttrs:
    over: str
    axis: int  # without the batch axis


class Softmax(Op):
    name = "softmax"
    family = "activation"
    Settings = SoftmaxSettings
    traits = Traits(stateless=True)

    def infer(self, s: SoftmaxSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's shape, normalised over the channel axis (0) or the last one.

        >>> Softmax().infer(SoftmaxSettings(over="last"), ((3, 5),), "softmax").attrs.axis
        1
        """
        shape = inputs[0]
        return Inferred(SoftmaxAttrs(s.over, 0 if s.over == "channels" else len(shape) - 1), shape)

    def torch(self, a: SoftmaxAttrs, ctx: TorchContext) -> TorchModule:
        dim = -1 if a.over == "last" else a.axis + 1
        return TorchModule(f"nn.Softmax(dim={dim})", list(ctx.input))

    def onnx(self, a: SoftmaxAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        return ctx.op("Softmax", [x.name], x.shape, axis=a.axis + 1)

    def reference(self, a: SoftmaxAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"nn.Softmax(dim={a.axis + 1})"


class ELUSettings(OpSettings):
    summary: ClassVar[str] = "x for x > 0, alpha * (exp(x) - 1) otherwise, nn.ELU."
    example: ClassVar[dict[str, Any]] = {"alpha": 1.0}
    alpha: float = Field(1.0, description="The value negative inputs saturate towards (as -alpha).")


class ELU(Elementwise):
    name = "elu"
    Settings = ELUSettings
    traits = IN_PLACE
    module = "nn.ELU"
    onnx_op = "Elu"

    def caption(self, a: ELUSettings) -> str:
        return "elu" if a.alpha == 1 else f"elu {a.alpha:g}"

    def keywords(self, ctx: TorchContext) -> list[tuple[str, Any]]:
        return [("alpha", ctx.value("alpha", "alpha", default=1.0))]

    def onnx_attrs(self, a: ELUSettings) -> dict[str, Any]:
        return {"alpha": float(a.alpha)}

    def reference(self, a: ELUSettings, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: F.elu(x, alpha={a.alpha})"


class MishSettings(OpSettings):
    summary: ClassVar[str] = "x * tanh(softplus(x)), nn.Mish (YOLOv4)."
    example: ClassVar[dict[str, Any]] = {"name": "act"}


class Mish(Elementwise):
    name = "mish"
    Settings = MishSettings
    module = "nn.Mish"
    onnx_op = "Mish"  # ONNX opset 18, the oldest cnnspec builds
    functional = "nn.functional.mish({})"

    def reference(self, a: MishSettings, inputs: tuple[Shape, ...]) -> str:
        return "lambda x: x * torch.tanh(F.softplus(x))"


class PReLUSettings(OpSettings):
    summary: ClassVar[str] = "x for x > 0, a * x otherwise with a learned slope a, nn.PReLU."
    example: ClassVar[dict[str, Any]] = {"per_channel": True}
    per_channel: bool = Field(False, description="One slope per channel (nn.PReLU(num_parameters=C)) instead of one "
                              "for the whole layer.")
    init: float = Field(0.25, description="The slopes' initial value.")


@dataclass(frozen=True)
class PReLUAttrs:
    num_parameters: int
    init: float
    per_channel: bool


class PReLU(Op):
    name = "prelu"
    family = "activation"
    Settings = PReLUSettings
    traits = Traits()  # a per-channel slope follows the channel axis: not layout-free like the others

    def infer(self, s: PReLUSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's shape; a learnable ``weight`` of 1 slope, or one per channel (axis 0 without the
        batch: the features of a flat input).

        >>> PReLU().infer(PReLUSettings(per_channel=True), ((64, 8, 8),), "prelu").params[0].shape
        (64,)
        """
        shape = inputs[0]
        count = shape[0] if s.per_channel else 1
        weight = TensorSpec("weight", (count,), Init("constant", value=s.init))
        return Inferred(PReLUAttrs(count, s.init, s.per_channel), shape, (weight,))

    def caption(self, a: PReLUAttrs) -> str:
        return "prelu per channel" if a.per_channel else "prelu"

    def torch(self, a: PReLUAttrs, ctx: TorchContext) -> TorchModule:
        keywords: list[tuple[str, Any]] = [("init", ctx.value("init", "init", default=0.25))]
        if any(attrs.per_channel for attrs in ctx.attrs):
            ctx.same("per_channel", "the torch backend needs a block's prelu `per_channel` to be equal in every "
                     "instance")
            keywords.insert(0, ("num_parameters", ctx.derived("num_parameters", ctx.input[0])))
        return TorchModule(ctx.call("nn.PReLU", [], keywords), list(ctx.input))

    def onnx(self, a: PReLUAttrs, ctx: OnnxContext) -> OnnxValue:
        """PRelu with the slopes viewed as (C, 1, ...), which broadcasts over the positions."""
        x = ctx.inputs[0]
        view = (a.num_parameters,) + (1,) * (len(x.shape) - 2)
        return ctx.op("PRelu", [x.name, ctx.param("weight", view)], x.shape)

    def reference(self, a: PReLUAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"nn.PReLU({a.num_parameters}, init={a.init})"


OPS = (ReLU(), LeakyReLU(), GELU(), SiLU(), Sigmoid(), Tanh(), Softmax(), Identity(), ReLU6(), Hardtanh(),
       Hardswish(), Hardsigmoid(), ELU(), Mish(), PReLU())
