"""Random runnable specs: small networks that ``cnnspec.load`` accepts by construction, for the differential
fuzz (``tools/differential.py``) and as seeds of the front-end fuzz (``tools/fuzzcases.py``).

``random_spec(seed)`` gives the spec's data and ``spec_text(seed)`` its YAML; the same seed gives the same
spec. The generator tracks the tensor shape (no batch axis) as it goes and only writes a layer whose
settings fit that shape, using PyTorch's size formulas (``conv_length``, ``pool_length``), which
``cnnspec``'s analysis follows too. Coverage: 1D/2D/3D (and flat) inputs; conv with every padding mode,
``same``/``valid``/explicit padding, dilation, groups and depthwise, stride, bias on/off, fixed kernels
(one kernel or the full array, ``trainable: false``); max/avg/sum pools with ``ceil_mode``,
``count_include_pad``, padding and dilation, windows wider than the input where padding or ceil mode make
them valid; adaptive and global pools; batchnorm (``affine``, ``track_running_stats``), layernorm over
channels and last, groupnorm; every activation; flatten and linear over features, channels and last;
permute (channels-last regions); layer_scale; residuals with identity, list (some starting with an
activation) and projection shortcuts; concat with empty branches; named sequentials; stages of a block
with ``first:``, and direct block calls; ``$`` parameters.

Sizes stay tiny (inputs such as 2x6x6, at most 8 channels), so one spec runs in milliseconds."""

from __future__ import annotations

import functools
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Shape = tuple[int, ...]
Item = Any  # a layer as written in a spec: an op name or a one-key mapping
Made = tuple[Item, Shape]  # a layer and the shape it gives

MAX_CHANNELS = 8
MAX_LEAVES = 14
MAX_DEPTH = 2  # residual / concat / sequential nesting
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "identity", "dropout",
               "stochastic_depth")
PADDING_MODES = ("zeros", "zeros", "reflect", "replicate", "circular")


class NoFit(Exception):
    """The layer kind being drawn does not fit the current shape."""


# ------------------------------------------------------------------------------- what check accepts

# Corners where check accepts what PyTorch refuses (docs/robustness.md, "Differential fuzz": C9, N1). The
# generator writes them for as long as check accepts them, and stops once check refuses them, so that
# its specs stay valid by construction when those bugs are fixed either way.
PROBES = {
    "avgpool3d wider than its input": "input: [1, 1, 3, 3]\nlayers: [avgpool: {kernel: [2, 1, 1], padding: [1, 0, 0]}]",
    "sumpool3d wider than its input": "input: [1, 1, 3, 3]\nlayers: [sumpool: {kernel: [2, 1, 1], padding: [1, 0, 0]}]",
    "batch statistics of one value": "input: [2, 1, 1]\nlayers: [batchnorm: {track_running_stats: false}]",
    "groupnorm of one value": "input: [2, 1, 1]\nlayers: [groupnorm: {groups: 2}]",
}


@functools.cache
def check_accepts(probe: str) -> bool:
    """Whether ``cnnspec.load`` accepts the spec ``PROBES[probe]``."""
    import cnnspec
    from cnnspec.errors import SpecError

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.yaml"
        path.write_text(f"name: probe\n{PROBES[probe]}\n")
        try:
            cnnspec.load(path)
        except SpecError:
            return False
    return True


# ------------------------------------------------------------------------------------------ size rules

