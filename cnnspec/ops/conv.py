"""Convolutions: ``conv`` (1D/2D/3D by the input's rank; grouped, depthwise, dilated; fixed kernels) and
``conv_transpose`` (its transpose: the learned upsampling of DCGAN generators and U-Net decoders)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from cnnspec.ir import Init, Shape, TensorSpec
from cnnspec.ops.base import (
    Inferred,
    IntOrList,
    OnnxContext,
    OnnxValue,
    Op,
    OpSettings,
    RuleError,
    TorchContext,
    TorchModule,
    Traits,
)
from cnnspec.ops.shape import (
    axis_name,
    conv_length,
    conv_transpose_length,
    expand,
    fmt,
    prod,
    spatial_input,
    transposed_window,
    uniform_text,
)
from cnnspec.settings import Field


class ConvSettings(OpSettings):
    summary: ClassVar[str] = "Convolution (1D/2D/3D by the input's rank), PyTorch's nn.ConvNd."
    example: ClassVar[dict[str, Any]] = {"out": 64, "kernel": 3, "padding": 1, "bias": False, "name": "conv1"}
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


@dataclass(frozen=True)
class ConvAttrs:
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str  # per axis as written, or "same"
    pads: tuple[int, ...]  # begin..., end...
    dilation: tuple[int, ...]
    groups: int
    bias: bool
    padding_mode: str
    trainable: bool
    weights: Any  # the full [out, in/groups, *k] fixed kernel, or None


@functools.lru_cache(maxsize=1024)
def uniform(fan_in: int) -> Init:
    """PyTorch's default init of conv and linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return Init("uniform", bound=1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)


EXPLICIT_ZEROS = Init("constant", value=0.0, explicit=True)  # a fixed kernel's bias: PyTorch starts uniform
MAX_FIXED_WEIGHTS = 10_000_000  # a repeated fixed kernel is expanded to [out, in/groups, *k] nested lists
PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}  # ONNX Pad modes


