"""Layout: ``flatten`` (to one feature axis), ``reshape`` (any shape of the same elements), ``permute``
(reorder the axes, batch axis included), ``pad`` (grow the spatial axes), and the channel rearrangements
``pixel_shuffle`` / ``pixel_unshuffle`` (channels to space and back), ``channel_shuffle`` and
``channel_split`` (ShuffleNet's shuffle and ``x.chunk(2, dim=1)``), and ``crop`` (the centre of the spatial
axes, the original U-Net's skip connections) and ``slice`` (explicit ranges of the channels and spatial axes)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

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
    TorchModule,
    Traits,
)
from cnnspec.ops.conv import pad_spatial
from cnnspec.ops.shape import axis_name, expand, fmt, prod, size_of, spatial_input
from cnnspec.settings import Field


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

    def symbolic_axes(self, a: FlattenSettings, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        if not axes:
            return axes
        return ("it makes every position a feature, so the layers after it depend on the input size; pool to "
                "a fixed size first (global pooling)")

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

    def symbolic_axes(self, a: PermuteAttrs, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        return frozenset(k - 1 for k, d in enumerate(a.dims) if k and d - 1 in axes)  # dims count the batch axis

    def reference(self, a: PermuteAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x.permute({list(a.dims)})"


RESHAPE = '''class Reshape(nn.Module):
    """The same elements in a new shape, the batch axis kept: ``x.reshape(len(x), *shape)``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
