"""Pure shape arithmetic shared by the ops: PyTorch's output-size formulas, each with its reference and a
worked example (run as doctests by the fast tests)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnnspec.ir import RFValue, Shape
from cnnspec.ops.base import RuleError


def fmt(shape: Sequence[RFValue]) -> str:
    """A shape (or a receptive field, whose values may be fractions) as students write it.

    >>> fmt((64, 56, 56))
    '64x56x56'
    >>> fmt(())
    'scalar'
    """
    return "x".join(str(d) for d in shape) if shape else "scalar"


def prod(values: Sequence[int]) -> int:
    return math.prod(values)


def expand(value: int | Sequence[int], n: int, name: str, label: str, minimum: int) -> tuple[int, ...]:
    """One int per spatial axis from an int or a list, checking the count and the lower bound.

    >>> expand(3, 2, "kernel", "conv", 1)
    (3, 3)
    >>> expand([1, 2], 2, "stride", "conv", 1)
    (1, 2)
    """
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise RuleError(f"{label}: `{name}` has {len(values)} values but the input has {n} spatial "
                        f"{'axis' if n == 1 else 'axes'}", name)
    for v in values:
        if v < minimum:
            raise RuleError(f"{label}: `{name}` must be at least {minimum}, got {v}", name)
    return values


def spatial_input(shape: Shape, label: str) -> int:
    """Number of spatial axes of a channel-first input; refuses flat vectors and over-deep tensors.

    >>> spatial_input((3, 32, 32), "conv")
    2
    """
    if len(shape) < 2:
        raise RuleError(f"{label} needs a [C, L], [C, H, W] or [C, D, H, W] input, but gets the flat vector "
                        f"{fmt(shape)}: did a `flatten` come too early?")
    if len(shape) > 4:
        raise RuleError(f"{label} works on 1D, 2D or 3D inputs, but gets {fmt(shape)}")
    return len(shape) - 1


def size_of(like: Shape, n: int, name: str, label: str) -> tuple[int, ...]:
    """The spatial size of the tensor a ``size_of`` setting names (``upsample``, ``crop``), which must have as
    many spatial axes as the input (``n``).

    >>> size_of((16, 38, 38), 2, "up", "crop")
    (38, 38)
    """
    if len(like) - 1 != n:
        raise RuleError(f"{label}: `size_of: {name}` is {fmt(like)}, with {len(like) - 1} spatial axes, but the "
                        f"input has {n}; name a tensor of the same rank", "size_of")
    return tuple(like[1:])


def axis_name(index: int, n: int) -> str:
    """``L`` (1D), ``H``/``W`` (2D), ``D``/``H``/``W`` (3D)."""
    return ("L",)[index] if n == 1 else ("H", "W")[index] if n == 2 else ("D", "H", "W")[index]


def conv_length(length: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """PyTorch Conv: floor((L + pad_begin + pad_end - d(k-1) - 1) / s) + 1 (nn.Conv2d docs, "Shape").

    >>> conv_length(224, kernel=7, stride=2, pad_total=6, dilation=1)  # ResNet's stem
    112
    >>> conv_length(5, kernel=3, stride=1, pad_total=0, dilation=2)
    1
    """
    return (length + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def pool_length(length: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h): floor or ceil of
    (L + 2p - d(k-1) - 1) / s, plus 1; with ceil_mode the last window must start inside the input or the
    left padding, otherwise it is dropped.

    >>> pool_length(112, kernel=3, stride=2, pad=1, dilation=1, ceil_mode=False)  # ResNet's maxpool
    56
    >>> pool_length(5, kernel=2, stride=2, pad=0, dilation=1, ceil_mode=True)
    3
    """
    span = length + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= length + pad:
        out -= 1
    return out