def conv_length(length: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """PyTorch's Conv output length (nn.Conv2d docs, "Shape")."""
    return (length + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def pool_length(length: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape: in ceil mode the last window must start inside the input or the
    left padding."""
    span = length + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= length + pad:
        out -= 1
    return out


def projection_stride(length: int, target: int) -> int | None:
    """The stride of a 1x1 conv taking ``length`` to ``target``, or None."""
    return next((s for s in range(1, length + 1) if (length - 1) // s + 1 == target), None)


# ---------------------------------------------------------------------------------------------- state

PLAIN_NAMES = {"w": "w", "width": "width", "stride": "stride", "drop": "drop"}
# Every fourth spec names its param and block arguments like keywords, builtins, the generated code's own
# names, a generated constant or the model's class; chosen by the spec number, so the random draws (and
# so the networks) are the same whatever the names.
HOSTILE_NAMES = [
    {"w": "out", "width": "class", "stride": "self", "drop": "print"},
    {"w": "assign", "width": "out", "stride": "x", "drop": "lambda"},
    {"w": "_w", "width": "len", "stride": "nn", "drop": "torch"},
    {"w": "Rand{seed}", "width": "SOBEL_WEIGHT", "stride": "identity", "drop": "__init__"},
]


def names_for(seed: int) -> dict[str, str]:
    if seed % 4 != 1:
        return dict(PLAIN_NAMES)
    return {k: v.format(seed=seed) for k, v in HOSTILE_NAMES[seed // 4 % len(HOSTILE_NAMES)].items()}


@dataclass
class Gen:
    """The generator's state for one spec."""

    rng: random.Random
    params: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, Any] = field(default_factory=dict)
    leaves: int = 0
    depth: int = 0
    counter: int = 0
    scopes: list[set[str]] = field(default_factory=lambda: [set()])  # names taken per naming scope
    # the names of the spec param and block arguments (issue 14: names Python reserves must build too)
    names: dict[str, str] = field(default_factory=lambda: dict(PLAIN_NAMES))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def name(self, settings: dict[str, Any], prefix: str = "l", p: float = 0.15) -> dict[str, Any]:
        """Give ``settings`` an explicit (unique) name now and then."""
        if self.chance(p):
            settings["name"] = self.fresh(prefix)
        return settings

    def channels(self, low: int = 1) -> int:
        return self.rng.randint(low, MAX_CHANNELS - 2)

    def size(self, values: list[int] | tuple[int, ...]) -> int | list[int]:
        """One int when every axis agrees (mostly), else the list."""
        if len(set(values)) == 1 and self.chance(0.75):
            return values[0]
        return list(values)

    def param(self, value: int) -> int | str:
        """``value``, or now and then a ``$`` expression of the spec's ``w`` parameter that equals it."""
        name = self.names["w"]
        w = self.params.get(name)
        if w is None or not self.chance(0.3):
            return value
        if value == w:
            return f"${name}"
        if value == 2 * w:
            return f"${name} * 2"
        if value == w + 1:
            return f"${name} + 1"
        return value


def leaf(op: str, settings: dict[str, Any]) -> Item:
    return {op: settings} if settings else op


# ------------------------------------------------------------------------------------------ conv

def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _conv_groups(g: Gen, cin: int) -> tuple[int, int]:
    """(groups, out): plain, depthwise (out a multiple of the channels) or grouped."""
    roll = g.rng.random()
    if roll < 0.2 and cin > 1:
        return cin, cin * g.rng.choice([1, 1, 2])
    if roll < 0.35:
        groups = g.rng.choice(_divisors(cin))
        return groups, groups * g.rng.randint(1, max(1, (MAX_CHANNELS - 2) // groups))
    return 1, g.channels()


def _conv_padding(g: Gen, kernel: list[int], stride: list[int], dilation: list[int]
                  ) -> tuple[Any, list[int], list[int]]:
    """(padding as written, begin pads, end pads)."""
    n = len(kernel)
    roll = g.rng.random()
    if roll < 0.2 and all(s == 1 for s in stride):
        total = [dilation[i] * (kernel[i] - 1) for i in range(n)]
        return "same", [t // 2 for t in total], [t - t // 2 for t in total]
    if roll < 0.3:
        return "valid", [0] * n, [0] * n
    pads = [g.rng.randint(0, 2) for _ in range(n)]
    return g.size(pads), pads, pads


def _mode_fits(mode: str, begin: list[int], end: list[int], size: Shape) -> bool:
    for i, length in enumerate(size):
        pad = max(begin[i], end[i])
        if mode == "reflect" and pad > length - 1 or mode == "circular" and pad > length:
            return False
    return True


def _fixed_kernel(g: Gen, out: int, cin: int, groups: int, kernel: list[int]) -> tuple[dict[str, Any], int]:
    """Settings of a fixed-kernel conv: one kernel for every channel pair, or the full array."""
    def values(shape: list[int]) -> Any:
        if not shape:
            return g.rng.choice([-2, -1, 0, 1, 2, 0.5, -0.25, 1.5])
        return [values(shape[1:]) for _ in range(shape[0])]

    settings: dict[str, Any] = {}
    if g.chance(0.5):
        settings["weights"] = values(kernel)
        if groups > 1 or g.chance(0.6):
            settings["out"] = out
        else:
            out = 1  # cnnspec's default for one kernel
    else:
        settings["weights"] = values([out, cin // groups, *kernel])
        if g.chance(0.3):
            settings["out"] = out
    if g.chance(0.3):
        settings["kernel"] = g.size(kernel)
    return settings, out


def make_conv(g: Gen, shape: Shape) -> Made:
    n = len(shape) - 1
    if not 1 <= n <= 3:
        raise NoFit
    cin, size = shape[0], shape[1:]
    groups, out = _conv_groups(g, cin)
    kernel = [g.rng.randint(1, min(length + 2, 4)) for length in size]
    stride = [1] * n if g.chance(0.6) else [g.rng.randint(1, 2) for _ in range(n)]
    dilation = [1] * n if g.chance(0.75) else [g.rng.randint(1, 2) for _ in range(n)]
    padding, begin, end = _conv_padding(g, kernel, stride, dilation)
    mode = g.rng.choice(PADDING_MODES)
    if not _mode_fits(mode, begin, end, size):
        mode = "zeros"
    out_size = tuple(conv_length(size[i], kernel[i], stride[i], begin[i] + end[i], dilation[i]) for i in range(n))
    if min(out_size) < 1:
        raise NoFit
    settings: dict[str, Any] = {}
    if g.chance(0.15):
        fixed, out = _fixed_kernel(g, out, cin, groups, kernel)
        settings.update(fixed)
        settings["trainable"] = g.rng.choice([False, False, True])
    else:
        settings.update({"out": g.param(out), "kernel": g.size(kernel)})
        if g.chance(0.05):
            settings["trainable"] = False
    if stride != [1] * n or g.chance(0.1):
        settings["stride"] = g.size(stride)
    if padding != 0 or g.chance(0.1):
        settings["padding"] = padding
    if dilation != [1] * n:
        settings["dilation"] = g.size(dilation)
    if groups != 1 or g.chance(0.05):
        settings["groups"] = groups
    if g.chance(0.3):
        settings["bias"] = g.chance(0.5)
    if mode != "zeros" or g.chance(0.05):
        settings["padding_mode"] = mode
    return {"conv": g.name(settings)}, (out, *out_size)


# ------------------------------------------------------------------------------------------ pools

def make_pool(g: Gen, shape: Shape, op: str) -> Made:
    n = len(shape) - 1
    if not 1 <= n <= 3:
        raise NoFit
    size = shape[1:]
    kernel = [g.rng.randint(1, min(length + 2, 4)) for length in size]
    stride = list(kernel) if g.chance(0.5) else [g.rng.randint(1, 3) for _ in range(n)]
    padding = [g.rng.randint(0, k // 2) for k in kernel] if g.chance(0.5) else [0] * n
    dilation = [1] * n if op != "maxpool" or g.chance(0.7) else [g.rng.randint(1, 2) for _ in range(n)]
    ceil_mode = g.chance(0.4)
    out_size = tuple(pool_length(size[i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
                     for i in range(n))
    if min(out_size) < 1:
        raise NoFit
    if not _accepted_window(op, kernel, size):
        raise NoFit
    settings: dict[str, Any] = {"kernel": g.size(kernel)}
    if stride != kernel or g.chance(0.1):
        settings["stride"] = g.size(stride)
    if any(padding):
        settings["padding"] = g.size(padding)
    if dilation != [1] * n:
        settings["dilation"] = g.size(dilation)
    if ceil_mode or g.chance(0.1):
        settings["ceil_mode"] = ceil_mode
    if op == "avgpool" and g.chance(0.5):
        settings["count_include_pad"] = g.chance(0.5)
    return {op: g.name(settings)}, (shape[0], *out_size)


def _accepted_window(op: str, kernel: list[int], size: Shape) -> bool:
    """False for a 3D average or sum pool window wider than the input once check refuses those (C9)."""
    wider = len(size) == 3 and op != "maxpool" and any(k > length for k, length in zip(kernel, size))
    return not wider or check_accepts(f"{op}3d wider than its input")


def make_adaptive(g: Gen, shape: Shape, op: str) -> Made:
    n = len(shape) - 1
    if not 1 <= n <= 3:
        raise NoFit
    if op.startswith("global"):
        return leaf(op, g.name({})), (shape[0], *(1,) * n)
    out = [g.rng.randint(1, length + 1) for length in shape[1:]]
    return {op: g.name({"out": g.size(out)})}, (shape[0], *out)


# ------------------------------------------------------------------------------------- norms, activations

def make_batchnorm(g: Gen, shape: Shape) -> Made:
    if len(shape) > 4:
        raise NoFit
    settings: dict[str, Any] = {}
    for key, p in (("affine", 0.3), ("track_running_stats", 0.3)):
        if g.chance(p):
            settings[key] = g.chance(0.4)
    if g.chance(0.2):
        settings["eps"] = g.rng.choice([1e-3, 1e-5, 0.1])
    if g.chance(0.1):
        settings["momentum"] = 0.2
    one_value = settings.get("track_running_stats") is False and math.prod(shape[1:]) == 1
    if one_value and not check_accepts("batch statistics of one value"):
        del settings["track_running_stats"]
    return leaf("batchnorm", g.name(settings)), shape


def make_layernorm(g: Gen, shape: Shape) -> Made:
    settings: dict[str, Any] = {}
    if g.chance(0.7):
        settings["over"] = g.rng.choice(["channels", "last"])
    if g.chance(0.2):
        settings["eps"] = g.rng.choice([1e-6, 1e-3])
    if g.chance(0.2):
        settings["affine"] = g.chance(0.5)
    return leaf("layernorm", g.name(settings)), shape


def make_groupnorm(g: Gen, shape: Shape) -> Made:
    settings: dict[str, Any] = {"groups": g.rng.choice(_divisors(shape[0]))}
    if g.chance(0.2):
        settings["affine"] = g.chance(0.5)
    if g.chance(0.1):
        settings["eps"] = 1e-3
    if shape[0] // settings["groups"] * math.prod(shape[1:]) == 1 and not check_accepts("groupnorm of one value"):
        raise NoFit
    return {"groupnorm": g.name(settings)}, shape


def make_activation(g: Gen, shape: Shape, op: str | None = None) -> Made:
    op = op or g.rng.choice(ACTIVATIONS)
    settings: dict[str, Any] = {}
    if op == "leaky_relu" and g.chance(0.6):
        settings["slope"] = g.rng.choice([0.1, 0.2, -0.5, 1.5])
    elif op == "gelu" and g.chance(0.6):
        settings["approximate"] = g.rng.choice(["none", "tanh"])
    elif op == "softmax" and g.chance(0.7):
        settings["over"] = g.rng.choice(["channels", "last"])
    elif op == "dropout" and g.chance(0.6):
        settings["p"] = g.rng.choice([0.0, 0.2, 0.5, 0.9])
    elif op == "stochastic_depth":
        settings["p"] = g.rng.choice([0.0, 0.1, 0.5])
        if g.chance(0.4):
            settings["mode"] = g.rng.choice(["row", "batch"])
    return leaf(op, g.name(settings)), shape


def make_layer_scale(g: Gen, shape: Shape) -> Made:
    settings = {"init": g.rng.choice([1e-6, 0.5, 2.0])} if g.chance(0.5) else {}
    return leaf("layer_scale", g.name(settings)), shape


# ----------------------------------------------------------------------------------- reshaping, linear

def make_flatten(g: Gen, shape: Shape) -> Made:
    if len(shape) < 2 and not g.chance(0.1):
        raise NoFit
    return leaf("flatten", g.name({})), (math.prod(shape),)


def make_linear(g: Gen, shape: Shape, over: str | None = None) -> Made:
    if over is None:
        over = "features" if len(shape) == 1 and g.chance(0.7) else g.rng.choice(["channels", "last"])
    out = g.channels()
    settings: dict[str, Any] = {"out": g.param(out)}
    if over != "features" or g.chance(0.1):
        settings["over"] = over
    if g.chance(0.2):
        settings["bias"] = g.chance(0.5)
    axis = len(shape) - 1 if over == "last" else 0
    return {"linear": g.name(settings)}, (*shape[:axis], out, *shape[axis + 1:])


def make_permute(g: Gen, shape: Shape) -> Made:
    rest = list(range(1, len(shape) + 1))
    if len(shape) in (3, 4) and g.chance(0.5):  # to channels-last, ConvNeXt's region
        rest = [*range(2, len(shape) + 1), 1]
    else:
        g.rng.shuffle(rest)
    dims = [0, *rest]
    return {"permute": g.name({"dims": dims})}, tuple(shape[d - 1] for d in dims[1:])


def make_channels_last(g: Gen, shape: Shape) -> Made:
    """ConvNeXt's pattern as a sequential: permute to channels-last, layers over the last axis (norms,
    linears, activations), permute back."""
    n = len(shape) - 1
    if not 1 <= n <= 3 or g.depth >= MAX_DEPTH:
        raise NoFit
    to_last = [0, *range(2, n + 2), 1]
    moved = tuple(shape[d - 1] for d in to_last[1:])
    items: list[Item] = [{"permute": {"dims": to_last}}]
    for _ in range(g.rng.randint(1, 4)):
        roll = g.rng.random()
        if roll < 0.3:
            item, moved = make_linear(g, moved, "last")
        elif roll < 0.5:
            item = {"layernorm": {"over": "last", **({"eps": 1e-6} if g.chance(0.5) else {})}}
        elif roll < 0.8:
            item = make_activation(g, moved)[0]
        else:
            item = make_layer(g, moved, PRESERVING)[0]
        items.append(item)
    items.append({"permute": {"dims": [0, n + 1, *range(1, n + 1)]}})
    g.leaves += len(items)
    back = (moved[-1], *moved[:-1])
    return {"sequential": g.name({"layers": items}, "cl", p=0.5)}, back


# --------------------------------------------------------------------------------------- structures

def _scoped(g: Gen, body: Callable[[], Any]) -> Any:
    """Run ``body`` one structure level deeper."""
    g.depth += 1
    try:
        return body()
    finally:
        g.depth -= 1


def make_layers(g: Gen, shape: Shape, count: int, kinds: dict[str, float] | None = None) -> tuple[list[Item], Shape]:
    items = []
    for _ in range(count):
        if g.leaves >= MAX_LEAVES:
            break
        item, shape = make_layer(g, shape, kinds)
        items.append(item)
    return items, shape


def make_preserving(g: Gen, shape: Shape) -> Made:
    """A layer that keeps the shape: activations, norms, layer scale, stride-1 'same' convs and pools."""
    return make_layer(g, shape, PRESERVING)


def _same_conv(g: Gen, shape: Shape) -> Made:
    n = len(shape) - 1
    if not 1 <= n <= 3:
        raise NoFit
    kernel = g.rng.choice([1, 3])
    settings: dict[str, Any] = {"out": shape[0], "kernel": kernel, "padding": g.rng.choice(["same", kernel // 2])}
    if shape[0] > 1 and g.chance(0.3):
        settings["groups"] = shape[0]
    mode = g.rng.choice(PADDING_MODES)
    if _mode_fits(mode, [kernel // 2] * n, [kernel // 2] * n, shape[1:]) and mode != "zeros":
        settings["padding_mode"] = mode
    return {"conv": g.name(settings)}, shape


def _same_pool(g: Gen, shape: Shape) -> Made:
    n = len(shape) - 1
    if not 1 <= n <= 3:
        raise NoFit
    op = g.rng.choice(["maxpool", "avgpool", "sumpool"])
    if not _accepted_window(op, [3] * n, shape[1:]):
        op = "maxpool"
    settings: dict[str, Any] = {"kernel": 3, "stride": 1, "padding": 1}
    if op == "avgpool" and g.chance(0.5):
        settings["count_include_pad"] = False
    return {op: g.name(settings)}, shape


def _shortcut(g: Gen, shape: Shape, body: Shape) -> Any:
    """A shortcut giving ``body`` from ``shape`` (None: leave it out, the identity), or NoFit."""
    options: list[Callable[[], Any]] = []
    if body == shape:
        options += [lambda: None, lambda: "identity", lambda: _list_shortcut(g, shape, body)]
    elif len(body) == len(shape) >= 2:
        strides = [projection_stride(a, b) for a, b in zip(shape[1:], body[1:])]
        if None in strides:
            raise NoFit
        options.append(lambda: _list_shortcut(g, shape, body, strides))
    elif len(body) == len(shape) == 1:
        options.append(lambda: _list_shortcut(g, shape, body))
    else:
        raise NoFit
    if len(shape) >= 2 and (body == shape or len(body) == len(shape)):
        options += [lambda: _projection(g)] * 2
    return g.rng.choice(options)()


def _projection(g: Gen) -> dict[str, Any]:
    settings: dict[str, Any] = {"projection": g.rng.choice(["auto", "always"])}
    if "downsample" in g.scopes[-1] or g.chance(0.3):
        settings["name"] = g.fresh("proj")
    else:
        g.scopes[-1].add("downsample")
    if g.chance(0.2):
        settings["norm"] = g.rng.choice(["batchnorm", "none"])
    return settings


def _list_shortcut(g: Gen, shape: Shape, body: Shape, strides: list[int | None] | None = None) -> list[Item]:
    """Layers from ``shape`` to ``body``, now and then starting with an activation (an op on the block's
    input: it must not change the caller's tensor)."""
    items: list[Item] = []
    if g.chance(0.5):
        items.append(make_activation(g, shape, g.rng.choice(["relu", "relu", "leaky_relu", "silu", "gelu"]))[0])
    if body != shape and len(shape) >= 2:
        conv = {"out": body[0], "kernel": 1, "stride": g.size([s or 1 for s in strides or [1]]), "bias": False}
        items.append({"conv": g.name(conv)})
        if g.chance(0.5):
            items.append(make_batchnorm(g, body)[0])
    elif body != shape:
        items.append({"linear": g.name({"out": body[0]})})
    g.leaves += len(items)
    if body == shape and (not items or g.chance(0.5)):
        items.append(make_preserving(g, shape)[0])
    return items


def make_residual(g: Gen, shape: Shape) -> Made:
    if g.depth >= MAX_DEPTH:
        raise NoFit

    def build() -> Made:
        for _ in range(4):
            before = g.leaves
            body, out = make_layers(g, shape, g.rng.randint(1, 3), None if g.chance(0.5) else PRESERVING)
            try:
                shortcut = _shortcut(g, shape, out)
            except NoFit:
                g.leaves = before
                continue
            settings: dict[str, Any] = {"body": body}
            if shortcut is not None:
                settings["shortcut"] = shortcut
            return {"residual": settings}, out
        raise NoFit

    return _scoped(g, build)


def make_concat(g: Gen, shape: Shape) -> Made:
    if g.depth >= MAX_DEPTH:
        raise NoFit

    def build() -> Made:
        first, out = make_layers(g, shape, g.rng.randint(0, 2))
        branches, channels = [first], out[0]
        for _ in range(g.rng.randint(1, 2)):
            if out[1:] == shape[1:] and len(out) == len(shape) and g.chance(0.35):
                branches.append([])
                channels += shape[0]
                continue
            for _ in range(4):
                before = g.leaves
                branch, got = make_layers(g, shape, g.rng.randint(1, 2))
                if len(got) == len(out) and got[1:] == out[1:]:
                    branches.append(branch)
                    channels += got[0]
                    break
                g.leaves = before
        if len(branches) == 1 and not g.chance(0.2):
            raise NoFit
        g.rng.shuffle(branches)
        return {"concat": {"branches": branches}}, (channels, *out[1:])

    return _scoped(g, build)


def make_sequential(g: Gen, shape: Shape) -> Made:
    if g.depth >= MAX_DEPTH:
        raise NoFit

    def build() -> Made:
        g.scopes.append(set())
        try:
            items, out = make_layers(g, shape, g.rng.randint(1, 3))
        finally:
            g.scopes.pop()
        return {"sequential": g.name({"layers": items}, "seq", p=0.7)}, out

    return _scoped(g, build)


# ------------------------------------------------------------------------------------- blocks, stages

def _block_layers(g: Gen, shapes: list[Shape], width: int, rank: int) -> list[Item]:
    """A block's layers with `$width` and `$stride` arguments: a conv (odd kernel, half padding, so the
    output is ceil(L / stride)) then layers that keep the shape, all checked on every instance's input
    in ``shapes``; inside a residual with a projection now and then."""
    kernel = g.rng.choice([1, 3])
    dilation = 1 if kernel == 1 or g.chance(0.7) else 2
    pad = dilation * (kernel - 1) // 2
    conv: dict[str, Any] = {"out": f"${g.names['width']}", "kernel": kernel, "stride": f"${g.names['stride']}",
                            "padding": pad}
    if dilation > 1:
        conv["dilation"] = dilation
    mode = g.rng.choice(PADDING_MODES)
    if mode != "zeros" and all(_mode_fits(mode, [pad] * rank, [pad] * rank, s[1:]) for s in shapes):
        conv["padding_mode"] = mode
    if g.chance(0.3):
        conv["bias"] = False
    after = shapes[-1]  # every instance's conv output has this shape
    rest = [make_preserving(g, (width, *after[1:]))[0] for _ in range(g.rng.randint(0, 2))]
    g.leaves += 1
    layers = [{"conv": conv}, *rest]
    if g.chance(0.3):
        layers.append({"stochastic_depth": {"p": f"${g.names['drop']}"}})
    if g.chance(0.6):
        shortcut = {"projection": g.rng.choice(["auto", "auto", "always"])}
        layers = [{"residual": {"body": layers, "shortcut": shortcut}}]
        if g.chance(0.5):
            layers.append("relu")
    return layers


def make_stage(g: Gen, shape: Shape) -> Made:
    rank = len(shape) - 1
    if g.depth >= MAX_DEPTH or not 1 <= rank <= 3 or g.leaves > MAX_LEAVES - 4:
        raise NoFit
    width, stride0 = g.channels(), g.rng.choice([1, 2, 2])
    after = (width, *((length - 1) // stride0 + 1 for length in shape[1:]))
    name = g.fresh("b")
    g.scopes.append(set())
    try:
        layers = _scoped(g, lambda: _block_layers(g, [shape, after], width, rank))
    finally:
        g.scopes.pop()
    n = g.names
    g.blocks[name] = {"args": {n["width"]: "int", n["stride"]: 1, n["drop"]: 0.0}, "layers": layers}
    if g.chance(0.25):  # a direct block call: one instance
        args = {n["width"]: width, n["stride"]: stride0, **({"name": g.fresh("blk")} if g.chance(0.5) else {})}
        return {name: args}, after
    settings: dict[str, Any] = {"name": g.fresh("stage"), "block": name, "repeat": g.rng.randint(1, 3),
                                "args": {n["width"]: width}}
    if stride0 != 1:
        settings["first"] = {n["stride"]: stride0}
    if g.chance(0.3):
        settings["args"][n["drop"]] = 0.2
    return {"stage": settings}, after


# ------------------------------------------------------------------------------------------- registry

Maker = Callable[[Gen, Shape], Made]
MAKERS: dict[str, Maker] = {
    "conv": make_conv,
    "maxpool": lambda g, s: make_pool(g, s, "maxpool"),
    "avgpool": lambda g, s: make_pool(g, s, "avgpool"),
    "sumpool": lambda g, s: make_pool(g, s, "sumpool"),
    "adaptive_avgpool": lambda g, s: make_adaptive(g, s, "adaptive_avgpool"),
    "adaptive_maxpool": lambda g, s: make_adaptive(g, s, "adaptive_maxpool"),
    "global_avgpool": lambda g, s: make_adaptive(g, s, "global_avgpool"),
    "global_maxpool": lambda g, s: make_adaptive(g, s, "global_maxpool"),
    "batchnorm": make_batchnorm,
    "layernorm": make_layernorm,
    "groupnorm": make_groupnorm,
    "activation": make_activation,
    "layer_scale": make_layer_scale,
    "flatten": make_flatten,
    "linear": make_linear,
    "permute": make_permute,
    "channels_last": make_channels_last,
    "same_conv": _same_conv,
    "same_pool": _same_pool,
    "residual": make_residual,
    "concat": make_concat,
    "sequential": make_sequential,
    "stage": make_stage,
}
LEAF_MAKERS = frozenset(MAKERS) - {"residual", "concat", "sequential", "stage", "channels_last"}
# Relative weights of each kind where it fits the shape.
ANY: dict[str, float] = {
    "conv": 6, "maxpool": 1.5, "avgpool": 1.5, "sumpool": 1, "adaptive_avgpool": 0.7, "adaptive_maxpool": 0.7,
    "global_avgpool": 0.3, "global_maxpool": 0.3, "batchnorm": 2, "layernorm": 1.5, "groupnorm": 1,
    "activation": 5, "layer_scale": 0.7, "flatten": 0.5, "linear": 1.2, "permute": 1, "channels_last": 0.8,
    "residual": 2.5,
    "concat": 1.5, "sequential": 0.7, "stage": 1.5,
}
PRESERVING: dict[str, float] = {
    "activation": 4, "batchnorm": 2, "layernorm": 1, "groupnorm": 1, "layer_scale": 1, "same_conv": 3,
    "same_pool": 1,
}


def make_layer(g: Gen, shape: Shape, kinds: dict[str, float] | None = None) -> Made:
    """One layer that fits ``shape``, drawn from ``kinds`` (weights) until one fits."""
    table = dict(kinds or ANY)
    while table:
        kind = g.rng.choices(list(table), weights=list(table.values()))[0]
        try:
            item, out = MAKERS[kind](g, shape)
        except NoFit:
            del table[kind]
            continue
        if kind in LEAF_MAKERS:
            g.leaves += 1
        return item, out
    g.leaves += 1
    return "identity", shape


# -------------------------------------------------------------------------------------------- specs

def random_input(rng: random.Random) -> Shape:
    rank = rng.choices([0, 1, 2, 3], weights=[0.05, 0.3, 0.4, 0.25])[0]
    channels = rng.randint(1, 4)
    if rank == 0:
        return (rng.randint(2, 12),)
    low, high = {1: (3, 12), 2: (2, 7), 3: (2, 5)}[rank]
    if rank > 1 and rng.random() < 0.1:
        low = 1  # an axis of length 1 now and then
    return (channels, *(rng.randint(low, high) for _ in range(rank)))


def _head(g: Gen, shape: Shape) -> tuple[list[Item], Shape]:
    """Now and then a classifier: (global) pooling, flatten and linear."""
    items: list[Item] = []
    if len(shape) >= 2 and g.chance(0.5):
        item, shape = make_adaptive(g, shape, g.rng.choice(["global_avgpool", "global_maxpool",
                                                             "adaptive_avgpool"]))
        items.append(item)
    if len(shape) >= 2:
        item, shape = make_flatten(g, shape)
        items.append(item)
    item, shape = make_linear(g, shape)
    return [*items, item], shape


def random_spec(seed: int) -> dict[str, Any]:
    """The data of spec number ``seed``."""
    g = Gen(random.Random(seed), names=names_for(seed))
    shape = random_input(g.rng)
    if g.chance(0.3):
        g.params[g.names["w"]] = g.rng.randint(2, 4)
    layers, out = make_layers(g, shape, g.rng.randint(1, 6))
    if g.chance(0.4):
        head, out = _head(g, out)
        layers += head
    spec: dict[str, Any] = {"name": f"rand{seed}", "input": list(shape)}
    if g.params:
        spec["params"] = dict(g.params)
    if g.blocks:
        spec["blocks"] = g.blocks
    spec["layers"] = layers
    return spec


def dump(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)


def spec_text(seed: int) -> str:
    """The YAML text of spec number ``seed``."""
    return dump(random_spec(seed))
