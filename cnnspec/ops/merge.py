"""Merges: ops with two or more inputs. ``add`` sums (a residual connection), ``mul`` multiplies (a gate:
squeeze-and-excitation scales the channels), both broadcasting as PyTorch does (a ``[C, 1, 1]`` tensor
against a ``[C, H, W]`` one); ``concat`` joins tensors along the channels. A spec's ``residual``, ``gate``
and ``concat`` structures become these nodes.

Also here: the projection shortcut's rule, ``projection`` (torchvision's ``downsample``: the 1x1 conv
stride and width that map a residual's input onto its body's output)."""

from __future__ import annotations

from dataclasses import dataclass
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
    exact: bool  # the inputs must have equal shapes (a residual's body and shortcut: no broadcasting)
    hint: str  # said after a broadcasting refusal

    def __new__(cls, text: str, roles: tuple[str, ...] = (), suggest_projection: bool = False,
                exact: bool = False, hint: str = "") -> Self:
        self = super().__new__(cls, text)
        self.roles = roles
        self.suggest_projection = suggest_projection
        self.exact = exact
        self.hint = hint
        return self


def _role(label: str, index: int) -> str:
    roles = getattr(label, "roles", ())
    return roles[index] if index < len(roles) else f"input {index + 1}"


@dataclass(frozen=True)
class BroadcastAttrs:
    """A broadcasting merge's attributes: ``full``, the first input that has the output's shape (0: the
    first input, which ``{0} += {1}`` may then overwrite; None: the output is larger than every input)."""

    full: int | None

    @classmethod
    def of(cls, inputs: tuple[Shape, ...], out: Shape) -> BroadcastAttrs:
        return cls(next((i for i, shape in enumerate(inputs) if shape == out), None))


def _out_sym(ctx: TorchContext) -> Any:
    """The output's symbolic shape: that of the input with the output's shape in every instance."""
    full = {getattr(a, "full", 0) for a in ctx.attrs}
    index = full.pop() if len(full) == 1 else None
    return ctx.shape(list(ctx.inputs[index]) if index is not None else [None] * len(ctx.inputs[0]))


def broadcast(inputs: tuple[Shape, ...], label: str) -> Shape:
    """The shape of an elementwise merge of ``inputs`` under PyTorch's broadcasting, the batch axis aside:
    equal ranks, and per axis equal sizes or a 1 (a ``[C, 1, 1]`` gate times a ``[C, H, W]`` tensor).

    >>> broadcast(((64, 56, 56), (64, 1, 1)), "mul")
    (64, 56, 56)
    >>> broadcast(((64, 56, 56), (32, 1, 1)), "mul")
    Traceback (most recent call last):
    cnnspec.ops.base.RuleError: mul: input 1 gives 64x56x56 but input 2 gives 32x1x1, which do not broadcast: channels 64 against 32 (each axis must be equal or 1)
    """
    out = list(inputs[0])
    for index, shape in enumerate(inputs[1:], start=1):
        problem = _broadcast_problem(tuple(out), shape)
        if problem is not None:
            raise RuleError(f"{label}: {_role(label, 0)} gives {fmt(inputs[0])} but {_role(label, index)} gives "
                            f"{fmt(shape)}{problem}{getattr(label, 'hint', '')}")
        out = [max(a, b) for a, b in zip(out, shape)]
    return tuple(out)


_AXIS_NAMES = {1: ("features",), 2: ("channels", "length"), 3: ("channels", "height", "width"),
               4: ("channels", "depth", "height", "width")}


def _broadcast_problem(first: Shape, shape: Shape) -> str | None:
    if shape == first:
        return None
    if len(shape) != len(first):
        return (f", which do not broadcast: {len(first)} axes against {len(shape)} (merged tensors need the same "
                "number of axes)")
    names = _AXIS_NAMES.get(len(first), ())
    for axis, (a, b) in enumerate(zip(first, shape)):
        if a != b and 1 not in (a, b):
            what = names[axis] if axis < len(names) else f"axis {axis}"
            return f", which do not broadcast: {what} {a} against {b} (each axis must be equal or 1)"
    return None