class Conv(Op):
    name = "conv"
    family = "conv"
    Settings = ConvSettings
    traits = Traits(fresh_output=True)

    def infer(self, s: ConvSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output length per axis: ``conv_length`` (floor((L + pads - d(k-1) - 1) / s) + 1); weight
        ``(out, in/groups, *k)``; MACs ``out * prod(out spatial) * in/groups * prod(k)``.

        >>> r = Conv().infer(ConvSettings(out=64, kernel=7, stride=2, padding=3, bias=False), ((3, 224, 224),), "conv")
        >>> r.shape, r.params[0].shape, r.macs
        ((64, 112, 112), (64, 3, 7, 7), 118013952)
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        cin, size = shape[0], shape[1:]
        weights = None
        if s.weights is not None:
            weights, out, kernel = _fixed_weights(s, cin, n, label)
            if s.kernel is not None and expand(s.kernel, n, "kernel", label, 1) != kernel:
                raise RuleError(f"{label}: `kernel` disagrees with the {fmt(kernel)} `weights`", "kernel")
        else:
            if s.kernel is None:
                raise RuleError(f"{label}: conv needs `kernel` (or fixed `weights`)", "kernel")
            if s.out is None:
                raise RuleError(f"{label}: conv needs `out`, the number of output channels", "out")
            kernel, out = expand(s.kernel, n, "kernel", label, 1), s.out
        if out < 1:
            raise RuleError(f"{label}: `out` must be at least 1, got {out}", "out")
        stride = expand(s.stride, n, "stride", label, 1)
        dilation = expand(s.dilation, n, "dilation", label, 1)
        groups = s.groups
        if groups < 1:
            raise RuleError(f"{label}: `groups` must be at least 1, got {groups}", "groups")
        if cin % groups or out % groups:
            raise RuleError(f"{label}: groups={groups} must divide both the input channels ({cin}) and `out` "
                            f"({out})", "groups")
        padding, pads = _padding(s.padding, n, kernel, stride, dilation, label)
        _check_padding_mode(s.padding_mode, pads, size, label)
        out_size = tuple(conv_length(size[i], kernel[i], stride[i], pads[i] + pads[n + i], dilation[i])
                         for i in range(n))
        if min(out_size) < 1:
            _too_small(kernel, dilation, size, pads, label)
        bias = s.bias if s.bias is not None else weights is None
        fan_in = cin // groups * prod(kernel)
        w_init = Init("fixed", values=weights, explicit=True) if weights is not None else uniform(fan_in)
        params = [TensorSpec("weight", (out, cin // groups, *kernel), w_init, s.trainable)]
        if bias:
            params.append(TensorSpec("bias", (out,), EXPLICIT_ZEROS if weights is not None else uniform(fan_in),
                                     s.trainable))
        attrs = ConvAttrs(cin, out, kernel, stride, padding, pads, dilation, groups, bias, s.padding_mode,
                          s.trainable, weights)
        window = tuple((dilation[i] * (kernel[i] - 1) + 1, stride[i]) for i in range(n))
        return Inferred(attrs, (out, *out_size), tuple(params), macs=out * prod(out_size) * fan_in, window=window)

    def caption(self, a: ConvAttrs) -> str:
        parts = [f"conv {'x'.join(map(str, a.kernel))}", str(a.out_channels)]
        if any(s != 1 for s in a.stride):
            parts.append(f"stride {uniform_text(a.stride)}")
        if any(d != 1 for d in a.dilation):
            parts.append(f"dilation {uniform_text(a.dilation)}")
        if a.groups > 1:
            depthwise = a.groups == a.in_channels == a.out_channels
            parts.append("depthwise" if depthwise else f"groups {a.groups}")
        if a.weights is not None and not a.trainable:
            parts.append("fixed")
        return ", ".join(parts)

    def torch(self, a: ConvAttrs, ctx: TorchContext) -> TorchModule:
        in_ch = ctx.derived("in_channels", ctx.input[0])
        out = ctx.value("out_channels", "out", hint="out")
        stride = ctx.value("stride", "stride", default=1, hint="stride")
        ctx.stride(stride)
        keywords = [
            ("kernel_size", ctx.value("kernel", "kernel")),
            ("stride", stride),
            ("padding", ctx.value("padding", "padding", default=0)),
            ("dilation", ctx.value("dilation", "dilation", default=1)),
            ("groups", ctx.value("groups", "groups", default=1)),
            ("bias", ctx.value("bias", "bias", default=True)),
            ("padding_mode", ctx.value("padding_mode", "padding_mode", default="zeros")),
        ]
        shape = ctx.shape([out.expr, *[None] * ctx.rank])
        return TorchModule(ctx.call(f"nn.Conv{ctx.rank}d", [in_ch, out], keywords), shape)

    def onnx(self, a: ConvAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        pads = list(a.pads)
        if a.padding_mode == "circular" and ctx.opset < 19:
            raise ctx.fail("circular padding needs ONNX opset 19 or later (Pad mode wrap); build with --opset 19 "
                           "or higher")
        if a.padding_mode != "zeros" and any(pads):
            x = pad_spatial(ctx, x, pads, PAD_MODES[a.padding_mode])
            pads = [0] * len(pads)
        inputs = [x.name, ctx.param("weight")]
        if a.bias:
            inputs.append(ctx.param("bias"))
        return ctx.op("Conv", inputs, ctx.out_shape(), kernel_shape=list(a.kernel), strides=list(a.stride),
                      dilations=list(a.dilation), pads=pads, group=a.groups)

    def reference(self, a: ConvAttrs, inputs: tuple[Shape, ...]) -> str:
        padding = a.padding if isinstance(a.padding, str) else tuple(a.padding)
        return (f"nn.Conv{len(a.kernel)}d({a.in_channels}, {a.out_channels}, {a.kernel}, stride={a.stride}, "
                f"padding={padding!r}, dilation={a.dilation}, groups={a.groups}, bias={a.bias}, "
                f"padding_mode={a.padding_mode!r})")


class ConvTransposeSettings(OpSettings):
    summary: ClassVar[str] = ("Transposed convolution (1D/2D/3D by the input's rank), PyTorch's nn.ConvTransposeNd: "
                              "a learned upsampling by `stride`.")
    example: ClassVar[dict[str, Any]] = {"out": 256, "kernel": 4, "stride": 2, "padding": 1, "bias": False}
    out: int = Field(description="Output channels.", examples=[256])
    kernel: IntOrList = Field(description="Kernel size: one int or one per spatial dim.", examples=[4])
    stride: IntOrList = Field(1, description="Upsampling factor: one int or one per spatial dim.", examples=[2])
    padding: IntOrList = Field(0, description="Removed from both ends of each output axis, as d(k-1) - padding "
                               "zeros padded around a convolution's input.", examples=[1])
    output_padding: IntOrList = Field(0, description="Added to one end of each output axis, to pick among the sizes a "
                                      "strided conv maps onto the same input size; smaller than the stride or the "
                                      "dilation.", examples=[1])
    dilation: IntOrList = Field(1, description="Spacing between kernel taps.")
    groups: int = Field(1, description="Channel groups; must divide the input channels and `out`.")
    bias: bool = Field(True, description="Add a learnable bias.")


@dataclass(frozen=True)
class ConvTransposeAttrs:
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    bias: bool


class ConvTranspose(Op):
    name = "conv_transpose"
    family = "conv"
    Settings = ConvTransposeSettings
    traits = Traits(fresh_output=True)

    def infer(self, s: ConvTransposeSettings, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output length per axis: ``conv_transpose_length`` ((L - 1)s - 2p + d(k - 1) + output_padding + 1);
        weight ``(in, out/groups, *k)``; MACs ``in * prod(in spatial) * out/groups * prod(k)``: every input
        element times every tap of its group's kernels (``FlopCounterMode`` / 2, which counts a transposed
        convolution by its input positions). Receptive field: each output reads ``transposed_window`` inputs
        per axis, and neighbouring outputs are 1/s input positions apart.

        >>> r = ConvTranspose().infer(ConvTransposeSettings(out=256, kernel=4, stride=2, padding=1, bias=False),
        ...                           ((512, 4, 4),), "conv_transpose")
        >>> r.shape, r.params[0].shape, r.macs, r.window
        ((256, 8, 8), (512, 256, 4, 4), 33554432, ((2, Fraction(1, 2)), (2, Fraction(1, 2))))
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        cin, size = shape[0], shape[1:]
        out = s.out
        if out < 1:
            raise RuleError(f"{label}: `out` must be at least 1, got {out}", "out")
        kernel = expand(s.kernel, n, "kernel", label, 1)
        stride = expand(s.stride, n, "stride", label, 1)
        padding = expand(s.padding, n, "padding", label, 0)
        output_padding = expand(s.output_padding, n, "output_padding", label, 0)
        dilation = expand(s.dilation, n, "dilation", label, 1)
        groups = s.groups
        if groups < 1:
            raise RuleError(f"{label}: `groups` must be at least 1, got {groups}", "groups")
        if cin % groups or out % groups:
            raise RuleError(f"{label}: groups={groups} must divide both the input channels ({cin}) and `out` "
                            f"({out})", "groups")
        for i in range(n):
            if output_padding[i] >= stride[i] and output_padding[i] >= dilation[i]:
                raise RuleError(f"{label}: `output_padding` {output_padding[i]} must be smaller than the stride "
                                f"({stride[i]}) or the dilation ({dilation[i]}) along {axis_name(i, n)} (PyTorch "
                                "refuses it otherwise)", "output_padding")
        out_size = tuple(conv_transpose_length(size[i], kernel[i], stride[i], padding[i], output_padding[i],
                                               dilation[i]) for i in range(n))
        for i in range(n):
            if out_size[i] < 1:
                most = (out_size[i] - 1 + 2 * padding[i]) // 2
                raise RuleError(f"{label}: padding {padding[i]} leaves no output along {axis_name(i, n)}: "
                                f"({size[i]} - 1) x {stride[i]} - 2 x {padding[i]} + {dilation[i]} x ({kernel[i]} - 1) "
                                f"+ {output_padding[i]} + 1 = {out_size[i]} ({fmt(size)} input); use a padding of "
                                f"at most {most}", "padding")
        fan_in = out // groups * prod(kernel)  # PyTorch's fan_in of the (in, out/groups, *k) weight
        params = [TensorSpec("weight", (cin, out // groups, *kernel), uniform(fan_in))]
        if s.bias:
            params.append(TensorSpec("bias", (out,), uniform(fan_in)))
        attrs = ConvTransposeAttrs(cin, out, kernel, stride, padding, output_padding, dilation, groups, s.bias)
        window = tuple((transposed_window(kernel[i], stride[i], dilation[i]), Fraction(1, stride[i]))
                       for i in range(n))
        macs = cin * prod(size) * (out // groups) * prod(kernel)
        return Inferred(attrs, (out, *out_size), tuple(params), macs=macs, window=window)

    def caption(self, a: ConvTransposeAttrs) -> str:
        parts = [f"transposed conv {'x'.join(map(str, a.kernel))}", str(a.out_channels)]
        if any(s != 1 for s in a.stride):
            parts.append(f"stride {uniform_text(a.stride)}")
        if any(d != 1 for d in a.dilation):
            parts.append(f"dilation {uniform_text(a.dilation)}")
        if a.groups > 1:
            parts.append(f"groups {a.groups}")
        return ", ".join(parts)

    def torch(self, a: ConvTransposeAttrs, ctx: TorchContext) -> TorchModule:
        in_ch = ctx.derived("in_channels", ctx.input[0])
        out = ctx.value("out_channels", "out")
        keywords = [
            ("kernel_size", ctx.value("kernel", "kernel")),
            ("stride", ctx.value("stride", "stride", default=1)),
            ("padding", ctx.value("padding", "padding", default=0)),
            ("output_padding", ctx.value("output_padding", "output_padding", default=0)),
            ("groups", ctx.value("groups", "groups", default=1)),
            ("bias", ctx.value("bias", "bias", default=True)),
            ("dilation", ctx.value("dilation", "dilation", default=1)),
        ]
        shape = ctx.shape([out.expr, *[None] * ctx.rank])
        return TorchModule(ctx.call(f"nn.ConvTranspose{ctx.rank}d", [in_ch, out], keywords), shape)

    def onnx(self, a: ConvTransposeAttrs, ctx: OnnxContext) -> OnnxValue:
        """ConvTranspose: its weight layout (in, out/groups, *k) and pads are PyTorch's.

        onnxruntime refuses an ``output_padding`` not smaller than the stride, which PyTorch allows when it
        is smaller than the dilation. Such an output padding is taken off the end padding instead (the same
        positions of the full transposed convolution); where it exceeds the padding, the positions beyond
        the full output hold only the bias: zeros padded before the bias is added."""
        x = ctx.inputs[0]
        attrs: dict[str, Any] = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "dilations": list(a.dilation),
                 "group": a.groups}
        if all(o < s for o, s in zip(a.output_padding, a.stride, strict=True)):
            inputs = [x.name, ctx.param("weight")] + ([ctx.param("bias")] if a.bias else [])
            return ctx.op("ConvTranspose", inputs, ctx.out_shape(), pads=[*a.padding, *a.padding],
                          output_padding=list(a.output_padding), **attrs)
        ends = [p - o for p, o in zip(a.padding, a.output_padding, strict=True)]
        if all(e >= 0 for e in ends):
            inputs = [x.name, ctx.param("weight")] + ([ctx.param("bias")] if a.bias else [])
            return ctx.op("ConvTranspose", inputs, ctx.out_shape(), pads=[*a.padding, *ends], **attrs)
        out = ctx.out_shape()
        short = (*out[:2], *(d + min(e, 0) for d, e in zip(out[2:], ends, strict=True)))
        y = ctx.op("ConvTranspose", [x.name, ctx.param("weight")], short, suffix="ConvTranspose",
                   pads=[*a.padding, *(max(e, 0) for e in ends)], **attrs)
        zeros = [0] * len(ends)
        y = pad_spatial(ctx, y, [*zeros, *(max(-e, 0) for e in ends)], "constant", suffix=None if not a.bias else "Pad")
        if a.bias:
            y = ctx.op("Add", [y.name, ctx.param("bias", (a.out_channels,) + (1,) * len(ends))], out)
        return y

    def reference(self, a: ConvTransposeAttrs, inputs: tuple[Shape, ...]) -> str:
        return (f"nn.ConvTranspose{len(a.kernel)}d({a.in_channels}, {a.out_channels}, {a.kernel}, stride={a.stride}, "
                f"padding={a.padding}, output_padding={a.output_padding}, groups={a.groups}, bias={a.bias}, "
                f"dilation={a.dilation})")


def pad_spatial(ctx: OnnxContext, x: OnnxValue, pads: list[int], mode: str, value: float | None = None,
                suffix: str | None = "Pad") -> OnnxValue:
    """An explicit Pad over the spatial axes (ONNX Pad lists every axis: begins, then ends); ``value``
    fills constant padding (default 0); ``suffix`` None names the node after the layer itself."""
    rank = len(pads) // 2
    begin, end = pads[:rank], pads[rank:]
    inputs = [x.name, ctx.const("pads", [0, 0, *begin, 0, 0, *end], integer=True)]
    if value is not None:
        inputs.append(ctx.const("pad_value", value))
    shape = (*x.shape[:2], *(int(d) + lo + hi for d, lo, hi in zip(x.shape[2:], begin, end, strict=True)))
    return ctx.op("Pad", inputs, shape, suffix=suffix, mode=mode)


def _too_small(kernel: Shape, dilation: Shape, size: Shape, pads: tuple[int, ...], label: str) -> None:
    n = len(kernel)
    span = tuple(dilation[i] * (kernel[i] - 1) + 1 for i in range(n))
    padded = tuple(size[i] + pads[i] + pads[n + i] for i in range(n))
    spanning = f" (spanning {fmt(span)} with dilation)" if span != kernel else ""
    with_pad = f" ({fmt(padded)} with padding)" if padded != size else ""
    raise RuleError(f"{label}: kernel {fmt(kernel)}{spanning} is larger than its {fmt(size)} input"
                    f"{with_pad}; the output would be empty", "kernel")


def _weights_shape(values: Any) -> Shape:
    shape: list[int] = []
    level = values
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    return tuple(shape)


def _check_weights(values: Any, shape: Shape, label: str) -> None:
    if 0 in shape:  # [[]] would be a kernel 0 wide, which PyTorch refuses when the module is built
        raise RuleError(f"{label}: `weights` has an empty list (shape {fmt(shape)}); a kernel needs at least one "
                        "number along every axis", "weights")

    def walk(level: Any, depth: int) -> None:
        if depth == len(shape):
            if isinstance(level, bool) or not isinstance(level, (int, float)):
                raise RuleError(f"{label}: `weights` must hold numbers, found {level!r}", "weights")
            return
        if not isinstance(level, list) or len(level) != shape[depth]:
            raise RuleError(f"{label}: `weights` is not a regular array (rows of different lengths)", "weights")
        for item in level:
            walk(item, depth + 1)

    walk(values, 0)


def _fixed_weights(s: ConvSettings, cin: int, n: int, label: str) -> tuple[Any, int, tuple[int, ...]]:
    """Fixed kernel values as a full [out, in/groups, *k] array, with the out channels and kernel."""
    values = s.weights
    shape = _weights_shape(values)
    _check_weights(values, shape, label)
    groups = s.groups
    if len(shape) == n:  # one kernel, used for every (out, in) pair
        out = s.out or 1
        per_out = cin // groups if groups >= 1 and cin % groups == 0 else 1
        copies = out * per_out
        if copies * prod(shape) > MAX_FIXED_WEIGHTS:  # the array is built in memory for the backends
            raise RuleError(f"{label}: one fixed kernel for {copies:,} (out, in) channel pairs is "
                            f"{copies * prod(shape):,} fixed weights; at most {MAX_FIXED_WEIGHTS:,}", "out")
        row = [values] * per_out  # shared references: O(out + in) memory in the analysis, whatever the repeat
        return [row] * out, out, shape
    if len(shape) != n + 2:
        raise RuleError(f"{label}: `weights` has shape {fmt(shape)}; give one {n}D kernel or the full "
                        f"[out, in/groups, {', '.join('k' * n)}] array", "weights")
    if shape[1] * groups != cin:
        expects = shape[1] * groups
        raise RuleError(f"{label}: `weights` has shape {fmt(shape)}, so it expects {expects} input "
                        f"channel{'s' if expects != 1 else ''}, but its input has {cin}", "weights")
    if s.out is not None and s.out != shape[0]:
        raise RuleError(f"{label}: `out` is {s.out} but `weights` holds {shape[0]} kernels", "out")
    return values, shape[0], shape[2:]


def _padding(padding: Any, n: int, kernel: Shape, stride: Shape, dilation: Shape, label: str
             ) -> tuple[Any, tuple[int, ...]]:
    """Padding as written (ints per axis or "same") and explicit (begin..., end...) pads.

    ``same`` follows PyTorch: total d(k-1), the extra element at the end; refused for strides > 1."""
    if padding == "valid":
        return (0,) * n, (0,) * (2 * n)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise RuleError(f"{label}: padding `same` needs stride 1 (PyTorch refuses it for strided "
                            "convolutions); write the padding as a number", "padding")
        total = [dilation[i] * (kernel[i] - 1) for i in range(n)]
        return "same", tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    values = expand(padding, n, "padding", label, 0)
    return values, values + values


def _check_padding_mode(mode: str, pads: tuple[int, ...], size: Shape, label: str) -> None:
    n = len(size)
    for i in range(n):
        limit = size[i] - 1 if mode == "reflect" else size[i]
        pad = max(pads[i], pads[n + i])
        if mode in ("reflect", "circular") and pad > limit:
            need = "smaller than" if mode == "reflect" else "at most"
            raise RuleError(f"{label}: {mode} padding {pad} must be {need} the input's size along "
                            f"{axis_name(i, n)}, which is {size[i]} ({fmt(size)} input)", "padding")


OPS = (Conv(), ConvTranspose())
