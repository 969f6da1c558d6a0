"""The ``cnnspec build --target onnx`` options and their checks (standard library only: ``cnnspec build``
adds every target's options on each run, before any backend is imported)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

DEFAULT_OPSET = 20  # the first opset with Gelu; onnxruntime 1.18+ runs it
MIN_OPSET = 18  # Reduce* take axes as an input from 18 on; LayerNormalization needs 17
MAX_OPSET = 25  # the newest onnxruntime 1.32 runs


def batch_arg(text: str) -> int | None:
    """``--batch``: a positive integer fixes the batch dimension; ``dynamic`` keeps it symbolic."""
    if text == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'dynamic', got '{text}'")
    return value


def opset_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise argparse.ArgumentTypeError(f"expected an opset from {MIN_OPSET} to {MAX_OPSET}, got '{text}'")
    return value


def prefix_arg(text: str) -> str:
    """``--strip-prefix``: a dotted name prefix such as ``module.`` (the final dot may be left out)."""
    if not text.strip(".") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a name prefix such as 'module.', got '{text[:60]}'")
    return text if text.endswith(".") else text + "."


def _adder(parser: argparse.ArgumentParser, title: str) -> Callable[..., None]:
    """``add(flag, **kwargs)`` into a new argument group, skipping a flag the parser already has."""
    group = parser.add_argument_group(title)
    taken = set(parser._option_string_actions)  # argparse has no public lookup

    def add(flag: str, **kwargs: object) -> None:
        if flag not in taken:
            group.add_argument(flag, **kwargs)  # type: ignore[arg-type]

    return add


def _add_weights(add: Callable[..., None]) -> None:
    add("--weights", metavar="FILE", default=None,
        help="state_dict checkpoint (.pt, .pth, .safetensors) keyed like the torch module; default: seeded init")
    add("--strip-prefix", metavar="PREFIX", type=prefix_arg, default=None,
        help="remove PREFIX from the checkpoint's tensor names first, e.g. 'module.' (DataParallel) or "
        "'model.' (Lightning)")


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """``--weights`` and ``--strip-prefix``, as ``cnnspec build`` has them: for ``run`` and ``bench``."""
    _add_weights(_adder(parser, "weights of a spec"))


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Add the ONNX target's options to ``cnnspec build``; an option another target already added (say
    ``--weights`` or ``--seed``) is reused as is."""
    add = _adder(parser, "ONNX target (--target onnx)")
    _add_weights(add)
    add("--seed", type=int, default=0, help="seed of the random initialisation without --weights (default 0)")
    add("--opset", type=opset_arg, default=DEFAULT_OPSET,
        help=f"ONNX opset, {MIN_OPSET}-{MAX_OPSET} (default {DEFAULT_OPSET})")
    add("--batch", type=batch_arg, default=None, metavar="N|dynamic",
        help="fix the batch dimension to N (default: dynamic, a symbolic 'N')")
    add("--fp16", action="store_true", help="float16 weights, input and output (for GPU inference)")
    add("--dynamic-spatial", action="store_true",
        help="keep the input's spatial sizes symbolic (N x C x H x W with H, W named), so one file takes inputs "
        "of several sizes; refused, naming the layer, where an op needs fixed sizes (a flatten before a linear)")


def model_options(options: argparse.Namespace) -> dict[str, object]:
    """The keyword arguments of ``to_model_proto`` from parsed options (missing ones take defaults)."""
    return {
        "seed": getattr(options, "seed", 0) or 0,
        "opset": getattr(options, "opset", DEFAULT_OPSET) or DEFAULT_OPSET,
        "batch": getattr(options, "batch", None),
        "fp16": bool(getattr(options, "fp16", False)),
        "dynamic_spatial": bool(getattr(options, "dynamic_spatial", False)),
    }