class AddSettings(OpSettings):
    summary: ClassVar[str] = ("The sum of its inputs, broadcast as PyTorch does (equal sizes or 1 per axis); a "
                              "residual's body and shortcut must have equal shapes.")
    example: ClassVar[dict[str, Any]] = {"name": "sum"}


class Add(Op):
    name = "add"
    family = "merge"
    Settings = AddSettings
    traits = Traits(stateless=True, fresh_output=True, inputs=0, torch_module=False)

    def infer(self, s: AddSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The inputs' broadcast shape (a residual's: their common shape). 0 MACs: only convolutions and
        linear layers are counted (README, counting conventions).

        >>> Add().infer(AddSettings(), ((64, 56, 56), (64, 56, 56)), "add").shape
        (64, 56, 56)
        >>> Add().infer(AddSettings(), ((64, 56, 56), (64, 1, 1)), "add").shape
        (64, 56, 56)
        """
        first = inputs[0]
        for index, shape in enumerate(inputs[1:], start=1):
            if shape == first:
                continue
            hint = None
            if getattr(label, "suggest_projection", False) and can_project(shape, first):
                hint = "; add `shortcut: {projection: auto}` to project the input"
            elif getattr(label, "suggest_projection", False) and pooled_away(shape, first):
                hint = ("; the body pools every position into one, so the input cannot be added to it (a "
                        "squeeze-and-excitation gate multiplies the input, it is not a residual)")
            elif getattr(label, "exact", False):
                hint = ""
            if hint is not None:
                raise RuleError(f"{label}: {_role(label, 0)} gives {fmt(first)} but {_role(label, index)} gives "
                                f"{fmt(shape)}{hint}")
        out = broadcast(inputs, label)
        return Inferred(BroadcastAttrs.of(inputs, out), out)

    def caption(self, a: Any) -> str:
        return "+"

    def torch(self, a: Any, ctx: TorchContext) -> TorchExpression:
        terms = [f"{{{i}}}" for i in range(len(ctx.inputs))]
        in_place = f"{terms[0]} += {' + '.join(terms[1:])}"
        if all(getattr(a, "full", 0) == 0 for a in ctx.attrs):
            return TorchExpression(" + ".join(terms), list(ctx.inputs[0]), in_place=in_place)
        return TorchExpression(" + ".join(terms), _out_sym(ctx))

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        return _chain(ctx, "Add")

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        return "lambda *xs: sum(xs)"


def _chain(ctx: OnnxContext, op_type: str) -> OnnxValue:
    """``op_type`` (``Add``, ``Mul``: ONNX broadcasts as PyTorch does) over every input, left to right."""
    names = [ctx.materialize(x).name for x in ctx.inputs]
    y = ctx.op(op_type, names[:2], ctx.out_shape())
    for more in names[2:]:
        y = ctx.op(op_type, [y.name, more], ctx.out_shape())
    return y


class MulSettings(OpSettings):
    summary: ClassVar[str] = ("The elementwise product of its inputs, broadcast as PyTorch does (equal sizes or "
                              "1 per axis): a [C, 1, 1] gate scales each channel of a [C, H, W] tensor.")
    example: ClassVar[dict[str, Any]] = {"name": "scaled"}


class Mul(Op):
    name = "mul"
    family = "merge"
    Settings = MulSettings
    traits = Traits(stateless=True, fresh_output=True, inputs=0, torch_module=False)

    def infer(self, s: MulSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """The inputs' broadcast shape; no parameters, 0 MACs (as ``add``: only convolutions and linear
        layers are counted, README, counting conventions).

        >>> Mul().infer(MulSettings(), ((960, 7, 7), (960, 1, 1)), "mul").shape
        (960, 7, 7)
        """
        out = broadcast(inputs, label)
        return Inferred(BroadcastAttrs.of(inputs, out), out)

    def caption(self, a: Any) -> str:
        return "*"  # not `x`, which reads as a shape's separator (16x8x8)

    def torch(self, a: Any, ctx: TorchContext) -> TorchExpression:
        return TorchExpression(" * ".join(f"{{{i}}}" for i in range(len(ctx.inputs))), _out_sym(ctx))

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        return _chain(ctx, "Mul")

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        return "lambda *xs: torch.stack(torch.broadcast_tensors(*xs)).prod(0)"


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


OPS = (Add(), Mul(), Concat())
