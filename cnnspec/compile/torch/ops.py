"""One emitter per leaf op: the ``nn`` constructor call for a group of equivalent nodes, and the symbolic
shape the op produces.

An emitter reads values through the class builder (``b.value`` and friends), which writes a value as
the spec's expression when that expression reproduces every instance's analysed value, and as a
number, or an extra constructor argument, when it does not. Settings equal to PyTorch's defaults are
left out, so the calls read like hand-written ones.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from cnnspec.compile.torch import expr as E
from cnnspec.errors import SpecError

if TYPE_CHECKING:
    from cnnspec.compile.torch.plan import Builder
    from cnnspec.compile.torch.views import Group, Sym, Val

Emitter = Callable[["Builder", "Group", "Sym"], tuple[str, "Sym"]]


def _rank(group: Group) -> int:
    return max(len(group[0].node.input_shape) - 1, 1)


def _call(func: str, positional: list[Val | str], keywords: list[tuple[str, Val | str]]) -> str:
    """``func(positional..., key=value...)``, leaving out keywords whose value is PyTorch's default."""
    args = [p if isinstance(p, str) else str(p.src) for p in positional]
    for key, value in keywords:
        src = value if isinstance(value, str) else value.src
        if src is not None:
            args.append(f"{key}={src}")
    return f"{func}({', '.join(args)})"


def _same(sym: Sym) -> Sym:
    return list(sym)


def _spatial(b: Builder, group: Group, sym: Sym, channels: ast.expr | None) -> Sym:
    return b.shape(group, [channels, *[None] * (len(sym) - 1)])


