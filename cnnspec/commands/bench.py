"""``cnnspec bench MODEL.onnx|SPEC``: onnxruntime inference speed (warm-up, timed runs, median)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from cnnspec import console
from cnnspec.commands.common import parse_overrides
from cnnspec.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cnnspec.compile import limits

    p = sub.add_parser("bench", help="measure onnxruntime inference speed of an ONNX model or a spec",
                       description="Time onnxruntime inference: warm-up runs, then timed runs; prints the "
                       "median latency and images/s and the execution provider that actually ran.")
    p.add_argument("model", help="an .onnx file or a spec (.yaml), compiled with random weights")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                   help="execution provider: auto prefers CUDA and falls back to the CPU (default auto)")
    p.add_argument("--runs", type=int, default=30, metavar="N", help="timed runs (default 30)")
    p.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed warm-up runs (default 5)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="onnxruntime intra-op threads (default: onnxruntime's choice, one per core)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec parameter (specs only)")
    limits.add_option(p)


def run(args: argparse.Namespace) -> int:
    from cnnspec.compile.onnx.runtime import gpu_name, load_model, make_input, open_session

    if args.batch < 1 or args.runs < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        raise UsageError("--batch, --runs and --threads must be at least 1, --warmup at least 0")
    model = load_model(args.model, parse_overrides(args.overrides), max_bytes=args.max_bytes)
    s = open_session(model, args.provider, args.threads)
    if s.note:
        console.note(s.note)
    x = make_input(s.session, args.batch)
    feed = {s.session.get_inputs()[0].name: x}
    progress = _progress(args.warmup + args.runs)
    for i in range(args.warmup):
        s.session.run(None, feed)
        progress(i + 1, "warming up")
    times = []
    for i in range(args.runs):
        start = time.perf_counter()
        s.session.run(None, feed)
        times.append(time.perf_counter() - start)
        progress(args.warmup + i + 1, "timing")
    progress(0, "")
    _report(model.label, s.provider, args, times, gpu_name() if s.provider.startswith("CUDA") else None)
    return 0


def _report(label: str, provider: str, args: argparse.Namespace, times: list[float], gpu: str | None) -> None:
    median = statistics.median(times)
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else [median] * 9
    threads = args.threads or "onnxruntime default"
    print(f"model:    {label}")
    print(f"provider: {provider}" + (f" ({gpu})" if gpu else "") + f", intra-op threads: {threads}")
    print(f"batch {args.batch}: median {median * 1e3:.2f} ms (p10 {deciles[0] * 1e3:.2f}, "
          f"p90 {deciles[-1] * 1e3:.2f}) over {len(times)} runs after {args.warmup} warm-up runs")
    print(f"throughput: {args.batch / median:.1f} images/s")
    print(f"load average while timing: {_loadavg()}")


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


def _progress(total: int) -> Callable[[int, str], None]:
    """A one-line progress display on stderr when it is a terminal and the runs last over a second."""
    return console.counter(total)
