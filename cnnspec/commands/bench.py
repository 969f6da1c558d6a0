"""``cnnspec bench MODEL.onnx|SPEC``: onnxruntime inference speed (warm-up, timed runs, median)."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from cnnspec import console
from cnnspec.commands.run import add_model_options, load, model_input
from cnnspec.errors import UsageError

THREADS_PER_CORE = 4  # --threads is capped at this many per core


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cnnspec.compile import limits

    p = sub.add_parser("bench", help="measure onnxruntime inference speed of an ONNX model or a spec",
                       description="Time onnxruntime inference: warm-up runs, then timed runs; prints the "
                       "median latency and images/s and the execution provider that actually ran.")
    p.add_argument("model", help="an .onnx file or a spec (.yaml), compiled with random weights or --weights")
    add_model_options(p)
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="batch size (default: the model's fixed batch, else 1)")
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                   help="execution provider: auto prefers CUDA and falls back to the CPU (default auto)")
    p.add_argument("--runs", type=int, default=30, metavar="N", help="timed runs (default 30)")
    p.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed warm-up runs (default 5)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help=f"onnxruntime intra-op threads, at most {THREADS_PER_CORE} per core (default: onnxruntime's "
                   "choice, one per core)")
    limits.add_option(p)
    limits.add_input_option(p)


def max_threads() -> int:
    return (os.cpu_count() or 1) * THREADS_PER_CORE


def run(args: argparse.Namespace) -> int:
    from cnnspec.compile.limits import input_limit
    from cnnspec.compile.onnx.runtime import feeds_for, gpu_name, open_session, runner

    if ((args.batch is not None and args.batch < 1) or args.runs < 1 or args.warmup < 0
            or (args.threads is not None and args.threads < 1)):
        raise UsageError("--batch, --runs and --threads must be at least 1, --warmup at least 0")
    if args.threads is not None and args.threads > max_threads():
        raise UsageError(f"--threads is at most {max_threads()} on this machine ({THREADS_PER_CORE} per core, "
                         f"{os.cpu_count() or 1} cores), got {args.threads}")
    _, npy = model_input(args)
    model = load(args)
    s = open_session(model, args.provider, args.threads)
    if s.note:
        console.note(s.note)
    feed = feeds_for(s, npy, args.batch, 0, input_limit(args.max_input_bytes))
    infer = runner(s)
    progress = _progress(args.warmup + args.runs)
    for i in range(args.warmup):
        infer(feed)
        progress(i + 1, "warming up")
    times = []
    for i in range(args.runs):
        start = time.perf_counter()
        infer(feed)
        times.append(time.perf_counter() - start)
        progress(args.warmup + i + 1, "timing")
    progress(0, "")
    batch = next((x.shape[0] for x in feed.values() if x.ndim), 1)
    _report(model.label, s.provider, args, batch, times, gpu_name() if s.provider.startswith("CUDA") else None)
    return 0


def _report(label: str, provider: str, args: argparse.Namespace, batch: int, times: list[float],
            gpu: str | None) -> None:
    from cnnspec.errors import one_line

    median = statistics.median(times)
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else [median] * 9
    threads = args.threads or "onnxruntime default"
    print(f"model:    {one_line(label)}")
    print(f"provider: {provider}" + (f" ({gpu})" if gpu else "") + f", intra-op threads: {threads}")
    print(f"batch {batch}: median {median * 1e3:.2f} ms (p10 {deciles[0] * 1e3:.2f}, "
          f"p90 {deciles[-1] * 1e3:.2f}) over {len(times)} runs after {args.warmup} warm-up runs")
    print(f"throughput: {batch / median:.1f} images/s" if median > 0 else "throughput: too fast to measure")
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
