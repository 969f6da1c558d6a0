"""Layout: ``flatten`` (to one feature axis) and ``permute`` (reorder the axes, batch axis included)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from cnnspec.ir import Shape
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
from cnnspec.ops.shape import fmt, prod


class FlattenSettings(OpSettings):
    summary: ClassVar[str] = "[C, ...] to one feature axis."
    example: ClassVar[dict[str, Any]] = {"name": "flatten"}


class Flatten(Op):
    name = "flatten"
    family = "reshape"
    Settings = FlattenSettings
    traits = Traits(stateless=True, dynamic_spatial=False)

    def infer(self, s: FlattenSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """One axis holding every element; each output sees the whole input.

        >>> Flatten().infer(FlattenSettings(), ((16, 5, 5),), "flatten").shape
        (400,)
        """
        shape = inputs[0]
        return Inferred(s, (prod(shape),), whole=len(shape) > 1)

    def torch(self, a: FlattenSettings, ctx: TorchContext) -> TorchModule:
        return TorchModule("nn.Flatten()", ctx.shape([ctx.product(ctx.input)]), "torch.flatten({}, 1)")

    def onnx(self, a: FlattenSettings, ctx: OnnxContext) -> OnnxValue:
        return ctx.op("Flatten", [ctx.inputs[0].name], ctx.out_shape(), axis=1)

    def reference(self, a: FlattenSettings, inputs: tuple[Shape, ...]) -> str:
        return "nn.Flatten()"


PERMUTE = '''class Permute(nn.Module):
    """Reorder the axes of a tensor, batch axis included (torchvision's ``ops.misc.Permute``)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"
'''


class PermuteSettings(OpSettings):
    summary: ClassVar[str] = "Reorders the axes, torch.permute (batch axis 0 included and kept first)."
    example: ClassVar[dict[str, Any]] = {"dims": [0, 2, 3, 1]}
    dims: list[int] = Field(description="New order of the axes, batch first.", examples=[[0, 2, 3, 1]])


@dataclass(frozen=True)
class PermuteAttrs:
    dims: tuple[int, ...]


class Permute(Op):
    name = "permute"
    family = "reshape"
    Settings = PermuteSettings
    traits = Traits(stateless=True, layout_aware=True)

    def infer(self, s: PermuteSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The input's axes in the order ``dims`` (batch axis 0 first and kept first).

        >>> Permute().infer(PermuteSettings(dims=[0, 2, 3, 1]), ((96, 56, 56),), "p").shape
        (56, 56, 96)
        """
        shape, dims = inputs[0], s.dims
        if sorted(dims) != list(range(len(shape) + 1)) or dims[0] != 0:
            raise RuleError(f"{label}: `dims` must reorder 0..{len(shape)} (batch axis 0 first) for a "
                            f"{fmt(shape)} input, got {dims}", "dims")
        return Inferred(PermuteAttrs(tuple(dims)), tuple(shape[d - 1] for d in dims[1:]))

    def caption(self, a: PermuteAttrs) -> str:
        return "permute " + ",".join(str(d) for d in a.dims)

    def torch(self, a: PermuteAttrs, ctx: TorchContext) -> TorchModule:
        ctx.helper("Permute", PERMUTE)
        dims = ctx.same("dims", "the torch backend needs a block's permute dims to be equal in every instance")
        return TorchModule(f"Permute({list(dims)!r})", ctx.shape([ctx.input[d - 1] for d in dims[1:]]))

    def onnx(self, a: PermuteAttrs, ctx: OnnxContext) -> OnnxValue:
        """A Transpose, except between channel-first and channels-last when permutes are deferred: then the
        value is only marked (or unmarked) as channels-last and no node is emitted (see the ONNX backend)."""
        x = ctx.inputs[0]
        dims = list(a.dims)
        rank = len(dims)
        to_last, to_first = [0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]
        if ctx.defer_permutes and rank >= 3:
            if not x.channels_last and dims == to_last:
                return ctx.relabel(x, True)
            if x.channels_last and dims == to_first:
                return ctx.relabel(x, False)
        x = ctx.materialize(x)
        return ctx.op("Transpose", [x.name], tuple(x.shape[d] for d in dims), perm=dims)

    def reference(self, a: PermuteAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x.permute({list(a.dims)})"


OPS = (Flatten(), Permute())