'''


class ReshapeSettings(OpSettings):
    summary: ClassVar[str] = ("The same elements in a new shape, batch axis kept: [512, 4, 4] from a linear's 8192 "
                              "features (nn.Unflatten); one size may be -1.")
    example: ClassVar[dict[str, Any]] = {"shape": [512, 4, 4]}
    shape: list[int] = Field(description="The new shape without the batch axis: [C], [C, L], [C, H, W] or "
                             "[C, D, H, W]; one size may be -1, worked out from the element count.",
                             examples=[[512, 4, 4], [-1, 7, 7]])


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]  # -1 worked out
    flat_input: bool  # an unflatten (nn.Unflatten) rather than a general reshape


class Reshape(Op):
    name = "reshape"
    family = "reshape"
    Settings = ReshapeSettings
    traits = Traits(stateless=True, dynamic_spatial=False)

    def infer(self, s: ReshapeSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """``shape``, its -1 worked out so the element count is the input's. A reshape of a tensor with spatial
        axes mixes its positions: as after flatten, each output is taken to see the whole input.

        >>> Reshape().infer(ReshapeSettings(shape=[512, 4, 4]), ((8192,),), "reshape").shape
        (512, 4, 4)
        >>> Reshape().infer(ReshapeSettings(shape=[-1, 7]), ((64, 7, 7),), "reshape").shape
        (448, 7)
        """
        shape, sizes = inputs[0], s.shape
        if not 1 <= len(sizes) <= 4:
            raise RuleError(f"{label}: `shape` needs 1 to 4 sizes ([C], [C, L], [C, H, W] or [C, D, H, W], without "
                            f"the batch axis), got {len(sizes)}", "shape")
        if any(v == 0 or v < -1 for v in sizes):
            raise RuleError(f"{label}: `shape` sizes must be at least 1 (or one -1), got {sizes}", "shape")
        unknown = sizes.count(-1)
        if unknown > 1:
            raise RuleError(f"{label}: `shape` may have one -1, got {unknown} in {sizes}", "shape")
        total, known = prod(shape), prod([v for v in sizes if v != -1])
        if unknown:
            if total % known:
                raise RuleError(f"{label}: `shape` {sizes} cannot hold the {total:,} elements of its {fmt(shape)} "
                                f"input: {total:,} is not a multiple of {known:,}", "shape")
            sizes = [total // known if v == -1 else v for v in sizes]
        elif known != total:
            raise RuleError(f"{label}: `shape` {fmt(sizes)} holds {known:,} elements but the input, {fmt(shape)}, "
                            f"holds {total:,}; a reshape keeps every element (one size may be -1)", "shape")
        out = tuple(sizes)
        return Inferred(ReshapeAttrs(out, len(shape) == 1), out, whole=len(shape) > 1 and out != shape)

    def caption(self, a: ReshapeAttrs) -> str:
        return f"{'unflatten' if a.flat_input else 'reshape'} -> {fmt(a.shape)}"

    def torch(self, a: ReshapeAttrs, ctx: TorchContext) -> TorchModule:
        """``nn.Unflatten(1, shape)`` from a flat vector (the DCGAN generator's projection), else a helper
        ``Reshape``."""
        shape = _shape_source(ctx)
        sym = ctx.shape([None] * len(a.shape))
        if all(attrs.flat_input for attrs in ctx.attrs):
            return TorchModule(f"nn.Unflatten(1, {shape})", sym)
        ctx.helper("Reshape", RESHAPE)
        return TorchModule(f"Reshape({shape})", sym)

    def onnx(self, a: ReshapeAttrs, ctx: OnnxContext) -> OnnxValue:
        """Reshape to ``[0, *shape]``: 0 keeps the (symbolic) batch axis."""
        return ctx.op("Reshape", [ctx.inputs[0].name, ctx.const("shape", [0, *a.shape], integer=True)],
                      ctx.out_shape())

    def symbolic_axes(self, a: Any, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        return "it reshapes to the sizes written in the spec" if axes else axes

    def reference(self, a: ReshapeAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x.reshape(-1, *{a.shape})"


def _shape_source(ctx: TorchContext) -> str:
    """``shape`` as the spec wrote it where that reproduces every instance (``(width * 4, 4, 4)``), else as
    numbers. The backend writes a value whose sizes are all equal as one number (PyTorch's convention for
    kernels), so such a shape is written back as a tuple of it."""
    shapes = [attrs.shape for attrs in ctx.attrs]
    uniform = [all(v == s[0] for v in s) for s in shapes]
    if any(uniform) and not all(uniform) or len({len(s) for s in shapes}) > 1:
        shape = ctx.same("shape", "the torch backend needs a block's reshape `shape` to be equal in every instance")
        return repr(tuple(shape))
    value = str(ctx.value("shape", "shape").src)
    if all(uniform):
        n = len(shapes[0])
        return f"({', '.join([value] * n)}{',' if n == 1 else ''})"
    return value


PAD_MODULES = {"constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
               "circular": "CircularPad"}
ONNX_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
# the sides of each spatial axis, outermost axis first; PyTorch lists them from the last axis
AXIS_SIDES = {1: (("left", "right"),), 2: (("top", "bottom"), ("left", "right")),
              3: (("front", "back"), ("top", "bottom"), ("left", "right"))}
SIDE_AXIS = {"front": "D", "back": "D", "top": "H", "bottom": "H", "left": "W", "right": "W"}


class PadSettings(OpSettings):
    summary: ClassVar[str] = ("Pads the spatial axes with a constant, or by reflecting, replicating or wrapping "
                              "the border (nn.ZeroPadNd, ConstantPadNd, ReflectionPadNd, ...); `left: 6` pads one "
                              "side (causal 1D convolutions).")
    example: ClassVar[dict[str, Any]] = {"left": 6}
    padding: int | list[int | list[int]] | None = Field(
        None, description="Every side (`3`); per axis, both sides (`[1, 2]`: H by 1, W by 2); or per axis "
        "[begin, end] (`[[0, 0], [2, 1]]`). Or name the sides instead.", examples=[3, [[0, 0], [2, 1]]])
    left: int | None = Field(None, description="Before the last axis (L in 1D, W in 2D and 3D).", examples=[6])
    right: int | None = Field(None, description="After the last axis.", examples=[1])
    top: int | None = Field(None, description="Before H (2D and 3D).", examples=[1])
    bottom: int | None = Field(None, description="After H (2D and 3D).", examples=[1])
    front: int | None = Field(None, description="Before D (3D).", examples=[1])
    back: int | None = Field(None, description="After D (3D).", examples=[1])
    mode: Literal["constant", "reflect", "replicate", "circular"] = Field(
        "constant", description="`constant`: `value`; `reflect`: mirror without repeating the edge; `replicate`: "
        "repeat the edge; `circular`: wrap around.")
    value: float | None = Field(None, description="What `mode: constant` pads with (default 0).", examples=[-1.0])


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[int, ...]  # begin per spatial axis, then end per spatial axis (as conv's pads)
    mode: str
    value: float
    by_sides: bool  # the spec named the sides (else `padding`)
    front: int = 0
    back: int = 0
    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


class Pad(Op):
    name = "pad"
    family = "reshape"
    Settings = PadSettings
    traits = Traits(stateless=True, fresh_output=True)

    def infer(self, s: PadSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Each spatial axis grows by its two sides; refuses, as PyTorch does, reflect padding not smaller than
        the input and circular padding larger than it. Padding leaves the receptive field unchanged.

        >>> Pad().infer(PadSettings(left=6), ((2, 100),), "pad").shape  # causal padding for a kernel of 7
        (2, 106)
        >>> Pad().infer(PadSettings(padding=3, mode="reflect"), ((3, 256, 256),), "pad").shape
        (3, 262, 262)
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        size = shape[1:]
        sides = {k: v for k in SIDE_AXIS if (v := getattr(s, k)) is not None}
        if s.padding is not None and sides:
            raise RuleError(f"{label}: give either `padding` or the sides (`{next(iter(sides))}`, ...), not both",
                            next(iter(sides)))
        if s.padding is None and not sides:
            raise RuleError(f"{label} needs `padding` (every side, or per axis) or the sides to pad, such as "
                            "`left: 6`")
        begin, end = _pad_sides(s.padding, sides, shape, label)
        if s.value is not None and s.mode != "constant":
            raise RuleError(f"{label}: `value` is what `mode: constant` pads with; {s.mode} padding takes none "
                            "(PyTorch refuses it)", "value")
        _check_pad_mode(s.mode, begin, end, size, bool(sides), label)
        named = {side: amount for pair, b, e in zip(AXIS_SIDES[n], begin, end) for side, amount in zip(pair, (b, e))}
        attrs = PadAttrs(begin + end, s.mode, 0.0 if s.value is None else float(s.value), bool(sides), **named)
        return Inferred(attrs, (shape[0], *(d + b + e for d, b, e in zip(size, begin, end))))

    def caption(self, a: PadAttrs) -> str:
        head = "pad" if a.mode == "constant" else f"{a.mode} pad"
        if all(p == a.pads[0] for p in a.pads):
            text = f"{head} {a.pads[0]}"
        else:
            n = len(a.pads) // 2
            text = head + " " + ", ".join(f"{side} {getattr(a, side)}" for pair in AXIS_SIDES[n] for side in pair
                                          if getattr(a, side))
        return text + (f" (value {a.value:g})" if a.value else "")

    def torch(self, a: PadAttrs, ctx: TorchContext) -> TorchModule:
        """``nn.ZeroPadNd`` (``ConstantPadNd`` for another value, ``ReflectionPadNd``, ...) with PyTorch's
        padding tuple (left, right, top, bottom, front, back), or one number for every side."""
        mode = ctx.same("mode", "the torch backend needs a block's pad `mode` to be equal in every instance")
        torch_order = [side for pair in reversed(AXIS_SIDES[ctx.rank]) for side in pair]
        values = [ctx.value(side, side if a.by_sides else "padding") for side in torch_order]
        sources = [str(v.src) for v in values]
        padding = sources[0] if len(set(sources)) == 1 else f"({', '.join(sources)})"
        shape = ctx.shape([ctx.input[0], *[None] * ctx.rank])
        if mode != "constant":
            return TorchModule(f"nn.{PAD_MODULES[mode]}{ctx.rank}d({padding})", shape)
        if all(attrs.value == 0 for attrs in ctx.attrs):
            return TorchModule(f"nn.ZeroPad{ctx.rank}d({padding})", shape)
        value = ctx.value("value", "value")
        return TorchModule(f"nn.ConstantPad{ctx.rank}d({padding}, {value.src})", shape)

    def onnx(self, a: PadAttrs, ctx: OnnxContext) -> OnnxValue:
        if a.mode == "circular" and ctx.opset < 19:
            raise ctx.fail("circular padding needs ONNX opset 19 or later (Pad mode wrap); build with --opset 19 "
                           "or higher")
        value = a.value if a.mode == "constant" and a.value else None
        return pad_spatial(ctx, ctx.inputs[0], list(a.pads), ONNX_PAD_MODES[a.mode], value, suffix=None)

    def reference(self, a: PadAttrs, inputs: tuple[Shape, ...]) -> str:
        n = len(a.pads) // 2
        pad = tuple(a.pads[i + j * n] for i in reversed(range(n)) for j in (0, 1))
        value = f", value={a.value}" if a.mode == "constant" else ""
        return f"lambda x: F.pad(x, {pad}, mode={a.mode!r}{value})"


def _pad_sides(padding: Any, sides: dict[str, int], shape: Shape, label: str
               ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(begin per axis, end per axis) from `padding` or the named sides."""
    n = len(shape) - 1
    if sides:
        pairs = AXIS_SIDES[n]
        allowed = [side for pair in pairs for side in pair]
        for side, amount in sides.items():
            if side not in allowed:
                raise RuleError(f"{label}: `{side}` pads the {SIDE_AXIS[side]} axis, which the {n}D input "
                                f"{fmt(shape)} lacks; its sides are {', '.join(f'`{x}`' for x in allowed)}", side)
            if amount < 0:
                raise RuleError(f"{label}: `{side}` must be at least 0, got {amount} (padding cannot crop)", side)
        return (tuple(sides.get(b, 0) for b, _ in pairs), tuple(sides.get(e, 0) for _, e in pairs))
    if isinstance(padding, int):
        both = expand(padding, n, "padding", label, 0)
        return both, both
    items = list(padding)
    if len(items) != n:
        raise RuleError(f"{label}: `padding` has {len(items)} values but the input has {n} spatial "
                        f"{'axis' if n == 1 else 'axes'}", "padding")
    begin, end = [], []
    for item in items:
        pair = (item, item) if isinstance(item, int) else tuple(item)
        if len(pair) != 2:
            raise RuleError(f"{label}: `padding` per axis is a number or a [begin, end] pair, got {item}", "padding")
        if min(pair) < 0:
            raise RuleError(f"{label}: `padding` must be at least 0, got {min(pair)} (padding cannot crop)",
                            "padding")
        begin.append(pair[0])
        end.append(pair[1])
    return tuple(begin), tuple(end)


def _check_pad_mode(mode: str, begin: Shape, end: Shape, size: Shape, by_sides: bool, label: str) -> None:
    """PyTorch's limits: reflect padding smaller than the input along its axis, circular at most its size."""
    if mode not in ("reflect", "circular"):
        return
    n = len(size)
    for i in range(n):
        for side, pad in zip(AXIS_SIDES[n][i], (begin[i], end[i])):
            too_big = pad >= size[i] if mode == "reflect" else pad > size[i]
            if too_big:
                need = "smaller than" if mode == "reflect" else "at most"
                where = f" on the {side}" if by_sides else ""
                raise RuleError(f"{label}: {mode} padding {pad}{where} must be {need} the input's size along "
                                f"{axis_name(i, n)}, which is {size[i]} ({fmt(size)} input)",
                                side if by_sides else "padding")


class PixelShuffleSettings(OpSettings):
    summary: ClassVar[str] = ("Rearranges (C r^2, H, W) into (C, H r, W r), nn.PixelShuffle: the sub-pixel "
                              "convolution's upsampling (ESPCN).")
    example: ClassVar[dict[str, Any]] = {"factor": 2}
    factor: int = Field(description="The upscaling factor r.", examples=[2, 3])


class PixelUnshuffleSettings(OpSettings):
    summary: ClassVar[str] = "Rearranges (C, H r, W r) into (C r^2, H, W), nn.PixelUnshuffle: pixel_shuffle undone."
    example: ClassVar[dict[str, Any]] = {"factor": 2}
    factor: int = Field(description="The downscaling factor r.", examples=[2])


@dataclass(frozen=True)
class FactorAttrs:
    factor: int


def _planar(shape: Shape, factor: int, label: str, what: str) -> int:
    """The factor of a pixel (un)shuffle, which takes [C, H, W] only (PyTorch's rearranges the last two axes
    of any tensor)."""
    if len(shape) != 3:
        kind = "the flat vector" if len(shape) == 1 else f"a {len(shape) - 1}D input"
        raise RuleError(f"{label} works on 2D inputs [C, H, W] ({what} the last two axes), but gets {kind} "
                        f"{fmt(shape)}")
    if factor < 1:
        raise RuleError(f"{label}: `factor` must be at least 1, got {factor}", "factor")
    return factor


class _PixelRearrange(Op):
    """What pixel_shuffle and pixel_unshuffle share: one `factor`, one module, no parameters."""

    family = "reshape"
    module: ClassVar[str]

    def caption(self, a: FactorAttrs) -> str:
        return f"{self.name.replace('_', ' ')} x{a.factor}"

    def torch(self, a: FactorAttrs, ctx: TorchContext) -> TorchModule:
        return TorchModule(ctx.call(self.module, [ctx.value("factor", "factor")], []),
                           ctx.shape([None, None, None]))

    def reference(self, a: FactorAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: F.{self.name}(x, {a.factor})"


class PixelShuffle(_PixelRearrange):
    name = "pixel_shuffle"
    Settings = PixelShuffleSettings
    traits = Traits(stateless=True)
    module = "nn.PixelShuffle"

    def infer(self, s: PixelShuffleSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """(C r^2, H, W) -> (C, H r, W r); output (h, w) is input position (h // r, w // r), so outputs are 1/r
        input positions apart and each reads one.

        >>> PixelShuffle().infer(PixelShuffleSettings(factor=3), ((27, 8, 8),), "ps").shape
        (3, 24, 24)
        """
        shape = inputs[0]
        r = _planar(shape, s.factor, label, "it moves channels into")
        c, h, w = shape
        if c % (r * r):
            raise RuleError(f"{label}: its {c} input channels must be a multiple of factor^2 = {r * r} (each output "
                            f"channel is made of {r}x{r} input channels)", "factor")
        return Inferred(FactorAttrs(r), (c // (r * r), h * r, w * r), window=((1, Fraction(1, r)),) * 2)

    def onnx(self, a: FactorAttrs, ctx: OnnxContext) -> OnnxValue:
        """DepthToSpace in CRD order (channel, then row, then column: PyTorch's)."""
        return ctx.op("DepthToSpace", [ctx.inputs[0].name], ctx.out_shape(), blocksize=a.factor, mode="CRD")


class PixelUnshuffle(_PixelRearrange):
    name = "pixel_unshuffle"
    Settings = PixelUnshuffleSettings
    traits = Traits(stateless=True, dynamic_spatial=False)
    module = "nn.PixelUnshuffle"

    def infer(self, s: PixelUnshuffleSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """(C, H r, W r) -> (C r^2, H, W); each output reads an r x r block, r apart.

        >>> PixelUnshuffle().infer(PixelUnshuffleSettings(factor=2), ((3, 8, 6),), "pu").shape
        (12, 4, 3)
        """
        shape = inputs[0]
        r = _planar(shape, s.factor, label, "it moves into the channels")
        c, h, w = shape
        for axis, length in (("H", h), ("W", w)):
            if length % r:
                raise RuleError(f"{label}: the input's {axis} ({length}, of {fmt(shape)}) must be a multiple of the "
                                f"factor {r}", "factor")
        return Inferred(FactorAttrs(r), (c * r * r, h // r, w // r), window=((r, r),) * 2)

    def onnx(self, a: FactorAttrs, ctx: OnnxContext) -> OnnxValue:
        """Reshape (N, C, H/r, r, W/r, r), Transpose to (N, C, r, r, H/r, W/r), Reshape: ONNX's SpaceToDepth
        orders the output channels block offset first, PyTorch channel first."""
        x = ctx.inputs[0]
        r = a.factor
        n, c, h, w = x.shape
        blocks = (n, c, h // r, r, w // r, r)
        y = ctx.op("Reshape", [x.name, ctx.const("blocks", [0, c, h // r, r, w // r, r], integer=True)], blocks,
                   suffix="Blocks")
        y = ctx.op("Transpose", [y.name], (n, c, r, r, h // r, w // r), suffix="Transpose", perm=[0, 1, 3, 5, 2, 4])
        out = ctx.out_shape()
        return ctx.op("Reshape", [y.name, ctx.const("shape", [0, *out[1:]], integer=True)], out)


class ChannelShuffleSettings(OpSettings):
    summary: ClassVar[str] = ("Interleaves the channels of `groups` groups, nn.ChannelShuffle (ShuffleNet: lets "
                              "the next grouped conv mix information across groups).")
    example: ClassVar[dict[str, Any]] = {"groups": 3}
    groups: int = Field(description="Number of channel groups; must divide the channels.", examples=[3])


@dataclass(frozen=True)
class ChannelShuffleAttrs:
    groups: int
    channels: int


class ChannelShuffle(Op):
    name = "channel_shuffle"
    family = "reshape"
    Settings = ChannelShuffleSettings
    traits = Traits(stateless=True, dynamic_spatial=False)

    def infer(self, s: ChannelShuffleSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Same shape; channel g * (C / groups) + i moves to i * groups + g.

        >>> ChannelShuffle().infer(ChannelShuffleSettings(groups=3), ((12, 7, 7),), "cs").shape
        (12, 7, 7)
        """
        shape = inputs[0]
        spatial_input(shape, label)
        c, g = shape[0], s.groups
        if g < 1 or c % g:
            raise RuleError(f"{label}: groups={g} must divide the {c} channels", "groups")
        return Inferred(ChannelShuffleAttrs(g, c), shape)

    def caption(self, a: ChannelShuffleAttrs) -> str:
        return f"channel shuffle, {a.groups} groups"

    def torch(self, a: ChannelShuffleAttrs, ctx: TorchContext) -> TorchModule:
        return TorchModule(ctx.call("nn.ChannelShuffle", [ctx.value("groups", "groups")], []), list(ctx.input))

    def onnx(self, a: ChannelShuffleAttrs, ctx: OnnxContext) -> OnnxValue:
        """Reshape (N, g, C/g, positions), Transpose the two channel axes, Reshape back."""
        x = ctx.inputs[0]
        g, per = a.groups, a.channels // a.groups
        n = x.shape[0]
        rest = prod([int(d) for d in x.shape[2:]])
        y = ctx.op("Reshape", [x.name, ctx.const("groups", [0, g, per, -1], integer=True)], (n, g, per, rest),
                   suffix="Groups")
        y = ctx.op("Transpose", [y.name], (n, per, g, rest), suffix="Transpose", perm=[0, 2, 1, 3])
        return ctx.op("Reshape", [y.name, ctx.const("shape", [0, *x.shape[1:]], integer=True)], x.shape)

    def reference(self, a: ChannelShuffleAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x.unflatten(1, ({a.groups}, {a.channels // a.groups})).transpose(1, 2).flatten(1, 2)"


class ChannelSplitSettings(OpSettings):
    summary: ClassVar[str] = ("One of `parts` channel chunks, as x.chunk(parts, dim=1)[part] (ShuffleNet V2 splits "
                              "the channels in two halves: one passes through, the other is transformed).")
    example: ClassVar[dict[str, Any]] = {"parts": 2, "part": 1}
    parts: int = Field(description="How many chunks to cut the channels into (torch.chunk: each has "
                       "ceil(C / parts) channels, the last one what is left).", examples=[2])
    part: int = Field(description="Which chunk to keep, from 0.", examples=[0, 1])


@dataclass(frozen=True)
class ChannelSplitAttrs:
    parts: int
    part: int
    start: int  # the chunk's first channel
    stop: int  # one past its last


class ChannelSplit(Op):
    name = "channel_split"
    family = "reshape"
    Settings = ChannelSplitSettings
    traits = Traits(stateless=True, torch_module=False)

    def infer(self, s: ChannelSplitSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """torch.chunk's sizes: chunks of ``ceil(C / parts)`` channels, the last one the rest, so there may be
        fewer than ``parts`` of them (3 channels in 2 parts: 2 and 1; 6 in 4 parts: 2, 2 and 2).

        >>> ChannelSplit().infer(ChannelSplitSettings(parts=2, part=1), ((116, 28, 28),), "split").shape
        (58, 28, 28)
        >>> ChannelSplit().infer(ChannelSplitSettings(parts=2, part=1), ((5, 4),), "split").attrs
        ChannelSplitAttrs(parts=2, part=1, start=3, stop=5)
        """
        shape = inputs[0]
        c = shape[0]
        if s.parts < 1:
            raise RuleError(f"{label}: `parts` must be at least 1, got {s.parts}", "parts")
        if s.part < 0:
            raise RuleError(f"{label}: `part` counts the chunks from 0, got {s.part}", "part")
        size = -(-c // s.parts)
        chunks = -(-c // size)
        if s.part >= chunks:
            made = f"{chunks} chunk{'s' if chunks > 1 else ''} of {size}" if c % size == 0 else \
                f"{chunks} chunks ({chunks - 1} of {size}, the last of {c - (chunks - 1) * size})"
            raise RuleError(f"{label}: `part` {s.part} does not exist: x.chunk({s.parts}, dim=1) cuts the {c} "
                            f"channels into {made}; `part` is 0 to {chunks - 1}", "part")
        start = s.part * size
        stop = min(start + size, c)
        return Inferred(ChannelSplitAttrs(s.parts, s.part, start, stop), (stop - start, *shape[1:]))

    def caption(self, a: ChannelSplitAttrs) -> str:
        return f"channels {a.start}..{a.stop - 1} (part {a.part + 1} of {a.parts})"

    def torch(self, a: ChannelSplitAttrs, ctx: TorchContext) -> TorchExpression:
        """``x.chunk(parts, dim=1)[part]``, as torchvision writes ShuffleNet's split (a view, no module)."""
        parts, part = ctx.value("parts", "parts"), ctx.value("part", "part")
        channels = ctx.quotient(ctx.input[0], parts)  # kept only where it is each instance's size
        return TorchExpression(f"{{0}}.chunk({parts.src}, dim=1)[{part.src}]",
                               ctx.shape([channels, *ctx.input[1:]]))

    def onnx(self, a: ChannelSplitAttrs, ctx: OnnxContext) -> OnnxValue:
        """Slice channels ``start:stop`` on axis 1."""
        return _slice(ctx, [1], [a.start], [a.stop])

    def reference(self, a: ChannelSplitAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"lambda x: x[:, {a.start}:{a.stop}]"


CENTER_CROP = '''def center_crop(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The centre of ``x``'s spatial axes, ``size`` positions each, from ``(L - size) // 2`` (a U-Net's crop)."""
    for axis, keep in enumerate(size, 2):
        x = x.narrow(axis, (x.shape[axis] - keep) // 2, keep)
    return x
'''


class CropSettings(OpSettings):
    summary: ClassVar[str] = ("Keeps the centre of the spatial axes, `size` positions per axis or the size of a "
                              "named tensor (the original U-Net crops each encoder map to the decoder's size "
                              "before concatenating).")
    example: ClassVar[dict[str, Any]] = {"size": [56, 56]}
    size: int | list[int] | None = Field(None, description="The size kept: one for every spatial axis, or one per "
                                         "axis. The crop starts (L - size) // 2 positions in, as "
                                         "x[..., a:a + size].", examples=[56, [56, 56]])
    size_of: str | None = Field(
        None, description="The size kept, instead of `size`: the spatial size of a named tensor (an `as:` name, or "
        "`input`), as U-Net code crops the encoder map to the decoder map's size.", examples=["up"])


@dataclass(frozen=True)
class CropAttrs:
    starts: tuple[int, ...]  # per spatial axis
    size: tuple[int, ...]
    size_of: str | None = None  # the tensor (its name) whose spatial size the crop keeps: a second input


class Crop(Op):
    name = "crop"
    family = "reshape"
    Settings = CropSettings
    traits = Traits(stateless=True, torch_module=False, dynamic_spatial=False)
    tensor_settings = ("size_of",)  # `size_of: name` adds the named tensor as a second input (its shape only)

    def infer(self, s: CropSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """``size`` (or the spatial size of the tensor ``size_of`` names) per spatial axis, from
        ``(L - size) // 2``; a crop larger than its input is refused. Each output is one input position: the
        receptive field's size and step are unchanged (where it lies moves, and cnnspec does not track that).

        >>> Crop().infer(CropSettings(size=56), ((128, 64, 64),), "crop").attrs  # U-Net: 64x64 to 56x56
        CropAttrs(starts=(4, 4), size=(56, 56), size_of=None)
        >>> Crop().infer(CropSettings(size_of="up"), ((8, 42, 42), (8, 38, 38)), "crop").shape
        (8, 38, 38)
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        if (s.size is None) == (s.size_of is None):
            if s.size is None:
                raise RuleError(f"{label} needs `size` (the size kept per axis) or `size_of` (a tensor whose spatial "
                                "size it keeps)")
            raise RuleError(f"{label}: give `size` or `size_of`, not both (`size_of` takes its size from the "
                            "named tensor)", "size_of")
        if s.size_of is not None:
            size = size_of(inputs[1], n, s.size_of, label)
        else:
            size = expand(s.size, n, "size", label, 1)  # type: ignore[arg-type]  # not None: checked above
        for i, (keep, have) in enumerate(zip(size, shape[1:])):
            if keep > have:
                grow = "a crop keeps part of its input, it cannot grow it"
                if s.size_of is not None:
                    raise RuleError(f"{label}: `size_of: {s.size_of}` is {fmt(inputs[1])}, whose {axis_name(i, n)} "
                                    f"({keep}) is larger than the input's {have} ({fmt(shape)} input); {grow}: crop "
                                    "the larger tensor to the size of the smaller one", "size_of")
                raise RuleError(f"{label}: crop size {keep} along {axis_name(i, n)} is larger than the input's {have} "
                                f"({fmt(shape)} input); {grow} (that is `pad`)", "size")
        starts = tuple((have - keep) // 2 for keep, have in zip(size, shape[1:]))
        return Inferred(CropAttrs(starts, size, s.size_of), (shape[0], *size))

    def caption(self, a: CropAttrs) -> str:
        return f"centre crop {fmt(a.size)}" + (f" (size of {a.size_of})" if a.size_of is not None else "")

    def torch(self, a: CropAttrs, ctx: TorchContext) -> TorchExpression:
        """``x[:, :, a:a + h, b:b + w]``, as U-Net code writes its crops (the same in every instance); where a
        block's instances crop to the sizes of their own tensors (``size_of``), a helper ``center_crop(x,
        like.shape[2:])`` that works the start out from the sizes it is given."""
        if len({(x.starts, x.size) for x in ctx.attrs}) > 1 and all(x.size_of is not None for x in ctx.attrs):
            ctx.helper("center_crop", CENTER_CROP)
            return TorchExpression("center_crop({0}, {1}.shape[2:])",
                                   ctx.shape([ctx.input[0], *ctx.inputs[1][1:]]))
        starts = ctx.same("starts", "the torch backend needs a block's crop to start at the same place in every "
                          "instance")
        size = ctx.same("size", "the torch backend needs a block's crop `size` to be equal in every instance")
        index = ", ".join(f"{b}:{b + k}" for b, k in zip(starts, size))
        return TorchExpression(f"{{0}}[:, :, {index}]", ctx.shape([ctx.input[0], *[None] * len(size)]))

    def onnx(self, a: CropAttrs, ctx: OnnxContext) -> OnnxValue:
        """Slice ``start:start + size`` on each spatial axis."""
        return _slice(ctx, list(range(2, 2 + len(a.size))), list(a.starts), [b + k for b, k in zip(a.starts, a.size)])

    def reference(self, a: CropAttrs, inputs: tuple[Shape, ...]) -> str:
        narrows = "".join(f".narrow({axis}, {b}, {k})" for axis, (b, k) in enumerate(zip(a.starts, a.size), 2))
        return f"lambda x, *like: x{narrows}"


INT64_MAX = 2**63 - 1  # ONNX Slice's "to the end"
Bound = int | None  # a Python slice bound: negative counts from the end, None is the axis's own end
Range = list[Bound] | None  # [start, end] of one axis; None keeps it whole


class SliceSettings(OpSettings):
    summary: ClassVar[str] = ("Keeps explicit ranges of the channels and spatial axes, with Python's slicing: "
                              "x[:, c0:c1, a:b, c:d] (negative indices count from the end).")
    example: ClassVar[dict[str, Any]] = {"ranges": [[2, -2], [2, -2]]}
    ranges: list[Range] | None = Field(
        None, description="One [start, end] per spatial axis, as Python's x[..., start:end]: a negative index "
        "counts from the end, null is the axis's own end (`[-4, null]`: the last 4); null instead of a pair keeps "
        "the axis whole.", examples=[[[2, -2], [2, -2]], [None, [0, 16]]])
    channels: Range = Field(None, description="[start, end] of the channels kept, as x[:, start:end] (splitting "
                            "a conv's output into parts).", examples=[[0, 16], [16, None]])


@dataclass(frozen=True)
class SliceAttrs:
    axes: tuple[int, ...]  # the axes sliced, counting the batch axis (1: channels, 2...: spatial)
    bounds: tuple[tuple[Bound, Bound], ...]  # per sliced axis, as written (Python's start and end)
    starts: tuple[int, ...]  # per sliced axis, the first position kept
    ends: tuple[int, ...]  # one past the last


class Slice(Op):
    """A separate op rather than `crop` with a `start`: `crop` keeps the centre at a size (its start follows
    from the sizes), `slice` keeps ranges written with Python's indices, negative ones from the end, and may
    slice the channels too; one op for each way of thinking keeps each one's settings and messages simple."""

    name = "slice"
    family = "reshape"
    Settings = SliceSettings
    traits = Traits(stateless=True, torch_module=False)  # its ONNX Slice takes the bounds as written: any size

    def infer(self, s: SliceSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Python's slice of each axis written: a negative bound counts from the end (L + bound), bounds are
        clipped to 0..L (PyTorch's ``x[:, :, a:b]``, ``slice.indices(L)``); an empty range is refused. Each
        output is one input position: the receptive field's size and step are unchanged.

        >>> Slice().infer(SliceSettings(ranges=[[2, -2], [None, 5]]), ((8, 12, 12),), "slice").shape
        (8, 8, 5)
        >>> Slice().infer(SliceSettings(channels=[16, None]), ((48, 7),), "slice").attrs
        SliceAttrs(axes=(1,), bounds=((16, None),), starts=(16,), ends=(48,))
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        if s.ranges is None and s.channels is None:
            raise RuleError(f"{label} needs `ranges` (a [start, end] per spatial axis) or `channels` (the [start, "
                            "end] of the channels kept)")
        ranges: list[Range] = [s.channels, *(s.ranges if s.ranges is not None else [None] * n)]
        if len(ranges) != n + 1:
            count = len(ranges) - 1
            raise RuleError(f"{label}: `ranges` has {count} {'range' if count == 1 else 'ranges'} but the input has "
                            f"{n} spatial {'axis' if n == 1 else 'axes'} (null keeps an axis whole)", "ranges")
        axes, bounds, starts, ends = [], [], [], []
        for axis, pair in enumerate(ranges):
            if pair is None:
                continue
            what = "the channel range" if axis == 0 else f"the range along {axis_name(axis - 1, n)}"
            setting = "channels" if axis == 0 else "ranges"
            if len(pair) != 2:
                raise RuleError(f"{label}: {what} is a [start, end] pair, got {pair} (a slice takes no step)",
                                setting)
            start, end, _ = slice(*pair).indices(shape[axis])
            if end <= start:
                raise RuleError(_empty(label, what, pair, shape, axis, start, end), setting)
            axes.append(axis + 1)
            bounds.append((pair[0], pair[1]))
            starts.append(start)
            ends.append(end)
        if not axes:
            raise RuleError(f"{label} slices nothing: every range is null (an axis kept whole); give a [start, end] "
                            "for at least one axis, or leave the layer out", "ranges")
        out = list(shape)
        for axis, start, end in zip(axes, starts, ends):
            out[axis - 1] = end - start
        return Inferred(SliceAttrs(tuple(axes), tuple(bounds), tuple(starts), tuple(ends)), tuple(out))

    def caption(self, a: SliceAttrs) -> str:
        return f"slice [{_index(a)}]"

    def torch(self, a: SliceAttrs, ctx: TorchContext) -> TorchExpression:
        """``x[:, c0:c1, a:b, c:d]`` with the bounds as written (negative ones kept), trailing whole axes left
        out: the same in every instance."""
        ctx.same("axes", "the torch backend needs a block's slice to slice the same axes in every instance")
        ctx.same("bounds", "the torch backend needs a block's slice ranges to be equal in every instance")
        shape = ctx.shape([None if axis + 1 in a.axes else size for axis, size in enumerate(ctx.input)])
        return TorchExpression(f"{{0}}[{_index(a)}]", shape)

    def onnx(self, a: SliceAttrs, ctx: OnnxContext) -> OnnxValue:
        """Slice with the bounds as written: ONNX's Slice counts negative ones from the end and clips as Python
        does, so the graph holds for any input size (``--dynamic-spatial``); an omitted start is 0, an omitted
        end the largest int64."""
        starts = [0 if b is None else b for b, _ in a.bounds]
        ends = [INT64_MAX if e is None else e for _, e in a.bounds]
        return _slice(ctx, list(a.axes), starts, ends)

    def reference(self, a: SliceAttrs, inputs: tuple[Shape, ...]) -> str:
        narrows = "".join(f".narrow({axis}, {b}, {e - b})" for axis, b, e in zip(a.axes, a.starts, a.ends))
        return f"lambda x: x{narrows}"


def _empty(label: str, what: str, pair: list[Bound], shape: Shape, axis: int, start: int, end: int) -> str:
    """Why a range keeps nothing: it starts past the end, or its end (negative ones counted from the end)
    does not come after its start."""
    size, unit = shape[axis], "channels" if axis == 0 else "positions"
    head = (f"{label}: {what}, [{_bound(pair[0])}, {_bound(pair[1])}], keeps nothing of the {size} {unit} "
            f"({fmt(shape)} input): it works out to {start}:{end}, ")
    if start >= size:
        return head + f"which starts past the last one (they are 0 to {size - 1})"
    counted = [f"{v} is {v + size}" for v in pair if v is not None and -size <= v < 0]
    return head + ("whose end does not come after its start" +
                   (f" (negative indices count from the end: {', '.join(counted)})" if counted else ""))


def _bound(value: Bound) -> str:
    return "null" if value is None else str(value)


def _index(a: SliceAttrs) -> str:
    """The Python index of a slice, ``:, 2:-2, :5`` (the batch axis first, trailing whole axes left out)."""
    by_axis = dict(zip(a.axes, a.bounds))
    parts = [":"] * (max(a.axes) + 1)
    for axis, (start, end) in by_axis.items():
        parts[axis] = f"{'' if start is None else start}:{'' if end is None else end}"
    return ", ".join(parts)


def _slice(ctx: OnnxContext, axes: list[int], starts: list[int], ends: list[int]) -> OnnxValue:
    """ONNX Slice of the first input, ``starts[i]:ends[i]`` on ``axes[i]`` (axes count the batch axis)."""
    return ctx.op("Slice", [ctx.inputs[0].name, ctx.const("starts", starts, integer=True),
                            ctx.const("ends", ends, integer=True), ctx.const("axes", axes, integer=True)],
                  ctx.out_shape())


OPS = (Flatten(), Reshape(), Permute(), Pad(), PixelShuffle(), PixelUnshuffle(), ChannelShuffle(), ChannelSplit(),
       Crop(), Slice())
