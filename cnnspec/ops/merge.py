"""Merges: ops with two or more inputs. ``add`` sums equal shapes (a residual connection), ``concat`` joins
tensors along the channels. A spec's ``residual`` and ``concat`` structures become these nodes.

Also here: the projection shortcut's rule, ``projection`` (torchvision's ``downsample``: the 1x1 conv
stride and width that map a residual's input onto its body's output)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from cnnspec.ir import Shape
from cnnspec.ops.base import (
    Inferred,
    OnnxContext,
    OnnxValue,
    Op,
    OpSettings,
    RuleError,
    TorchContext,
    TorchExpression,
    Traits,
)
from cnnspec.ops.shape import fmt, projection_stride


class Label(str):
    """How messages name a layer (``conv `layer1.0.conv1```); for a merge written as a spec structure, also
    how they name its inputs (``the body``, ``the shortcut``; ``branch 1``, ...) and whether a projection
    shortcut may be suggested (an identity shortcut that a 1x1 conv could fix)."""

    roles: tuple[str, ...]
    suggest_projection: bool

    def __new__(cls, text: str, roles: tuple[str, ...] = (), suggest_projection: bool = False) -> Self:
        self = super().__new__(cls, text)
        self.roles = roles
        self.suggest_projection = suggest_projection
        return self


def _role(label: str, index: int) -> str:
    roles = getattr(label, "roles", ())
    return roles[index] if index < len(roles) else f"input {index + 1}"


class AddSettings(OpSettings):
    summary: ClassVar[str] = "The sum of its inputs, which must have equal shapes (a residual connection)."
    example: ClassVar[dict[str, Any]] = {"name": "sum"}


class Add(Op):
    name = "add"
    family = "merge"
    Settings = AddSettings
    traits = Traits(stateless=True, fresh_output=True, inputs=0, torch_module=False)

    def infer(self, s: AddSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The common shape of the inputs.

        >>> Add().infer(AddSettings(), ((64, 56, 56), (64, 56, 56)), "add").shape
        (64, 56, 56)
        """
        first = inputs[0]
        for index, shape in enumerate(inputs[1:], start=1):
            if shape != first:
                hint = ""
                if getattr(label, "suggest_projection", False) and can_project(shape, first):
                    hint = "; add `shortcut: {projection: auto}` to project the input"
                elif getattr(label, "suggest_projection", False) and pooled_away(shape, first):
                    hint = ("; the body pools every position into one, so the input cannot be added to it (a "
                            "squeeze-and-excitation gate multiplies the input, it is not a residual)")
                raise RuleError(f"{label}: {_role(label, 0)} gives {fmt(first)} but {_role(label, index)} gives "
                                f"{fmt(shape)}{hint}")
        return Inferred(s, first)

    def caption(self, a: Any) -> str:
        return "+"

    def torch(self, a: Any, ctx: TorchContext) -> TorchExpression:
        terms = [f"{{{i}}}" for i in range(len(ctx.inputs))]
        in_place = f"{terms[0]} += {' + '.join(terms[1:])}"
        return TorchExpression(" + ".join(terms), list(ctx.inputs[0]), in_place=in_place)

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        names = [ctx.materialize(x).name for x in ctx.inputs]
        y = ctx.op("Add", names[:2], ctx.out_shape())
        for more in names[2:]:
            y = ctx.op("Add", [y.name, more], ctx.out_shape())
        return y

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        return "lambda *xs: sum(xs)"


class ConcatSettings(OpSettings):
    summary: ClassVar[str] = "Its inputs joined along the channels; every other axis must agree."
    example: ClassVar[dict[str, Any]] = {"name": "cat"}


class Concat(Op):
    name = "concat"
    family = "merge"
    Settings = ConcatSettings
    traits = Traits(stateless=True, fresh_output=True, inputs=0, torch_module=False)

    def infer(self, s: ConcatSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Channels summed; every other axis equal.

        >>> Concat().infer(ConcatSettings(), ((32, 28, 28), (16, 28, 28)), "concat").shape
        (48, 28, 28)
        """
        first = inputs[0]
        for index, out in enumerate(inputs[1:], start=1):
            if len(out) != len(first) or out[1:] != first[1:]:
                raise RuleError(f"{label}: {_role(label, index)} gives {fmt(out)} but {_role(label, 0)} gives "
                                f"{fmt(first)}; all {_plural(label)} must agree on everything but the channels")
        return Inferred(s, (sum(shape[0] for shape in inputs), *first[1:]))

    def torch(self, a: Any, ctx: TorchContext) -> TorchExpression:
        channels = ctx.total([sym[0] for sym in ctx.inputs])
        return TorchExpression("torch.cat([{inputs}], dim=1)", ctx.shape([channels, *ctx.inputs[0][1:]]))

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        names = [ctx.materialize(x).name for x in ctx.inputs]
        return ctx.op("Concat", names, ctx.out_shape(), axis=1)

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        return "lambda *xs: torch.cat(xs, dim=1)"


def _plural(label: str) -> str:
    roles = getattr(label, "roles", ())
    return "branches" if roles and roles[0].startswith("branch") else "inputs"


def can_project(source: Shape, target: Shape) -> bool:
    """Whether a 1x1 conv (with some stride) maps ``source`` onto ``target`` as a downsampling shortcut
    does: an axis the body pooled down to one position is not projected (a stride as long as the axis would
    keep one pixel of the input, as on a squeeze-and-excitation attempt)."""
    return (len(source) == len(target) >= 2 and not pooled_away(source, target)
            and all(projection_stride(length, size) is not None for length, size in zip(source[1:], target[1:])))


def pooled_away(source: Shape, target: Shape) -> bool:
    """Whether the body reduced some axis of more than one position to one (a global pool)."""
    return len(source) == len(target) >= 2 and any(size == 1 < length for length, size in zip(source[1:], target[1:]))


def projection(source: Shape, target: Shape, label: str) -> tuple[int, tuple[int, ...]]:
    """The output channels and per-axis strides of the 1x1 conv that maps ``source`` onto ``target``
    (torchvision's ``downsample``), or a RuleError saying why none does.

    >>> projection((64, 56, 56), (128, 28, 28), "residual add")
    (128, (2, 2))
    """
    if len(target) != len(source) or len(source) < 2:
        raise RuleError(f"{label}: cannot project a {fmt(source)} input onto the body's {fmt(target)} output with "
                        "a 1x1 conv")
    strides = []
    for length, size in zip(source[1:], target[1:]):
        stride = projection_stride(length, size)
        if stride is None:
            raise RuleError(f"{label}: no 1x1 conv stride turns the input {fmt(source)} into the body's "
                            f"{fmt(target)}")
        strides.append(stride)
    return target[0], tuple(strides)


OPS = (Add(), Concat())
