"""Regularisation: layers that act only in training (dropout, stochastic depth) and are identities at
inference, so the ONNX graph has no node for them."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from cnnspec.ir import Shape
from cnnspec.ops.base import (
    Inferred,
    OnnxContext,
    OnnxValue,
    Op,
    OpSettings,
    TorchContext,
    TorchModule,
    Traits,
)
from cnnspec.ops.shape import probability
from cnnspec.settings import Field

TRAINING_ONLY = Traits(stateless=True, elementwise=True, pass_through=True)


class _TrainingOnly(Op):
    family = "regularisation"
    traits = TRAINING_ONLY

    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's shape; ``p`` is a probability.

        >>> Dropout().infer(DropoutSettings(p=0.2), ((10,),), "dropout").shape
        (10,)
        """
        probability(s.p, label)
        return Inferred(s, inputs[0])

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        """An identity at inference: no node is emitted."""
        return ctx.inputs[0]


class DropoutSettings(OpSettings):
    summary: ClassVar[str] = "Zeroes elements with probability p in training."
    example: ClassVar[dict[str, Any]] = {"p": 0.5}
    p: float = Field(0.5, description="Drop probability, 0 <= p < 1.")


class Dropout(_TrainingOnly):
    name = "dropout"
    Settings = DropoutSettings

    def caption(self, a: DropoutSettings) -> str:
        return f"dropout {a.p:g}"

    def torch(self, a: DropoutSettings, ctx: TorchContext) -> TorchModule:
        return TorchModule(ctx.call("nn.Dropout", [], [("p", ctx.value("p", "p", default=0.5))]), list(ctx.input))

    def reference(self, a: DropoutSettings, inputs: tuple[Shape, ...]) -> str:
        return f"nn.Dropout({a.p})"


STOCHASTIC_DEPTH = '''class StochasticDepth(nn.Module):
    """Drop whole residual branches while training (torchvision's ``ops.StochasticDepth``).

    ``mode="row"`` drops each sample's branch independently, ``mode="batch"`` the whole batch's; the
    survivors are scaled by 1 / (1 - p). An identity in eval mode.
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"
'''


class StochasticDepthSettings(OpSettings):
    summary: ClassVar[str] = "Drops the whole residual branch with probability p in training."
    example: ClassVar[dict[str, Any]] = {"p": 0.1, "mode": "row"}
    p: float = Field(description="Drop probability, 0 <= p < 1.", examples=[0.1])
    mode: Literal["row", "batch"] = Field("row", description="Per sample (`row`) or per batch.")


class StochasticDepth(_TrainingOnly):
    name = "stochastic_depth"
    Settings = StochasticDepthSettings

    def caption(self, a: StochasticDepthSettings) -> str:
        return f"stochastic depth {a.p:g}"

    def torch(self, a: StochasticDepthSettings, ctx: TorchContext) -> TorchModule:
        ctx.helper("StochasticDepth", STOCHASTIC_DEPTH)
        return TorchModule(ctx.call("StochasticDepth", [ctx.value("p", "p"), ctx.value("mode", "mode")], []),
                           list(ctx.input))

    def reference(self, a: StochasticDepthSettings, inputs: tuple[Shape, ...]) -> str:
        return "nn.Identity()"  # at inference (the parity tests run in eval mode)


OPS = (Dropout(), StochasticDepth())
