"""Random settings of the resampling and layout ops against PyTorch itself: cnnspec refuses exactly what
PyTorch refuses (or what docs/conventions.md says cnnspec refuses beyond it), and otherwise gives PyTorch's
output shape and MACs (``FlopCounterMode`` / 2). PyTorch is called from the raw settings here, not through
the op's own reference, so a shape rule and its reference cannot agree on a mistake."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_text

Case = tuple[dict[str, Any], tuple[int, ...]]  # settings, input shape (no batch axis)


def _sizes(rng: random.Random, n: int, low: int, high: int) -> int | list[int]:
    return rng.randint(low, high) if rng.random() < 0.5 else [rng.randint(low, high) for _ in range(n)]


def _per_axis(value: int | list[int], n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


def conv_transpose_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    settings = {"out": rng.randint(1, 6), "kernel": _sizes(rng, n, 1, 4), "stride": _sizes(rng, n, 1, 3),
                "padding": _sizes(rng, n, 0, 3), "output_padding": _sizes(rng, n, 0, 2),
                "dilation": _sizes(rng, n, 1, 3), "groups": rng.choice([1, 1, 2, 3]), "bias": rng.random() < 0.5}
    return settings, (rng.choice([2, 3, 4, 6]), *(rng.randint(1, 5) for _ in range(n)))


def conv_transpose_torch(s: dict[str, Any], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    n = len(shape) - 1
    cls = getattr(nn, f"ConvTranspose{n}d")
    return cls(shape[0], s["out"], _per_axis(s["kernel"], n), stride=_per_axis(s["stride"], n),
               padding=_per_axis(s["padding"], n), output_padding=_per_axis(s["output_padding"], n),
               groups=s["groups"], bias=s["bias"], dilation=_per_axis(s["dilation"], n))


def upsample_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    mode = rng.choice(["nearest", "linear", "bilinear", "trilinear"])
    settings: dict[str, Any] = {"mode": mode}
    if rng.random() < 0.5:
        settings["scale"] = rng.choice([1, 2, 3, 0.5, 1.5, 2.5, [2, 1.5, 3][:n], [1, 2, 0.5][:n]])
    else:
        settings["size"] = _sizes(rng, n, 1, 9)
    if rng.random() < 0.4:
        settings["align_corners"] = rng.random() < 0.5
    return settings, (2, *(rng.randint(1, 7) for _ in range(n)))


def upsample_torch(s: dict[str, Any], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    n = len(shape) - 1
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[n] if s["mode"] == "linear" else s["mode"]
    scale = s.get("scale")
    scale = tuple(float(v) for v in scale) if isinstance(scale, list) else scale
    return lambda x: F.interpolate(x, size=s.get("size"), scale_factor=scale, mode=mode,
                                   align_corners=s.get("align_corners"))


def upsample_extra(s: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """cnnspec refuses a scale whose output size is not whole (PyTorch floors it)."""
    scale = s.get("scale")
    if scale is None:
        return False
    scales = (scale,) * (len(shape) - 1) if not isinstance(scale, list) else scale
    return len(scales) == len(shape) - 1 and any(length * f != int(length * f) for length, f in zip(shape[1:], scales))


SIDES = ["left", "right", "top", "bottom", "front", "back"]


def pad_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    mode = rng.choice(["constant", "reflect", "replicate", "circular"])
    settings: dict[str, Any] = {"mode": mode}
    if rng.random() < 0.5:
        allowed = SIDES[:2 * n]
        for side in rng.sample(allowed, rng.randint(1, len(allowed))):
            settings[side] = rng.randint(0, 5)
    else:
        settings["padding"] = rng.choice([rng.randint(0, 5), [rng.randint(0, 4) for _ in range(n)],
                                          [[rng.randint(0, 4), rng.randint(0, 4)] for _ in range(n)]])
    if mode == "constant" and rng.random() < 0.5:
        settings["value"] = rng.choice([0.5, -1.0])
    return settings, (2, *(rng.randint(1, 5) for _ in range(n)))


def pad_torch(s: dict[str, Any], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    n = len(shape) - 1
    axes = [("left", "right"), ("top", "bottom"), ("front", "back")][:n]  # PyTorch's order: last axis first
    if "padding" in s:
        padding = s["padding"]
        per_axis = [padding] * n if isinstance(padding, int) else padding
        pairs = [(p, p) if isinstance(p, int) else tuple(p) for p in reversed(per_axis)]
    else:
        pairs = [(s.get(begin, 0), s.get(end, 0)) for begin, end in axes]
    pad = tuple(v for pair in pairs for v in pair)
    value = s.get("value", 0.0) if s["mode"] == "constant" else None
    return lambda x: F.pad(x, pad, mode=s["mode"], value=value)


def shuffle_case(rng: random.Random) -> Case:
    return {"factor": rng.randint(1, 3)}, (rng.choice([1, 2, 4, 8, 9, 12, 18]), rng.randint(1, 6), rng.randint(1, 6))


def channel_shuffle_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    return {"groups": rng.randint(1, 5)}, (rng.choice([1, 2, 4, 6, 12]), *(rng.randint(1, 4) for _ in range(n)))


def reshape_case(rng: random.Random) -> Case:
    shape = tuple(rng.choice([1, 2, 3, 4, 6]) for _ in range(rng.randint(1, 4)))
    target = [rng.choice([1, 2, 3, 4, 6, 8, 12, 24]) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.5:
        target[rng.randrange(len(target))] = -1
    return {"shape": target}, shape


def crop_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    return {"size": _sizes(rng, n, 1, 6)}, (2, *(rng.randint(1, 6) for _ in range(n)))


def crop_torch(s: dict[str, Any], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x.narrow(axis, (L - k) // 2, k)`` per spatial axis: PyTorch refuses a length past the input's end."""
    keep = _per_axis(s["size"], len(shape) - 1)

    def crop(x: torch.Tensor) -> torch.Tensor:
        for axis, (length, k) in enumerate(zip(shape[1:], keep), 2):
            x = x.narrow(axis, (length - k) // 2, k)
        return x
    return crop


def _bound(rng: random.Random) -> int | None:
    return rng.choice([None, rng.randint(-8, 8)])


def slice_case(rng: random.Random) -> Case:
    n = rng.randint(1, 3)
    settings: dict[str, Any] = {}
    if rng.random() < 0.8:
        settings["ranges"] = [[_bound(rng), _bound(rng)] if rng.random() < 0.7 else None for _ in range(n)]
    if rng.random() < 0.5:
        settings["channels"] = [_bound(rng), _bound(rng)]
    return settings, (rng.randint(1, 6), *(rng.randint(1, 6) for _ in range(n)))


def slice_torch(s: dict[str, Any], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Python's own indexing: ``x[:, c0:c1, a:b, ...]``."""
    def bounds(pair: list[int | None] | None) -> slice:
        return slice(None) if pair is None else slice(*pair)
    index = (slice(None), bounds(s.get("channels")), *(bounds(r) for r in s.get("ranges") or []))
    return lambda x: x[index]


def slice_extra(s: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """cnnspec refuses a slice that keeps nothing (PyTorch returns an empty tensor) or slices no axis."""
    empty = slice_torch(s, shape)(torch.empty(1, *shape)).numel() == 0
    return empty or (s.get("channels") is None and all(r is None for r in s.get("ranges") or [None]))


OPS: dict[str, tuple[Callable[[random.Random], Case], Callable[..., Any], Callable[..., bool]]] = {
    "conv_transpose": (conv_transpose_case, conv_transpose_torch, lambda s, shape: False),
    "upsample": (upsample_case, upsample_torch, upsample_extra),
    "pad": (pad_case, pad_torch, lambda s, shape: False),
    "pixel_shuffle": (shuffle_case, lambda s, shape: nn.PixelShuffle(s["factor"]), lambda s, shape: False),
    "pixel_unshuffle": (shuffle_case, lambda s, shape: nn.PixelUnshuffle(s["factor"]), lambda s, shape: False),
    "channel_shuffle": (channel_shuffle_case, lambda s, shape: nn.ChannelShuffle(s["groups"]),
                        lambda s, shape: False),
    "crop": (crop_case, crop_torch, lambda s, shape: False),
    "slice": (slice_case, slice_torch, slice_extra),
    "reshape": (reshape_case, lambda s, shape: (lambda x: x.reshape(len(x), *s["shape"])), lambda s, shape: False),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_random_settings_agree_with_pytorch(op: str) -> None:
    make, build, extra = OPS[op]
    rng = random.Random(op)
    outcomes = {"accepted": 0, "refused": 0}
    for _ in range(150):
        settings, shape = make(rng)
        spec = f"name: r\ninput: {list(shape)}\nlayers: [{json.dumps({op: settings})}]\n"
        try:
            node = analyse_text(spec, "r.yaml").leaves()[0]
        except SpecError as exc:
            node, refusal = None, str(exc)
        x = torch.randn(1, *shape)
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                y = build(settings, shape)(x)
            torch_shape: tuple[int, ...] | None = tuple(y.shape[1:])
        except (RuntimeError, ValueError, NotImplementedError, IndexError) as exc:  # narrow: IndexError
            torch_shape, why = None, str(exc).splitlines()[0]
        if node is None:
            assert torch_shape is None or extra(settings, shape), f"{spec}cnnspec refused: {refusal}"
            outcomes["refused"] += 1
        else:
            assert torch_shape is not None, f"{spec}PyTorch refused: {why}"
            assert node.output_shape == torch_shape, spec
            assert node.macs == counter.get_total_flops() // 2, spec
            outcomes["accepted"] += 1
    assert min(outcomes.values()) >= 10, outcomes  # both sides of every rule are exercised
