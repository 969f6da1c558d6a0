"""Stage 4, analyse: one pure shape rule per op family.

Each rule takes the op's validated settings, the input shape (no batch axis) and a label for messages,
and returns a :class:`LeafResult`: normalised attrs, output shape, parameters, buffers, MACs, and the
window it applies along each spatial axis (for the receptive field). Rules follow PyTorch's semantics
and refuse, with the reason, every setting PyTorch would refuse. Counting conventions (docs/conventions.md):
MACs count conv and linear multiply-accumulates, bias excluded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnspec.graph import Init, Shape, TensorSpec


class RuleError(Exception):
    """A setting that does not fit the input; ``field`` names the setting to point at."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class LeafResult:
    attrs: dict[str, Any]
    shape: Shape
    params: list[TensorSpec] = field(default_factory=list)
    buffers: list[TensorSpec] = field(default_factory=list)
    macs: int = 0
    window: tuple[tuple[int, int], ...] | None = None  # (effective kernel, stride) per spatial axis
    whole: bool = False  # every output sees the whole input (global pooling, flatten)


def fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def prod(values: tuple[int, ...] | list[int]) -> int:
    return math.prod(values)


def expand(value: int | list[int], n: int, name: str, label: str, minimum: int) -> tuple[int, ...]:
    """One int per spatial axis from an int or a list, checking the count and the lower bound."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise RuleError(f"{label}: `{name}` has {len(values)} values but the input has {n} spatial "
                        f"{'axis' if n == 1 else 'axes'}", name)
    for v in values:
        if v < minimum:
            raise RuleError(f"{label}: `{name}` must be at least {minimum}, got {v}", name)
    return values


def spatial_input(shape: Shape, label: str, op: str) -> int:
    """Number of spatial axes of a channel-first input; refuses flat vectors and over-deep tensors."""
    if len(shape) < 2:
        raise RuleError(f"{label} needs a [C, L], [C, H, W] or [C, D, H, W] input, but gets the flat vector "
                        f"{fmt(shape)}: did a `flatten` come too early?")
    if len(shape) > 4:
        raise RuleError(f"{label} works on 1D, 2D or 3D inputs, but gets {fmt(shape)}")
    return len(shape) - 1


ZEROS = Init("constant", value=0.0)  # Init is frozen: one shared instance each
ONES = Init("constant", value=1.0)


@functools.lru_cache(maxsize=1024)
def _uniform(fan_in: int) -> Init:
    return Init("uniform", bound=1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)


# --- convolution ------------------------------------------------------------------------------------

def conv_length(length: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """PyTorch Conv: floor((L + pad_begin + pad_end - d(k-1) - 1) / s) + 1 (nn.Conv2d docs, "Shape")."""
    return (length + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _weights_shape(values: Any) -> Shape:
    shape: list[int] = []
    level = values
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    return tuple(shape)


def _check_weights(values: Any, shape: Shape, label: str) -> None:
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


MAX_FIXED_WEIGHTS = 10_000_000  # a repeated fixed kernel is expanded to [out, in/groups, *k] nested lists


def _fixed_weights(a: dict[str, Any], cin: int, n: int, label: str) -> tuple[Any, int, tuple[int, ...]]:
    """Fixed kernel values as a full [out, in/groups, *k] array, with the out channels and kernel."""
    values = a["weights"]
    shape = _weights_shape(values)
    _check_weights(values, shape, label)
    groups = a["groups"]
    if len(shape) == n:  # one kernel, used for every (out, in) pair
        out = a["out"] or 1
        copies = out * (cin // groups if cin % groups == 0 else 1)
        if copies * prod(shape) > MAX_FIXED_WEIGHTS:  # the array is built in memory for the backends
            raise RuleError(f"{label}: one fixed kernel for {copies:,} (out, in) channel pairs is "
                            f"{copies * prod(shape):,} fixed weights; at most {MAX_FIXED_WEIGHTS:,}", "out")
        full = [[values for _ in range(cin // groups if cin % groups == 0 else 1)] for _ in range(out)]
        return full, out, shape
    if len(shape) != n + 2:
        raise RuleError(f"{label}: `weights` has shape {fmt(shape)}; give one {n}D kernel or the full "
                        f"[out, in/groups, {', '.join('k' * n)}] array", "weights")
    if shape[1] * groups != cin:
        expects = shape[1] * groups
        raise RuleError(f"{label}: `weights` has shape {fmt(shape)}, so it expects {expects} input "
                        f"channel{'s' if expects != 1 else ''}, but its input has {cin}", "weights")
    if a["out"] is not None and a["out"] != shape[0]:
        raise RuleError(f"{label}: `out` is {a['out']} but `weights` holds {shape[0]} kernels", "out")
    return values, shape[0], shape[2:]


def conv(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    n = spatial_input(shape, label, "conv")
    cin, size = shape[0], shape[1:]
    weights = None
    if a["weights"] is not None:
        weights, out, kernel = _fixed_weights(a, cin, n, label)
        if a["kernel"] is not None and expand(a["kernel"], n, "kernel", label, 1) != kernel:
            raise RuleError(f"{label}: `kernel` disagrees with the {fmt(kernel)} `weights`", "kernel")
    else:
        if a["kernel"] is None:
            raise RuleError(f"{label}: conv needs `kernel` (or fixed `weights`)", "kernel")
        if a["out"] is None:
            raise RuleError(f"{label}: conv needs `out`, the number of output channels", "out")
        kernel, out = expand(a["kernel"], n, "kernel", label, 1), a["out"]
    if out < 1:
        raise RuleError(f"{label}: `out` must be at least 1, got {out}", "out")
    stride = expand(a["stride"], n, "stride", label, 1)
    dilation = expand(a["dilation"], n, "dilation", label, 1)
    groups = a["groups"]
    if groups < 1:
        raise RuleError(f"{label}: `groups` must be at least 1, got {groups}", "groups")
    if cin % groups or out % groups:
        raise RuleError(f"{label}: groups={groups} must divide both the input channels ({cin}) and `out` "
                        f"({out})", "groups")
    padding, pads = _conv_padding(a["padding"], n, kernel, stride, dilation, label)
    _check_padding_mode(a["padding_mode"], pads, size, label)
    out_size = tuple(conv_length(size[i], kernel[i], stride[i], pads[i] + pads[n + i], dilation[i])
                     for i in range(n))
    if min(out_size) < 1:
        span = tuple(dilation[i] * (kernel[i] - 1) + 1 for i in range(n))
        padded = tuple(size[i] + pads[i] + pads[n + i] for i in range(n))
        spanning = f" (spanning {fmt(span)} with dilation)" if span != kernel else ""
        with_pad = f" ({fmt(padded)} with padding)" if padded != size else ""
        raise RuleError(f"{label}: kernel {fmt(kernel)}{spanning} is larger than its {fmt(size)} input"
                        f"{with_pad}; the output would be empty", "kernel")
    bias = a["bias"] if a["bias"] is not None else weights is None
    trainable = a["trainable"]
    fan_in = cin // groups * prod(kernel)
    w_init = Init("fixed", values=weights) if weights is not None else _uniform(fan_in)
    params = [TensorSpec("weight", (out, cin // groups, *kernel), w_init, trainable)]
    if bias:
        b_init = ZEROS if weights is not None else _uniform(fan_in)
        params.append(TensorSpec("bias", (out,), b_init, trainable))
    attrs = {"in_channels": cin, "out_channels": out, "kernel": kernel, "stride": stride, "padding": padding,
             "pads": pads, "dilation": dilation, "groups": groups, "bias": bias,
             "padding_mode": a["padding_mode"], "trainable": trainable, "weights": weights}
    window = tuple((dilation[i] * (kernel[i] - 1) + 1, stride[i]) for i in range(n))
    return LeafResult(attrs, (out, *out_size), params, macs=out * prod(out_size) * fan_in, window=window)


def _conv_padding(padding: Any, n: int, kernel: Shape, stride: Shape, dilation: Shape, label: str
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
                            f"{_axis_name(i, n)}, which is {size[i]} ({fmt(size)} input)", "padding")


def _axis_name(index: int, n: int) -> str:
    return ("L",)[index] if n == 1 else ("H", "W")[index] if n == 2 else ("D", "H", "W")[index]


# --- pooling --------------------------------------------------------------------------------------

def pool_length(length: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h): floor or ceil of
    (L + 2p - d(k-1) - 1) / s, plus 1; with ceil_mode the last window must start inside the input or the
    left padding, otherwise it is dropped."""
    span = length + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= length + pad:
        out -= 1
    return out


