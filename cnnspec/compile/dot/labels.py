"""Text in the lecture's words: one short caption per op (``conv 3x3, 64, stride 2``, ``maxpool 3x3 /2``,
``linear 512 -> 1000``), shapes without the batch axis (``64x56x56``) and compact counts (``9.41k``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cnnspec.graph import Node, Shape


def shape_text(shape: Shape) -> str:
    """``(64, 56, 56)`` -> ``64x56x56``; a flat vector is just its length."""
    return "x".join(str(d) for d in shape) if shape else "?"


def count_text(n: int) -> str:
    """Exact with thousands separators below 10,000, else three significant digits with k/M/G."""
    if n < 10_000:
        return f"{n:,}"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            value = n / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f}{suffix}"
    return str(n)  # unreachable: n >= 10,000 matched k


def _window(values: Sequence[int]) -> str:
    """A kernel or window: ``3x3``, ``7`` (1D), ``3x3x3`` (3D)."""
    return "x".join(str(v) for v in values)


def _uniform(values: Sequence[int]) -> int | None:
    """The single value of an all-equal tuple (``(2, 2)`` -> 2), else None."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _stride_text(stride: Sequence[int]) -> str:
    single = _uniform(stride)
    return str(single) if single is not None else _window(stride)


def _conv(a: dict[str, Any]) -> str:
    parts = [f"conv {_window(a['kernel'])}", str(a["out_channels"])]
    if any(s != 1 for s in a["stride"]):
        parts.append(f"stride {_stride_text(a['stride'])}")
    if any(d != 1 for d in a["dilation"]):
        parts.append(f"dilation {_stride_text(a['dilation'])}")
    groups = a["groups"]
    if groups > 1:
        depthwise = groups == a["in_channels"] == a["out_channels"]
        parts.append("depthwise" if depthwise else f"groups {groups}")
    if a.get("weights") is not None and not a.get("trainable", True):
        parts.append("fixed")
    return ", ".join(parts)


def _pool(kind: str) -> Callable[[dict[str, Any]], str]:
    def caption(a: dict[str, Any]) -> str:
        return f"{kind} {_window(a['kernel'])} /{_stride_text(a['stride'])}"

    return caption


def _adaptive(kind: str) -> Callable[[dict[str, Any]], str]:
    return lambda a: f"adaptive {kind} -> {_window(a['out'])}"


def _linear(a: dict[str, Any]) -> str:
    where = {"channels": " per position", "last": " on last axis"}.get(a.get("over", "features"), "")
    return f"linear {a['in_features']} -> {a['out_features']}{where}"


def _groupnorm(a: dict[str, Any]) -> str:
    return f"groupnorm, {a['groups']} groups"


def _layernorm(a: dict[str, Any]) -> str:
    return "layernorm" if a.get("over", "channels") == "channels" else "layernorm (last axis)"


def _gelu(a: dict[str, Any]) -> str:
    return "gelu (tanh)" if a.get("approximate") == "tanh" else "gelu"


def _permute(a: dict[str, Any]) -> str:
    return "permute " + ",".join(str(d) for d in a["dims"])


_CAPTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "conv": _conv,
    "maxpool": _pool("maxpool"),
    "avgpool": _pool("avgpool"),
    "sumpool": _pool("sumpool"),
    "adaptive_avgpool": _adaptive("avgpool"),
    "adaptive_maxpool": _adaptive("maxpool"),
    "global_avgpool": lambda a: "global avgpool",
    "global_maxpool": lambda a: "global maxpool",
    "batchnorm": lambda a: "batchnorm",
    "layernorm": _layernorm,
    "groupnorm": _groupnorm,
    "leaky_relu": lambda a: f"leaky relu {a['slope']:g}",
    "gelu": _gelu,
    "dropout": lambda a: f"dropout {a['p']:g}",
    "stochastic_depth": lambda a: f"stochastic depth {a['p']:g}",
    "linear": _linear,
    "layer_scale": lambda a: "layer scale",
    "permute": _permute,
}


def op_caption(node: Node) -> str:
    """The one-line description of a leaf, e.g. ``conv 3x3, 64, stride 2``. Ops without settings worth
    showing (relu, flatten, ...) are captioned by their name."""
    caption = _CAPTIONS.get(node.op)
    return caption(node.attrs) if caption else node.op.replace("_", " ")


def block_kind(node: Node) -> str:
    """What a scope is, for cluster titles and collapsed nodes: ``stage: 2 x basic``, ``block basic``,
    ``sequential``."""
    if node.op == "stage":
        kinds = sorted({c.block.kind for c in node.children if c.block is not None})
        kind = kinds[0] if len(kinds) == 1 else "blocks"
        return f"stage: {len(node.children)} x {kind}"
    if node.block is not None:
        return f"block {node.block.kind}"
    return node.op


def params_text(node: Node) -> str:
    """``9,408 params``; frozen parameters (fixed kernels) say so: ``18 frozen params``."""
    frozen = node.total_params - node.total_trainable
    if frozen == node.total_params:
        return f"{count_text(frozen)} frozen params"
    text = f"{count_text(node.total_params)} params"
    return f"{text} ({count_text(frozen)} frozen)" if frozen else text


def totals_text(node: Node) -> str:
    """``2.78M params, 231M MACs`` (parts that are zero are left out)."""
    parts = []
    if node.total_params:
        parts.append(params_text(node))
    if node.total_macs:
        parts.append(f"{count_text(node.total_macs)} MACs")
    return ", ".join(parts)


def tooltip_text(node: Node) -> str:
    """Hover text in SVG: path, op, shapes and exact figures."""
    lines = [
        f"{node.path or node.name or 'model'} ({node.op})",
        f"{shape_text(node.input_shape)} -> {shape_text(node.output_shape)}",
        f"params {node.total_params:,}",
        f"MACs {node.total_macs:,}",
    ]
    if node.rf_size:
        lines.append(f"receptive field {_window(node.rf_size)}, stride {_window(node.rf_stride)}")
    return "\n".join(lines)