def adaptive_window(length: int, out: int) -> tuple[int, int]:
    """(widest window, largest step) of PyTorch's adaptive pooling from ``length`` to ``out``: window i
    spans [floor(i L / out), ceil((i + 1) L / out)). Equal to (L/out, L/out) when out divides L; (1, 1) when
    out == L (the pooling is then the identity).

    Closed form, constant time for any ``out``: with r_i = i L mod out, window i is ceil((r_i + L) / out)
    wide and the step after it is floor((r_i + L) / out). The r_i are the multiples of g = gcd(L, out)
    below out, each taken g times over i < out; the steps skip i = out - 1, which removes the largest
    (out - 1) only when g = 1 and L mod out = 1.

    >>> adaptive_window(14, 7)
    (2, 2)
    >>> adaptive_window(10, 4)  # windows [0,3) [2,5) [5,8) [7,10)
    (3, 3)
    """
    g = math.gcd(length, out)
    widest = -(-(out - g + length) // out)
    if out == 1:
        return widest, max(length, 1)
    top = out - 2 if g == 1 and length % out == 1 else out - g
    return widest, max((top + length) // out, 1)


def projection_stride(length: int, target: int) -> int | None:
    """The smallest stride s of a 1x1 conv taking ``length`` to ``target`` (conv_length(length, 1, s, 0, 1),
    i.e. (L - 1) // s + 1 == target), or None. Closed form: a search up to L hung on a 10^12 input.

    >>> projection_stride(56, 28)
    2
    >>> projection_stride(7, 3)
    3
    >>> projection_stride(5, 4) is None  # 1 gives 5, 2 gives 3
    True
    """
    m, t = length - 1, target - 1
    if t < 0 or length < 1:
        return None
    if t == 0:
        return length
    stride = m // (t + 1) + 1  # the smallest s with m // s <= t
    return stride if m // stride == t else None


def probability(p: float, label: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise RuleError(f"{label}: `p` is a probability between 0 and 1, got {p}", "p")


def check_eps(eps: float, label: str) -> None:
    if eps <= 0:
        raise RuleError(f"{label}: `eps` must be positive, got {eps}", "eps")


def uniform_text(values: Sequence[int]) -> str:
    """A stride or dilation for captions: ``2`` when every axis agrees, else ``1x2``.

    >>> uniform_text((2, 2)), uniform_text((1, 2))
    ('2', '1x2')
    """
    return str(values[0]) if values and all(v == values[0] for v in values) else "x".join(map(str, values))


def conv_transpose_length(length: int, kernel: int, stride: int, pad: int, output_padding: int, dilation: int
                          ) -> int:
    """PyTorch ConvTranspose: (L - 1)s - 2p + d(k - 1) + output_padding + 1 (nn.ConvTranspose2d docs, "Shape").

    >>> conv_transpose_length(4, kernel=4, stride=2, pad=1, output_padding=0, dilation=1)  # DCGAN: 4 -> 8
    8
    >>> conv_transpose_length(5, kernel=3, stride=2, pad=1, output_padding=1, dilation=1)  # undoes a stride-2 conv
    10
    """
    return (length - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1


def transposed_window(kernel: int, stride: int, dilation: int) -> int:
    """The most input positions one output of a transposed convolution reads, along one axis.

    Output o reads input i where i s + t d = o + p for a tap t in [0, k). For a fixed o the valid taps are
    every (s / g)-th (g = gcd(d, s)), so at most ceil(k g / s) of them, and their inputs are d / g apart:
    the window spans (ceil(k g / s) - 1) d / g + 1 inputs (ceil(k / s) without dilation).

    >>> transposed_window(4, 2, 1)  # DCGAN's 4x4 stride-2 layers: every output reads 2 inputs per axis
    2
    >>> transposed_window(3, 1, 2)  # stride 1: the dilated kernel's span
    5
    >>> transposed_window(2, 2, 3)  # taps 0 and 3 never meet the same output
    1
    """
    g = math.gcd(dilation, stride)
    taps = -(-kernel * g // stride)
    return (taps - 1) * (dilation // g) + 1


def interpolation_window(length: int, out: int, linear: bool, align_corners: bool) -> int:
    """The most input positions one output of an interpolation reads along one axis: 1 for nearest; 2 for
    linear, unless every output falls on an input position (then 1): with ``align_corners`` when (L - 1)
    is a multiple of (out - 1) (or out is 1: position 0); without it (source (o + 1/2) L / out - 1/2) when
    L / out is an odd whole number, the identity included. An input of 1 reads 1.

    >>> interpolation_window(16, 32, True, False), interpolation_window(16, 32, False, False)
    (2, 1)
    >>> interpolation_window(9, 3, True, False), interpolation_window(9, 5, True, True)
    (1, 1)
    """
    if not linear or length == 1:
        return 1
    if align_corners:
        return 1 if out == 1 or (length - 1) % (out - 1) == 0 else 2
    return 1 if length % out == 0 and (length // out) % 2 == 1 else 2