def pool(a: dict[str, Any], shape: Shape, label: str, op: str) -> LeafResult:
    n = spatial_input(shape, label, op)
    size = shape[1:]
    kernel = expand(a["kernel"], n, "kernel", label, 1)
    stride = expand(a["stride"] if a["stride"] is not None else list(kernel), n, "stride", label, 1)
    padding = expand(a["padding"], n, "padding", label, 0)
    dilation = expand(a.get("dilation", 1), n, "dilation", label, 1)
    for i in range(n):  # PyTorch: "pad should be smaller than or equal to half of kernel size", dilation aside
        if padding[i] > kernel[i] // 2:
            raise RuleError(f"{label}: padding {padding[i]} is more than half the {kernel[i]}-wide window "
                            "(PyTorch allows at most half)", "padding")
    out_size = tuple(pool_length(size[i], kernel[i], stride[i], padding[i], dilation[i], a["ceil_mode"])
                     for i in range(n))
    if min(out_size) < 1:
        raise RuleError(f"{label}: window {fmt(kernel)} is larger than its {fmt(size)} input; the output would "
                        "be empty", "kernel")
    attrs = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": a["ceil_mode"]}
    if op == "maxpool":
        attrs["dilation"] = dilation
    if op == "avgpool":
        attrs["count_include_pad"] = a["count_include_pad"]
    window = tuple((dilation[i] * (kernel[i] - 1) + 1, stride[i]) for i in range(n))
    return LeafResult(attrs, (shape[0], *out_size), window=window)