def conv(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    in_ch = b.derived(group, sym[0], "in_channels")
    out = b.value(group, "out_channels", "out", hint="out")
    stride = b.value(group, "stride", "stride", default=1, hint="stride")
    b.log_stride(stride)
    kw = [
        ("kernel_size", b.value(group, "kernel", "kernel")),
        ("stride", stride),
        ("padding", b.value(group, "padding", "padding", default=0)),
        ("dilation", b.value(group, "dilation", "dilation", default=1)),
        ("groups", b.value(group, "groups", "groups", default=1)),
        ("bias", b.value(group, "bias", "bias", default=True)),
        ("padding_mode", b.value(group, "padding_mode", "padding_mode", default="zeros")),
    ]
    return _call(f"nn.Conv{_rank(group)}d", [in_ch, out], kw), _spatial(b, group, sym, out.expr)


def _pool_window(b: Builder, group: Group, names: tuple[str, ...]) -> tuple[Val, list[tuple[str, Val | str]]]:
    """A pool's kernel and keyword arguments: the stride (left out where it equals the kernel, PyTorch's
    default), then the settings ``names`` in PyTorch's order."""
    kernel = b.value(group, "kernel", "kernel")
    stride = b.value(group, "stride", "stride")
    b.log_stride(stride)
    if all(it.node.attrs["stride"] == it.node.attrs["kernel"] for it in group):
        stride.src = None  # PyTorch's default: stride = kernel
    defaults = {"padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}
    kw: list[tuple[str, Val | str]] = [("stride", stride)]
    kw += [(name, b.value(group, name, name, default=defaults[name])) for name in names]
    return kernel, kw


def maxpool(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kernel, kw = _pool_window(b, group, ("padding", "dilation", "ceil_mode"))
    return _call(f"nn.MaxPool{_rank(group)}d", [kernel], kw), _spatial(b, group, sym, sym[0])


def avgpool(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kernel, kw = _pool_window(b, group, ("padding", "ceil_mode", "count_include_pad"))
    return _call(f"nn.AvgPool{_rank(group)}d", [kernel], kw), _spatial(b, group, sym, sym[0])


def sumpool(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kernel, kw = _pool_window(b, group, ("padding", "ceil_mode"))
    if _rank(group) == 1:
        b.helper("SumPool1d")
        return _call("SumPool1d", [kernel], kw), _spatial(b, group, sym, sym[0])
    kw.append(("divisor_override", "1"))
    return _call(f"nn.AvgPool{_rank(group)}d", [kernel], kw), _spatial(b, group, sym, sym[0])


def _adaptive(kind: str) -> Emitter:
    def emit(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
        node = group[0].node
        out: Val | str = "1" if node.op.startswith("global_") else b.value(group, "out", "out")
        spatial = [E.const(v) for v in node.output_shape[1:]]
        return _call(f"nn.Adaptive{kind}Pool{_rank(group)}d", [out], []), b.shape(group, [sym[0], *spatial])

    return emit


def batchnorm(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kw = [
        ("eps", b.value(group, "eps", "eps", default=1e-5)),
        ("momentum", b.value(group, "momentum", "momentum", default=0.1)),
        ("affine", b.value(group, "affine", "affine", default=True)),
        ("track_running_stats", b.value(group, "track_running_stats", "track_running_stats", default=True)),
    ]
    feats = b.derived(group, sym[0], "num_features")
    return _call(f"nn.BatchNorm{_rank(group)}d", [feats], kw), _same(sym)


def layernorm(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    node = group[0].node
    kw = [
        ("eps", b.value(group, "eps", "eps", default=1e-5)),
        ("elementwise_affine", b.value(group, "affine", "affine", default=True)),
    ]
    if node.attrs["over"] == "channels":
        b.helper("ChannelLayerNorm")
        return _call("ChannelLayerNorm", [b.derived(group, sym[0], "normalized")], kw), _same(sym)
    return _call("nn.LayerNorm", [b.derived(group, sym[-1], "normalized")], kw), _same(sym)


def groupnorm(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kw = [
        ("eps", b.value(group, "eps", "eps", default=1e-5)),
        ("affine", b.value(group, "affine", "affine", default=True)),
    ]
    positional = [b.value(group, "groups", "groups"), b.derived(group, sym[0], "num_channels")]
    return _call("nn.GroupNorm", positional, kw), _same(sym)


def _plain(cls: str) -> Emitter:
    def emit(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
        return f"{cls}()", _same(sym)

    return emit


def leaky_relu(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    return _call("nn.LeakyReLU", [], [("negative_slope", b.value(group, "slope", "slope", default=0.01))]), _same(sym)


def gelu(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    kw = [("approximate", b.value(group, "approximate", "approximate", default="none"))]
    return _call("nn.GELU", [], kw), _same(sym)


def softmax(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    node = group[0].node
    dim = -1 if node.attrs.get("over") == "last" else node.attrs["axis"] + 1
    return f"nn.Softmax(dim={dim})", _same(sym)


def dropout(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    return _call("nn.Dropout", [], [("p", b.value(group, "p", "p", default=0.5))]), _same(sym)


def stochastic_depth(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    b.helper("StochasticDepth")
    p = b.value(group, "p", "p")
    mode = b.value(group, "mode", "mode")
    return _call("StochasticDepth", [p, mode], []), _same(sym)


def flatten(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    flat = E.product(list(sym)) if all(s is not None for s in sym) else None  # type: ignore[arg-type]
    return "nn.Flatten()", b.shape(group, [flat])


def linear(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    over = group[0].node.attrs.get("over", "features")
    axis = -1 if over == "last" else 0
    in_f = b.derived(group, sym[axis], "in_features")
    out = b.value(group, "out_features", "out")
    bias = b.value(group, "bias", "bias", default=True)
    cls = "nn.Linear"
    if over == "channels":
        b.helper("PointwiseLinear")
        cls = "PointwiseLinear"
    call = _call(cls, [in_f, out], [("bias", bias)])
    new = list(sym)
    new[axis] = out.expr
    return call, b.shape(group, new)


def permute(b: Builder, group: Group, sym: Sym) -> tuple[str, Sym]:
    b.helper("Permute")
    dims = group[0].node.attrs["dims"]
    if any(g.node.attrs["dims"] != dims for g in group):
        raise SpecError("the torch backend needs a block's permute dims to be equal in every instance",
                        group[0].node.pos)
    new = [sym[d - 1] for d in dims[1:]]
    return f"Permute({list(dims)!r})", b.shape(group, new)


EMITTERS: dict[str, Emitter] = {
    "conv": conv,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "sumpool": sumpool,
    "adaptive_avgpool": _adaptive("Avg"),
    "adaptive_maxpool": _adaptive("Max"),
    "global_avgpool": _adaptive("Avg"),
    "global_maxpool": _adaptive("Max"),
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "groupnorm": groupnorm,
    "relu": _plain("nn.ReLU"),
    "silu": _plain("nn.SiLU"),
    "sigmoid": _plain("nn.Sigmoid"),
    "tanh": _plain("nn.Tanh"),
    "identity": _plain("nn.Identity"),
    "leaky_relu": leaky_relu,
    "gelu": gelu,
    "softmax": softmax,
    "dropout": dropout,
    "stochastic_depth": stochastic_depth,
    "flatten": flatten,
    "linear": linear,
    "permute": permute,
}

# Ops that are not modules: handled by the class builder itself.
SPECIAL = frozenset({"layer_scale"})


def supported(op: str) -> bool:
    return op in EMITTERS or op in SPECIAL

