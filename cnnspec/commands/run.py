"""``cnnspec run MODEL.onnx|SPEC``: one onnxruntime inference; prints every input's and output's shape and
the top values of each numeric output.

A spec takes the options ``build`` gives it (``--set``, ``--input C,H,W``, ``--weights``, ``--strip-prefix``);
``--input X.npy`` instead feeds an array to a model with one input. Any other model gets random inputs of
the right dtype for every input."""

from __future__ import annotations

import argparse
import io
from typing import Any

from cnnspec import console
from cnnspec.commands.common import add_spec_options, parse_overrides, parse_shape
from cnnspec.errors import UsageError, one_line

ITEMS_SHOWN = 8  # items of the batch whose top values are printed


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cnnspec.compile import limits

    p = sub.add_parser("run", help="run an ONNX model (or a spec, with random weights or --weights) in onnxruntime",
                       description="Run one inference in onnxruntime and print the inputs' and outputs' shapes and "
                       "the top values. A spec is compiled in memory, with seeded random weights or --weights.")
    p.add_argument("model", help="an .onnx file or a spec (.yaml)")
    add_model_options(p)
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="batch size of the random input (default: the model's fixed batch, else 1)")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                   help="execution provider: auto prefers CUDA and falls back to the CPU (default auto)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many top values to print (default 5)")
    p.add_argument("--output", metavar="Y.npy|Y.npz", help="also save the first output array (.npy), or every output "
                   "under its name (.npz, for a model with several outputs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input and of a spec's weights")
    limits.add_option(p)
    limits.add_input_option(p)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--set``, ``--input``, ``--weights`` and ``--strip-prefix`` as ``cnnspec build`` has them; ``--input``
    also takes an ``X.npy`` array (``run`` and ``bench``)."""
    from cnnspec.compile.onnx.options import add_weights_options

    add_spec_options(p)
    for action in p._actions:  # argparse has no public lookup
        if action.dest == "input_shape":
            action.metavar = "C,H,W|X.npy"
            action.help = ("a spec's input shape (no batch axis), e.g. --input 3,160,160; or X.npy, an array fed to "
                           "the model's input (with or without the batch axis)")
    add_weights_options(p)


def model_input(args: argparse.Namespace) -> tuple[tuple[int, ...] | None, str | None]:
    """``--input`` as (a spec's input shape, an ``.npy`` path): one of them, or neither."""
    text = args.input_shape
    if text is None:
        return None, None
    if text.lower().endswith(".npy"):
        return None, text
    return parse_shape(text), None


def load(args: argparse.Namespace, seed: int = 0) -> Any:
    """The model named on the command line (``runtime.Loaded``): an ``.onnx`` file as it is, or a spec (with
    ``--set``, ``--input C,H,W``) compiled with a dynamic batch and seeded weights or ``--weights`` (names
    stripped of ``--strip-prefix``), refused past ``--max-bytes`` (``cnnspec.compile.limits``)."""
    from pathlib import Path

    from cnnspec.commands.common import require_file
    from cnnspec.compile.onnx.runtime import SPEC_SUFFIXES, compiled_spec, load_model

    shape, _ = model_input(args)
    overrides = parse_overrides(args.overrides)
    spec = Path(args.model).suffix.lower() in SPEC_SUFFIXES
    if not spec or not Path(args.model).exists():  # a spec that exists is read (and refused) by the front end
        require_file(args.model)
    if not spec:
        given = [flag for flag, value in (("--set", overrides), ("--input C,H,W", shape), ("--weights", args.weights),
                                          ("--strip-prefix", args.strip_prefix)) if value]
        if given:
            raise UsageError(f"{given[0]} applies to a spec, not to an .onnx file")
        return load_model(args.model)
    from cnnspec.compile.limits import check_size
    from cnnspec.frontend import analyse_file

    if args.strip_prefix and not args.weights:
        raise UsageError("--strip-prefix applies to the names in a --weights file; give one")
    graph = analyse_file(Path(args.model), overrides or None, shape)
    check_size(graph, "onnx", args.max_bytes)
    return compiled_spec(graph, args.model, seed, args.weights, args.strip_prefix)


def run(args: argparse.Namespace) -> int:
    from cnnspec.compile.limits import input_limit
    from cnnspec.compile.onnx.runtime import feeds_for, open_session, runner

    if (args.batch is not None and args.batch < 1) or args.top < 0:
        raise UsageError("--batch must be at least 1 and --top at least 0")
    _, npy = model_input(args)
    model = load(args, args.seed)
    s = open_session(model, args.provider)
    if s.note:
        console.note(s.note)
    feeds = feeds_for(s, npy, args.batch, args.seed, input_limit(args.max_input_bytes))
    outputs = runner(s)(feeds)
    names = [o.name for o in s.session.get_outputs()]
    named = len(feeds) > 1 or len(outputs) > 1
    print(f"model:    {one_line(model.label)}")
    print(f"provider: {s.provider}")
    if not feeds:
        print("input:    none")
    for name, x in feeds.items():
        print(f"input:    {_named(name, named)}{describe(x)}")
    for name, y in zip(names, outputs, strict=True):
        print(f"output:   {_named(name, named)}{describe(y)}")
        for line in top_lines(y, args.top):
            print(line)
    if args.output and args.output.lower().endswith(".npz"):
        _save_all(args.output, dict(zip(names, outputs, strict=True)))
    elif args.output:
        _save(args.output, outputs[0] if outputs else None)
    return 0


def _save_all(path: str, ys: dict[str, Any]) -> None:
    """Every output, each under its ONNX name (``out``, ``aux``), in one ``.npz``."""
    import numpy as np

    from cnnspec.fsutil import write_atomic

    for name, y in ys.items():
        if not isinstance(y, np.ndarray):
            raise UsageError(f"--output saves tensors, but the model's output `{name}` is {describe(y)}")
    buf = io.BytesIO()
    np.savez(buf, **{name: y.astype(str) if y.dtype.kind == "O" else y for name, y in ys.items()})
    write_atomic(path, buf.getvalue())
    console.info(f"wrote {path}")


def _named(name: str, named: bool) -> str:
    from cnnspec.compile.onnx.errors import short

    return one_line(short(name)) + " " if named else ""


def describe(value: Any) -> str:
    """``[1, 10] float32``, ``[] float32 = 0.5``, ``sequence of 3 tensors``..."""
    import numpy as np

    if isinstance(value, np.ndarray):
        dtype = "string" if value.dtype.kind in "OUS" else str(value.dtype)
        scalar = f" = {value.item():.5g}" if value.ndim == 0 and value.dtype.kind in "biuf" else ""
        return f"{list(value.shape)} {dtype}{scalar}"
    if isinstance(value, list):
        return f"sequence of {len(value)} " + ("tensors" if all(isinstance(v, np.ndarray) for v in value) else "values")
    if isinstance(value, dict):
        return f"map of {len(value)} entries"
    return "none" if value is None else type(value).__name__


def top_lines(y: Any, k: int) -> list[str]:
    """The ``k`` largest values of each of the first items of a numeric output (a 1-D output is one item)."""
    import numpy as np

    if not isinstance(y, np.ndarray) or y.dtype.kind not in "biuf" or y.ndim == 0 or y.size == 0 or k == 0:
        return []
    rows = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(1, -1)
    lines = []
    for item, row in enumerate(rows[:ITEMS_SHOWN]):
        top = np.argsort(-row.astype(np.float64), kind="stable")[:k]
        lines.append(f"top {len(top)} of item {item}: " + ", ".join(f"[{i}] {float(row[i]):.5g}" for i in top))
    return lines


def _save(path: str, y: Any) -> None:
    import numpy as np

    from cnnspec.fsutil import write_atomic

    if not isinstance(y, np.ndarray):
        raise UsageError(f"--output saves a tensor, but the model's first output is {describe(y)}")
    buf = io.BytesIO()
    np.save(buf, y.astype(str) if y.dtype.kind == "O" else y, allow_pickle=False)
    write_atomic(path, buf.getvalue())
    console.info(f"wrote {path}")
