"""``cnnspec run MODEL.onnx|SPEC``: one onnxruntime inference; prints the output shape and top values."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec import console
from cnnspec.commands.common import parse_overrides
from cnnspec.errors import UsageError

if TYPE_CHECKING:
    import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cnnspec.compile import limits

    p = sub.add_parser("run", help="run an ONNX model (or a spec, with random weights) in onnxruntime",
                       description="Run one inference in onnxruntime and print the output's shape and top "
                       "values. A spec is compiled in memory with seeded random weights.")
    p.add_argument("model", help="an .onnx file or a spec (.yaml)")
    p.add_argument("--input", dest="input_file", metavar="X.npy",
                   help="input array (with or without the batch axis); default: standard-normal noise")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size of the noise input (default 1)")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                   help="execution provider: auto prefers CUDA and falls back to the CPU (default auto)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many top values to print (default 5)")
    p.add_argument("--output", metavar="Y.npy", help="also save the output array")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise input and of a spec's weights")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec parameter (specs only)")
    limits.add_option(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cnnspec.compile.onnx.runtime import fit_input, load_model, make_input, open_session
    from cnnspec.fsutil import write_atomic

    if args.batch < 1 or args.top < 0:
        raise UsageError("--batch must be at least 1 and --top at least 0")
    model = load_model(args.model, parse_overrides(args.overrides), args.seed, args.max_bytes)
    s = open_session(model, args.provider)
    if s.note:
        console.note(s.note)
    x = make_input(s.session, args.batch, args.seed) if not args.input_file else fit_input(
        s.session, _read_npy(args.input_file), args.input_file)
    y = s.session.run(None, {s.session.get_inputs()[0].name: x})[0]
    print(f"model:    {model.label}")
    print(f"provider: {s.provider}")
    print(f"input:    {list(x.shape)} {x.dtype}")
    print(f"output:   {list(y.shape)} {y.dtype}")
    for item, row in enumerate(y.reshape(y.shape[0], -1)[:8]):
        top = np.argsort(-row.astype(np.float64), kind="stable")[: args.top]
        print(f"top {len(top)} of item {item}: " + ", ".join(f"[{i}] {row[i]:.5g}" for i in top))
    if args.output:
        buf = io.BytesIO()
        np.save(buf, y)
        write_atomic(args.output, buf.getvalue())
        console.info(f"wrote {args.output}")
    return 0


def _read_npy(path: str) -> np.ndarray:
    import numpy as np

    if not Path(path).is_file():
        raise UsageError(f"no such input file: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not a .npy array ({exc})") from exc
