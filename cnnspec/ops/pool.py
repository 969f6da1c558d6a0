"""Pooling: max, average and sum pooling over windows; adaptive pooling to a fixed size; global pooling.

In ONNX, ``ceil_mode`` is never handed to onnxruntime: the end padding is widened until the pool yields
the static output size computed with PyTorch's rule (the last window may not start in the right padding).
Padding that ONNX pools ignore (MaxPool, AveragePool with ``count_include_pad=0``) is exactly PyTorch's
treatment of that overhang, so the result matches without relying on each runtime's ceil rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
    TorchModule,
    Traits,
)
from cnnspec.ops.conv import pad_spatial
from cnnspec.ops.shape import adaptive_window, expand, fmt, pool_length, spatial_input, uniform_text
from cnnspec.settings import Field


class PoolSettings(OpSettings):
    kernel: IntOrList = Field(description="Window size: one int or one per spatial dim.", examples=[2])
    stride: IntOrList | None = Field(None, description="Window step (default: the kernel size).", examples=[2])
    padding: IntOrList = Field(0, description="Implicit padding per side (at most half the kernel).")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


class MaxPoolSettings(PoolSettings):
    summary: ClassVar[str] = "Max pooling, nn.MaxPoolNd."
    example: ClassVar[dict[str, Any]] = {"kernel": 3, "stride": 2, "padding": 1}
    dilation: IntOrList = Field(1, description="Spacing between window taps.")


class AvgPoolSettings(PoolSettings):
    summary: ClassVar[str] = "Average pooling, nn.AvgPoolNd."
    example: ClassVar[dict[str, Any]] = {"kernel": 2}
    count_include_pad: bool = Field(True, description="Count padded zeros in the average.")


class SumPoolSettings(PoolSettings):
    summary: ClassVar[str] = "Sum pooling: the window's sum (padding counts as zero)."
    example: ClassVar[dict[str, Any]] = {"kernel": 2}


@dataclass(frozen=True)
class PoolAttrs:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool
    dilation: tuple[int, ...]  # 1s except for maxpool
    count_include_pad: bool  # avgpool's setting; True for the others


class _WindowPool(Op):
    family = "pool"
    traits = Traits(stateless=True, fresh_output=True)

    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output length per axis: ``pool_length``. Padding is at most half the window, as PyTorch requires.

        >>> MaxPool().infer(MaxPoolSettings(kernel=3, stride=2, padding=1), ((64, 112, 112),), "maxpool").shape
        (64, 56, 56)
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        size = shape[1:]
        kernel = expand(s.kernel, n, "kernel", label, 1)
        stride = expand(s.stride if s.stride is not None else list(kernel), n, "stride", label, 1)
        padding = expand(s.padding, n, "padding", label, 0)
        dilation = expand(getattr(s, "dilation", 1), n, "dilation", label, 1)
        for i in range(n):  # PyTorch: "pad should be smaller than or equal to half of kernel size", dilation aside
            if padding[i] > kernel[i] // 2:
                raise RuleError(f"{label}: padding {padding[i]} is more than half the {kernel[i]}-wide window "
                                "(PyTorch allows at most half)", "padding")
        out_size = tuple(pool_length(size[i], kernel[i], stride[i], padding[i], dilation[i], s.ceil_mode)
                         for i in range(n))
        if min(out_size) < 1:
            raise RuleError(f"{label}: window {fmt(kernel)} is larger than its {fmt(size)} input; the output would "
                            "be empty", "kernel")
        self.check_window(kernel, size, label)
        attrs = PoolAttrs(kernel, stride, padding, s.ceil_mode, dilation, getattr(s, "count_include_pad", True))
        window = tuple((dilation[i] * (kernel[i] - 1) + 1, stride[i]) for i in range(n))
        return Inferred(attrs, (shape[0], *out_size), window=window)

    def check_window(self, kernel: Shape, size: Shape, label: str) -> None:
        """Refusals beyond the output size (none for max pooling)."""

    def caption(self, a: PoolAttrs) -> str:
        return f"{self.name} {'x'.join(map(str, a.kernel))} /{uniform_text(a.stride)}"

    def window(self, ctx: TorchContext, names: tuple[str, ...]) -> tuple[Any, list[tuple[str, Any]]]:
        """A pool's kernel and keyword arguments: the stride (left out where it equals the kernel, PyTorch's
        default), then the settings ``names`` in PyTorch's order."""
        kernel = ctx.value("kernel", "kernel")
        stride = ctx.value("stride", "stride")
        ctx.stride(stride)
        keywords: list[tuple[str, Any]] = []
        if any(a.stride != a.kernel for a in ctx.attrs):  # else PyTorch's default, stride = kernel
            keywords.append(("stride", stride))
        defaults = {"padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}
        keywords += [(name, ctx.value(name, name, default=defaults[name])) for name in names]
        return kernel, keywords

    def symbolic_axes(self, a: PoolAttrs, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        if axes and a.ceil_mode:
            return "with `ceil_mode` its ONNX end padding follows the input size"
        return axes

    def window_pads(self, a: PoolAttrs, ctx: OnnxContext, x: OnnxValue) -> tuple[list[int], list[int]]:
        """(declared pads begin+end, pads with the ceil-mode overhang added at the end)."""
        padding = list(a.padding)
        out = ctx.output_shapes[0][1:]
        ends = []
        for length, k, s, p, d, o in zip(x.shape[2:], a.kernel, a.stride, padding, a.dilation, out, strict=True):
            ends.append(max(p, (o - 1) * s + d * (k - 1) + 1 - int(length) - p))
        return [*padding, *padding], [*padding, *ends]


def _pool_attrs(a: PoolAttrs, pads: list[int]) -> dict[str, Any]:
    return {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": pads}


class MaxPool(_WindowPool):
    name = "maxpool"
    Settings = MaxPoolSettings

    def torch(self, a: PoolAttrs, ctx: TorchContext) -> TorchModule:
        kernel, keywords = self.window(ctx, ("padding", "dilation", "ceil_mode"))
        return TorchModule(ctx.call(f"nn.MaxPool{ctx.rank}d", [kernel], keywords), ctx.shape([ctx.input[0]] + [None] * ctx.rank))

    def onnx(self, a: PoolAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        _, pads = self.window_pads(a, ctx, x)
        rank = len(pads) // 2
        dilated = any(d > 1 for d in a.dilation) and any(pads)
        if dilated or any(p >= k for p, k in zip(pads, [*a.kernel] * 2, strict=True)):
            # onnxruntime wants pads smaller than the kernel, and a dilated window can see padding only,
            # where onnxruntime gives the lowest float and PyTorch -inf: pad with -inf explicitly
            x = pad_spatial(ctx, x, pads, "constant", value=float("-inf"))
            pads = [0] * (2 * rank)
        return ctx.op("MaxPool", [x.name], ctx.out_shape(), dilations=list(a.dilation), **_pool_attrs(a, pads))

    def reference(self, a: PoolAttrs, inputs: tuple[Shape, ...]) -> str:
        return (f"nn.MaxPool{len(a.kernel)}d({a.kernel}, stride={a.stride}, padding={a.padding}, "
                f"dilation={a.dilation}, ceil_mode={a.ceil_mode})")


class _Average(_WindowPool):
    def check_window(self, kernel: Shape, size: Shape, label: str) -> None:
        """PyTorch's AvgPool3d (aten pool3d_shape_check) refuses an input smaller than the kernel along any
        axis, padding or ceil_mode notwithstanding; 1D and 2D average pools do not."""
        if len(size) == 3 and any(length < k for length, k in zip(size, kernel)):
            raise RuleError(f"{label}: window {fmt(kernel)} is larger than its {fmt(size)} input; PyTorch's 3D "
                            "average pooling needs every input size at least the window's, even with padding",
                            "kernel")


class AvgPool(_Average):
    name = "avgpool"
    Settings = AvgPoolSettings

    def torch(self, a: PoolAttrs, ctx: TorchContext) -> TorchModule:
        kernel, keywords = self.window(ctx, ("padding", "ceil_mode", "count_include_pad"))
        return TorchModule(ctx.call(f"nn.AvgPool{ctx.rank}d", [kernel], keywords), ctx.shape([ctx.input[0]] + [None] * ctx.rank))

    def onnx(self, a: PoolAttrs, ctx: OnnxContext) -> OnnxValue:
        x = ctx.inputs[0]
        declared, pads = self.window_pads(a, ctx, x)
        include = a.count_include_pad
        if include and pads != declared:
            # PyTorch divides by the window clipped to the declared padding, never by the ceil overhang
            if any(declared):
                x = pad_spatial(ctx, x, declared, "constant")
                rank = len(pads) // 2
                pads = [0] * rank + [e - p for e, p in zip(pads[rank:], declared[rank:], strict=True)]
            include = False
        return ctx.op("AveragePool", [x.name], ctx.out_shape(), count_include_pad=int(include),
                      **_pool_attrs(a, pads))

    def reference(self, a: PoolAttrs, inputs: tuple[Shape, ...]) -> str:
        return (f"nn.AvgPool{len(a.kernel)}d({a.kernel}, stride={a.stride}, padding={a.padding}, "
                f"ceil_mode={a.ceil_mode}, count_include_pad={a.count_include_pad})")


SUM_POOL_1D = '''class SumPool1d(nn.Module):
    """Sums over sliding windows of a 1D signal, padding counting as zero (``AvgPool1d`` lacks
    ``divisor_override``, so this runs ``avg_pool2d`` with ``divisor_override=1`` on a trailing unit axis)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.avg_pool2d(
            x.unsqueeze(-1),
            (self.kernel_size, 1),
            (self.stride, 1),
            (self.padding, 0),
            ceil_mode=self.ceil_mode,
            count_include_pad=True,
            divisor_override=1,
        )
        return x.squeeze(-1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
'''


class SumPool(_Average):
    name = "sumpool"
    Settings = SumPoolSettings

    def torch(self, a: PoolAttrs, ctx: TorchContext) -> TorchModule:
        kernel, keywords = self.window(ctx, ("padding", "ceil_mode"))
        shape = ctx.shape([ctx.input[0]] + [None] * ctx.rank)
        if ctx.rank == 1:
            ctx.helper("SumPool1d", SUM_POOL_1D)
            return TorchModule(ctx.call("SumPool1d", [kernel], keywords), shape)
        keywords.append(("divisor_override", "1"))
        return TorchModule(ctx.call(f"nn.AvgPool{ctx.rank}d", [kernel], keywords), shape)

    def onnx(self, a: PoolAttrs, ctx: OnnxContext) -> OnnxValue:
        """Window sums: an average over every window position (padding included) times the window size."""
        x = ctx.inputs[0]
        _, pads = self.window_pads(a, ctx, x)
        shape = ctx.out_shape()
        avg = ctx.op("AveragePool", [x.name], shape, suffix="AveragePool", count_include_pad=1, **_pool_attrs(a, pads))
        size = 1
        for k in a.kernel:
            size *= k
        return ctx.op("Mul", [avg.name, ctx.const("window", size)], shape)

    def reference(self, a: PoolAttrs, inputs: tuple[Shape, ...]) -> str:
        n = len(a.kernel)
        if n == 1:
            return (f"lambda x: F.avg_pool2d(x.unsqueeze(-1), ({a.kernel[0]}, 1), ({a.stride[0]}, 1), "
                    f"({a.padding[0]}, 0), ceil_mode={a.ceil_mode}, divisor_override=1).squeeze(-1)")
        return (f"nn.AvgPool{n}d({a.kernel}, stride={a.stride}, padding={a.padding}, ceil_mode={a.ceil_mode}, "
                "divisor_override=1)")


class AdaptiveAvgPoolSettings(OpSettings):
    summary: ClassVar[str] = "Adaptive average pooling to a fixed output size, nn.AdaptiveAvgPoolNd."
    example: ClassVar[dict[str, Any]] = {"out": 7}
    out: IntOrList = Field(description="Output size: one int or one per spatial dim.", examples=[7])


class AdaptiveMaxPoolSettings(AdaptiveAvgPoolSettings):
    summary: ClassVar[str] = "Adaptive max pooling to a fixed output size, nn.AdaptiveMaxPoolNd."
    example: ClassVar[dict[str, Any]] = {"out": [4, 4]}


class GlobalAvgPoolSettings(OpSettings):
    summary: ClassVar[str] = "Average over all positions; output [C, 1, ...]."
    example: ClassVar[dict[str, Any]] = {"name": "avgpool"}


class GlobalMaxPoolSettings(OpSettings):
    summary: ClassVar[str] = "Maximum over all positions; output [C, 1, ...]."
    example: ClassVar[dict[str, Any]] = {"name": "pool"}


@dataclass(frozen=True)
class AdaptiveAttrs:
    out: tuple[int, ...]


class _Adaptive(Op):
    family = "pool"
    traits = Traits(stateless=True, fresh_output=True)
    kind: ClassVar[str]  # Avg | Max

    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output ``(C, *out)``; each output sees the windows of ``adaptive_window``.

        >>> AdaptiveAvgPool().infer(AdaptiveAvgPoolSettings(out=[6, 6]), ((256, 13, 13),), "p").shape
        (256, 6, 6)
        """
        shape = inputs[0]
        n = spatial_input(shape, label)
        if s.out is None:  # global pooling
            return Inferred(AdaptiveAttrs((1,) * n), (shape[0], *(1,) * n), whole=True)
        out = expand(s.out, n, "out", label, 1)
        window = tuple(adaptive_window(length, size) for length, size in zip(shape[1:], out))
        return Inferred(AdaptiveAttrs(out), (shape[0], *out), window=window)

    def caption(self, a: AdaptiveAttrs) -> str:
        return f"adaptive {self.kind.lower()}pool -> {'x'.join(map(str, a.out))}"

    def torch(self, a: AdaptiveAttrs, ctx: TorchContext) -> TorchModule:
        out = ctx.value("out", "out")
        return TorchModule(ctx.call(f"nn.Adaptive{self.kind}Pool{ctx.rank}d", [out], []),
                           ctx.shape([ctx.input[0], *a.out]))

    def onnx(self, a: AdaptiveAttrs, ctx: OnnxContext) -> OnnxValue:
        """One strided pool when every size divides, else PyTorch's windows [floor(i*L/o), ceil((i+1)*L/o))
        one axis at a time (max and mean over a box are separable)."""
        x = ctx.inputs[0]
        pool, reduce = ("MaxPool", "ReduceMax") if self.kind == "Max" else ("AveragePool", "ReduceMean")
        sizes = [int(d) for d in x.shape[2:]]
        outs = list(a.out)
        if all(o == 1 for o in outs):
            return ctx.op("Global" + pool, [x.name], ctx.out_shape())
        if all(length % o == 0 for length, o in zip(sizes, outs, strict=True)):
            kernel = [length // o for length, o in zip(sizes, outs, strict=True)]
            return ctx.op(pool, [x.name], ctx.out_shape(), kernel_shape=kernel, strides=kernel)
        todo = [(axis, o) for axis, (length, o) in enumerate(zip(sizes, outs, strict=True), start=2) if length != o]
        for axis, o in todo:
            x = _adaptive_axis(ctx, x, axis, o, reduce, last=axis == todo[-1][0])
        return x

    def symbolic_axes(self, a: AdaptiveAttrs, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        if axes and any(o != 1 for o in a.out):
            return "its windows follow the input size; only an output of 1 (global pooling) takes any size"
        return frozenset()  # a fixed output size

    def reference(self, a: AdaptiveAttrs, inputs: tuple[Shape, ...]) -> str:
        return f"nn.Adaptive{self.kind}Pool{len(a.out)}d({a.out})"


def _adaptive_axis(ctx: OnnxContext, x: OnnxValue, axis: int, out: int, reduce: str, last: bool) -> OnnxValue:
    length = int(x.shape[axis])
    cell_shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    cells = []
    axes = ctx.const(f"axis{axis}", [axis], integer=True)
    for i in range(out):
        start, end = (i * length) // out, -((-(i + 1) * length) // out)
        bounds = [ctx.const("start", [start], integer=True), ctx.const("end", [end], integer=True)]
        part = ctx.op("Slice", [x.name, *bounds, axes],
                      tuple(end - start if j == axis else d for j, d in enumerate(x.shape)), suffix=f"Slice{axis}_{i}")
        cells.append(ctx.op(reduce, [part.name, axes], cell_shape, suffix=f"{reduce}{axis}_{i}", keepdims=1).name)
    shape = tuple(out if i == axis else d for i, d in enumerate(x.shape))
    return ctx.op("Concat", cells, shape, suffix=None if last else f"Concat{axis}", axis=axis)


class AdaptiveAvgPool(_Adaptive):
    name = "adaptive_avgpool"
    Settings = AdaptiveAvgPoolSettings
    kind = "Avg"


class AdaptiveMaxPool(_Adaptive):
    name = "adaptive_maxpool"
    Settings = AdaptiveMaxPoolSettings
    kind = "Max"


class _Global(_Adaptive):
    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        """Output ``(C, 1, ...)``; every output sees the whole input."""
        shape = inputs[0]
        n = spatial_input(shape, label)
        return Inferred(AdaptiveAttrs((1,) * n), (shape[0], *(1,) * n), whole=True)

    def caption(self, a: AdaptiveAttrs) -> str:
        return f"global {self.kind.lower()}pool"

    def torch(self, a: AdaptiveAttrs, ctx: TorchContext) -> TorchModule:
        return TorchModule(ctx.call(f"nn.Adaptive{self.kind}Pool{ctx.rank}d", ["1"], []),
                           ctx.shape([ctx.input[0], *a.out]))


class GlobalAvgPool(_Global):
    name = "global_avgpool"
    Settings = GlobalAvgPoolSettings
    kind = "Avg"


class GlobalMaxPool(_Global):
    name = "global_maxpool"
    Settings = GlobalMaxPoolSettings
    kind = "Max"


OPS = (MaxPool(), AvgPool(), SumPool(), AdaptiveAvgPool(), AdaptiveMaxPool(), GlobalAvgPool(), GlobalMaxPool())