def adaptive_pool(a: dict[str, Any], shape: Shape, label: str, op: str) -> LeafResult:
    n = spatial_input(shape, label, op)
    if op.startswith("global"):
        return LeafResult({"out": (1,) * n}, (shape[0], *(1,) * n), whole=True)
    out = expand(a["out"], n, "out", label, 1)
    window = tuple(adaptive_window(length, size) for length, size in zip(shape[1:], out))
    return LeafResult({"out": out}, (shape[0], *out), window=window)


def adaptive_window(length: int, out: int) -> tuple[int, int]:
    """(widest window, largest step) of PyTorch's adaptive pooling from ``length`` to ``out``: window i
    spans [floor(i L / out), ceil((i + 1) L / out)). Equal to (L/out, L/out) when out divides L; (1, 1) when
    out == L (the pooling is then the identity).

    Closed form, constant time for any ``out`` (a loop over 2^31 windows hung ``check``): with
    r_i = i L mod out, window i is ceil((r_i + L) / out) wide and the step after it is
    floor((r_i + L) / out). The r_i are the multiples of g = gcd(L, out) below out, each taken g times
    over i < out; the steps skip i = out - 1, which removes the largest (out - 1) only when g = 1 and
    L mod out = 1."""
    g = math.gcd(length, out)
    widest = -(-(out - g + length) // out)
    if out == 1:
        return widest, max(length, 1)
    top = out - 2 if g == 1 and length % out == 1 else out - g
    return widest, max((top + length) // out, 1)


# --- normalisation --------------------------------------------------------------------------------

def _affine(channels: int, affine: bool, bias: bool = True) -> list[TensorSpec]:
    return list(_affine_specs(channels, affine, bias))


@functools.lru_cache(maxsize=1024)  # TensorSpec is frozen: equal ones are shared between layers
def _affine_specs(channels: int, affine: bool, bias: bool) -> tuple[TensorSpec, ...]:
    if not affine:
        return ()
    weight = TensorSpec("weight", (channels,), ONES)
    return (weight, TensorSpec("bias", (channels,), ZEROS)) if bias else (weight,)


@functools.lru_cache(maxsize=1024)
def _bn_buffers(channels: int) -> tuple[TensorSpec, ...]:
    return (TensorSpec("running_mean", (channels,), ZEROS, False),
            TensorSpec("running_var", (channels,), ONES, False),
            TensorSpec("num_batches_tracked", (), Init("constant", value=0), False, "int64"))


def _check_eps(eps: float, label: str) -> None:
    if eps <= 0:
        raise RuleError(f"{label}: `eps` must be positive, got {eps}", "eps")


def batchnorm(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    if len(shape) > 4:
        raise RuleError(f"{label}: batchnorm works on 1D, 2D or 3D inputs, got {fmt(shape)}")
    _check_eps(a["eps"], label)
    c = shape[0]
    buffers = list(_bn_buffers(c)) if a["track_running_stats"] else []
    attrs = {"num_features": c, "eps": a["eps"], "momentum": a["momentum"], "affine": a["affine"],
             "track_running_stats": a["track_running_stats"]}
    return LeafResult(attrs, shape, _affine(c, a["affine"]), buffers)


def layernorm(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    _check_eps(a["eps"], label)
    size = shape[0] if a["over"] == "channels" else shape[-1]
    attrs = {"over": a["over"], "normalized": size, "eps": a["eps"], "affine": a["affine"]}
    return LeafResult(attrs, shape, _affine(size, a["affine"]))


def groupnorm(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    _check_eps(a["eps"], label)
    c, groups = shape[0], a["groups"]
    if groups < 1 or c % groups:
        raise RuleError(f"{label}: groups={groups} must divide the {c} channels", "groups")
    attrs = {"groups": groups, "num_channels": c, "eps": a["eps"], "affine": a["affine"]}
    return LeafResult(attrs, shape, _affine(c, a["affine"]))


# --- element-wise and reshaping -------------------------------------------------------------------

def _probability(p: float, label: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise RuleError(f"{label}: `p` is a probability between 0 and 1, got {p}", "p")


def elementwise(a: dict[str, Any], shape: Shape, label: str, op: str) -> LeafResult:
    attrs = {k: v for k, v in a.items() if v is not None}
    if op in ("dropout", "stochastic_depth"):
        _probability(a["p"], label)
    if op == "softmax":
        attrs["axis"] = 0 if a["over"] == "channels" else len(shape) - 1
    return LeafResult(attrs, shape)


def flatten(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    return LeafResult({}, (prod(shape),), whole=len(shape) > 1)


def linear(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    over, out = a["over"], a["out"]
    if out < 1:
        raise RuleError(f"{label}: `out` must be at least 1, got {out}", "out")
    if over == "features" and len(shape) != 1:
        raise RuleError(f"{label} needs a flat feature vector but gets a {fmt(shape)} tensor; add `- flatten` "
                        "before it, or set `over: channels` to apply it at every position", "over")
    axis = len(shape) - 1 if over == "last" else 0
    cin = shape[axis]
    out_shape = shape[:axis] + (out,) + shape[axis + 1:]
    params = [TensorSpec("weight", (out, cin), _uniform(cin))]
    if a["bias"]:
        params.append(TensorSpec("bias", (out,), _uniform(cin)))
    attrs = {"in_features": cin, "out_features": out, "bias": a["bias"], "over": over}
    return LeafResult(attrs, out_shape, params, macs=cin * out * (prod(shape) // cin))


def layer_scale(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    c = shape[0]
    param = TensorSpec("", (c,) + (1,) * (len(shape) - 1), Init("constant", value=a["init"]))
    return LeafResult({"channels": c, "init": a["init"]}, shape, [param])


def permute(a: dict[str, Any], shape: Shape, label: str) -> LeafResult:
    dims = a["dims"]
    if sorted(dims) != list(range(len(shape) + 1)) or dims[0] != 0:
        raise RuleError(f"{label}: `dims` must reorder 0..{len(shape)} (batch axis 0 first) for a "
                        f"{fmt(shape)} input, got {dims}", "dims")
    return LeafResult({"dims": tuple(dims)}, tuple(shape[d - 1] for d in dims[1:]))


Rule = Callable[[dict[str, Any], Shape, str], LeafResult]


def _with_op(rule: Callable[[dict[str, Any], Shape, str, str], LeafResult], op: str) -> Rule:
    return lambda a, shape, label: rule(a, shape, label, op)


RULES: dict[str, Rule] = {
    "conv": conv,
    **{op: _with_op(pool, op) for op in ("maxpool", "avgpool", "sumpool")},
    **{op: _with_op(adaptive_pool, op)
       for op in ("adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool")},
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "groupnorm": groupnorm,
    **{op: _with_op(elementwise, op)
       for op in ("relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "identity", "dropout",
                  "stochastic_depth")},
    "flatten": flatten,
    "linear": linear,
    "layer_scale": layer_scale,
    "permute": permute,
}
