"""Resampling: ``upsample`` (nearest or linear interpolation, by a scale factor or to a size; PyTorch's
nn.Upsample / F.interpolate, and ONNX Resize with the coordinate mapping that reproduces each mode).

Learned upsampling lives with the convolutions (``conv_transpose``); the channel-to-space rearrangement with
the layout ops (``pixel_shuffle``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from cnnspec.ir import Shape
from cnnspec.ops.base import (
    Inferred,
    IntOrList,
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
from cnnspec.ops.shape import axis_name, expand, fmt, interpolation_window, size_of, spatial_input
from cnnspec.settings import Field

LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}  # PyTorch's name of linear interpolation by rank
# ONNX Resize's source coordinate for each PyTorch mode: nearest reads floor(o * L / out) (asymmetric, floor);
# linear (o + 1/2) L / out - 1/2 (half_pixel: PyTorch computes it for an output of 1 too, unlike
# pytorch_half_pixel), or o (L - 1) / (out - 1) with align_corners
COORDINATES = {(False, False): "asymmetric", (True, False): "half_pixel", (True, True): "align_corners"}


class UpsampleSettings(OpSettings):
    summary: ClassVar[str] = ("Upsampling by interpolation, nn.Upsample: `nearest` copies pixels, `linear` "
                              "interpolates (bilinear in 2D, trilinear in 3D); by `scale` or to `size`.")
    example: ClassVar[dict[str, Any]] = {"scale": 2, "mode": "linear"}
    scale: int | float | list[int | float] | None = Field(
        None, description="Factor per spatial axis (one number or one per axis); the output size, L * scale, must "
        "be a whole number.", examples=[2, [1, 2]])
    size: IntOrList | None = Field(None, description="Output size instead of `scale`: one int or one per spatial "
                                   "axis.", examples=[[64, 64]])
    size_of: str | None = Field(
        None, description="Output size instead of `scale`: the spatial size of a named tensor (an `as:` name), or "
        "of the spec's input with `input` (torchvision's segmentation heads: `F.interpolate(x, size=input_shape)`).",
        examples=["input"])
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = Field(
        "nearest", description="`nearest`, or `linear` interpolation along every spatial axis (PyTorch's `linear`, "
        "`bilinear` or `trilinear` by rank; those names are accepted for 2D and 3D inputs).")
    align_corners: bool | None = Field(
        None, description="Linear only: map the corner pixels' centres onto each other (PyTorch's default: false).",
        examples=[True])


@dataclass(frozen=True)
class UpsampleAttrs:
    mode: str  # PyTorch's: nearest, or linear | bilinear | trilinear by rank
    linear: bool
    size: tuple[int, ...]  # the output's spatial size
    scale: tuple[int | float, ...] | None  # per axis, as written; None when the spec gave `size`
    align_corners: bool  # always False for nearest
    by_scale: bool
    size_of: str | None = None  # the tensor (its name) whose spatial size the output takes: a second input


class Upsample(Op):
    name = "upsample"
    family = "resample"
    Settings = UpsampleSettings
    traits = Traits(stateless=True, fresh_output=True, dynamic_spatial=False)  # Resize to fixed sizes
    tensor_settings = ("size_of",)  # `size_of: name` adds the named tensor as a second input (its shape only)

    def infer(self, s: UpsampleSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output ``L * scale`` per axis (refused unless whole: PyTorch would floor it), or ``size``.
        Receptive field: neighbouring outputs are L / out input positions apart ((L - 1) / (out - 1) with
        ``align_corners``) and each reads ``interpolation_window`` inputs (1 for nearest, 2 for linear).

        >>> r = Upsample().infer(UpsampleSettings(scale=2, mode="linear"), ((64, 16, 16),), "upsample")
        >>> r.shape, r.window
        ((64, 32, 32), ((2, Fraction(1, 2)), (2, Fraction(1, 2))))
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        size = shape[1:]
        given = [k for k in ("scale", "size", "size_of") if getattr(s, k) is not None]
        if not given:
            raise RuleError(f"{label} needs `scale` (a factor per axis), `size` (the output size) or `size_of` (a "
                            "tensor whose size it takes)")
        if given[:2] == ["scale", "size"]:
            raise RuleError(f"{label}: give `scale` or `size`, not both (PyTorch refuses both)", "size")
        if len(given) > 1:
            raise RuleError(f"{label}: give one of `scale`, `size` and `size_of`, not "
                            f"{' and '.join(f'`{k}`' for k in given)} (PyTorch takes one)", given[1])
        mode = s.mode
        if mode in ("bilinear", "trilinear") and LINEAR_MODES[n] != mode:
            raise RuleError(f"{label}: mode `{mode}` interpolates {2 if mode == 'bilinear' else 3}D inputs, but its "
                            f"{fmt(shape)} input is {n}D; write `mode: linear`, which interpolates along every "
                            "spatial axis", "mode")
        linear = mode != "nearest"
        if s.align_corners is not None and not linear:
            raise RuleError(f"{label}: `align_corners` applies to linear interpolation only; nearest copies whole "
                            "pixels (PyTorch refuses it)", "align_corners")
        align = bool(s.align_corners)
        scale = None
        if s.scale is not None:
            scale = _per_axis(s.scale, n, label)
            out = _scaled(size, scale, label)
        elif s.size_of is not None:
            out = size_of(inputs[1], n, s.size_of, label)
        else:
            assert s.size is not None  # `given` holds exactly one of the three
            out = expand(s.size, n, "size", label, 1)
        window = tuple((interpolation_window(size[i], out[i], linear, align), _step(size[i], out[i], align))
                       for i in range(n))
        attrs = UpsampleAttrs(LINEAR_MODES[n] if linear else "nearest", linear, out, scale, align, scale is not None,
                              s.size_of)
        return Inferred(attrs, (shape[0], *out), window=window)

    def caption(self, a: UpsampleAttrs) -> str:
        if a.size_of is not None:
            return f"upsample -> {fmt(a.size)} (size of {a.size_of}, {a.mode}{', align corners' if a.align_corners else ''})"
        elif a.scale is None:
            how = f"-> {fmt(a.size)}"
        elif all(v == a.scale[0] for v in a.scale):
            how = f"x{a.scale[0]:g}"
        else:
            how = "x(" + ", ".join(f"{v:g}" for v in a.scale) + ")"
        return f"upsample {how} ({a.mode}{', align corners' if a.align_corners else ''})"

    def torch(self, a: UpsampleAttrs, ctx: TorchContext) -> TorchModule | TorchExpression:
        if ctx.same("size_of", "the torch backend needs a block's upsample to give `size_of` in every instance, or "
                    "in none") is not None:  # F.interpolate to the other tensor's size, as torchvision writes it
            keywords: list[tuple[str, Any]] = [("mode", ctx.value("mode", "mode", default="nearest"))]
            if ctx.same("linear", "the torch backend needs a block's upsample to interpolate linearly in every "
                        "instance, or in none"):  # written out, as torchvision writes it
                keywords.append(("align_corners", ctx.value("align_corners", "align_corners")))
            call = ctx.call("nn.functional.interpolate", ["{0}", f"size={{1}}.shape[-{ctx.rank}:]"], keywords)
            return TorchExpression(call, ctx.shape([ctx.input[0], *ctx.inputs[1][1:]]))
        by_scale = ctx.same("by_scale", "the torch backend needs a block's upsample to give `scale` in every "
                            "instance, or `size` in every instance")
        keywords = [("scale_factor", ctx.value("scale", "scale")) if by_scale
                                           else ("size", ctx.value("size", "size"))]
        keywords.append(("mode", ctx.value("mode", "mode", default="nearest")))
        keywords.append(("align_corners", ctx.value("align_corners", "align_corners", default=False)))
        return TorchModule(ctx.call("nn.Upsample", [], keywords), ctx.shape([ctx.input[0], *[None] * ctx.rank]))

    def onnx(self, a: UpsampleAttrs, ctx: OnnxContext) -> OnnxValue:
        """A 1x1 input (an image-level pooling branch): Expand. Nearest by whole factors: each value repeated,
        as Reshape (a unit axis after every spatial axis), Expand, Reshape. Otherwise Resize of the spatial axes to the output ``sizes`` (exact, where a float
        scale could round). ONNX's shape inference gives a Resize output an unknown batch axis (its declared
        value_info keeps ``N``); the Expand form keeps it."""
        x = ctx.inputs[0]
        size = [int(d) for d in x.shape[2:]]
        if all(length == 1 for length in size):  # one value per channel, in every mode: Expand (keeps the batch)
            return ctx.op("Expand", [x.name, ctx.const("shape", [1, 1, *a.size], integer=True)], ctx.out_shape())
        if not a.linear and all(o % length == 0 for o, length in zip(a.size, size, strict=True)):
            factors = [o // length for o, length in zip(a.size, size, strict=True)]
            spread = [d for length in size for d in (length, 1)]
            y = ctx.op("Reshape", [x.name, ctx.const("spread", [0, int(x.shape[1]), *spread], integer=True)],
                       (*x.shape[:2], *spread), suffix="Spread")
            repeated = [d for length, f in zip(size, factors, strict=True) for d in (length, f)]
            ones = [d for f in factors for d in (1, f)]
            y = ctx.op("Expand", [y.name, ctx.const("repeat", [1, 1, *ones], integer=True)], (*x.shape[:2], *repeated),
                       suffix="Expand")
            out = ctx.out_shape()
            return ctx.op("Reshape", [y.name, ctx.const("shape", [0, *out[1:]], integer=True)], out)
        axes = list(range(2, len(x.shape)))
        attrs: dict[str, Any] = {"mode": "linear" if a.linear else "nearest", "axes": axes,
                                 "coordinate_transformation_mode": COORDINATES[(a.linear, a.align_corners)]}
        if not a.linear:
            attrs["nearest_mode"] = "floor"
        sizes = ctx.const("sizes", list(a.size), integer=True)
        return ctx.op("Resize", [x.name, "", "", sizes], ctx.out_shape(), **attrs)

    def symbolic_axes(self, a: Any, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        return "its ONNX Resize writes the output sizes as numbers" if axes else axes

    def reference(self, a: UpsampleAttrs, inputs: tuple[Shape, ...]) -> str:
        how = f"scale_factor={a.scale}" if a.scale is not None else f"size={a.size}"
        if a.size_of is not None:
            return (f"lambda x, like: F.interpolate(x, size=like.shape[2:], mode={a.mode!r}, "
                    f"align_corners={a.align_corners if a.linear else None})")
        corners = a.align_corners if a.linear else None
        return f"lambda x: F.interpolate(x, {how}, mode={a.mode!r}, align_corners={corners})"


def _per_axis(scale: float | list[float], n: int, label: str) -> tuple[float, ...]:
    values = (scale,) * n if isinstance(scale, (int, float)) else tuple(scale)
    if len(values) != n:
        raise RuleError(f"{label}: `scale` has {len(values)} values but the input has {n} spatial "
                        f"{'axis' if n == 1 else 'axes'}", "scale")
    for v in values:
        if not v > 0:
            raise RuleError(f"{label}: `scale` must be positive, got {v}", "scale")
    return values


def _scaled(size: Shape, scale: tuple[float, ...], label: str) -> tuple[int, ...]:
    """L * scale per axis, computed as PyTorch does (in double precision), refused unless a whole number."""
    n = len(size)
    products = [length * factor for length, factor in zip(size, scale)]
    for i, product in enumerate(products):
        if not math.isfinite(product) or product >= 2 ** 63:
            raise RuleError(f"{label}: `scale` {scale[i]} makes the {axis_name(i, n)} axis too long to build", "scale")
    for i, product in enumerate(products):
        if product != int(product):
            floors = [max(int(p), 1) for p in products]
            target = floors[0] if len(set(floors)) == 1 else floors
            raise RuleError(f"{label}: `scale` {scale[i]} makes the {size[i]}-long {axis_name(i, n)} axis "
                            f"{product} long, not a whole number (PyTorch would floor it to {int(product)}); give "
                            f"the output size instead, e.g. `size: {target}`", "scale")
    return tuple(int(p) for p in products)  # positive: a positive scale's whole product is at least 1


def _step(length: int, out: int, align_corners: bool) -> int | Fraction:
    """Input positions between neighbouring outputs: L / out, or (L - 1) / (out - 1) with align_corners."""
    if align_corners:
        return Fraction(length - 1, out - 1) if out > 1 else length
    return Fraction(length, out)


OPS = (Upsample(),)
