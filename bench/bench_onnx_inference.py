"""onnxruntime CPU inference: cnnspec's ONNX graph vs torch.onnx.export's graph (dynamo) of the same torch
module vs torch eager, per model and batch size, interleaved in one run.

Every contender gets one intra-op thread (onnxruntime ``intra_op_num_threads=1``, ``torch.set_num_threads(1)``)
so that the other processes on a shared machine disturb the comparison as little as possible; the load
average is recorded around each case. Prints median ms per batch, images/s and the ratios.

    PYTHONPATH=. python bench/bench_onnx_inference.py [--models resnet18 convnext_tiny] [--batches 1 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cnnspec.compile.onnx import to_model_proto
from cnnspec.compile.onnx.weights import state_dict_to_numpy
from cnnspec.compile.torch import build_module
from cnnspec.frontend import analyse_file


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def ort_session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def torch_export(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """torch.onnx.export (dynamo) with a dynamic batch (example batch 2: torch specialises 1)."""
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, *shape),), str(path), dynamo=True, dynamic_shapes=({0: batch},),
                          verbose=False)
    return path


def time_interleaved(runners: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call; each round calls every runner once, in turn."""
    for run in runners.values():
        run()
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_model(spec: str, batches: list[int], rounds: dict[int, int], tmp: Path) -> None:
    graph = analyse_file(f"specs/{spec}.yaml")
    torch.manual_seed(0)
    module = build_module(graph).eval()
    ours = ort_session(to_model_proto(graph, state_dict_to_numpy(module.state_dict())).SerializeToString())
    theirs = ort_session(str(torch_export(module, graph.input_shape, tmp / f"{spec}_torch.onnx")))
    for batch in batches:
        x = np.random.default_rng(batch).standard_normal((batch, *graph.input_shape)).astype(np.float32)
        xt = torch.from_numpy(x)
        a, b = ours.run(None, {"input": x})[0], theirs.run(None, {theirs.get_inputs()[0].name: x})[0]
        assert np.allclose(a, b, rtol=1e-3, atol=1e-4), "the two graphs disagree"
        runners = {
            "cnnspec ONNX": lambda x=x: ours.run(None, {"input": x}),
            "torch.onnx ONNX": lambda x=x: theirs.run(None, {theirs.get_inputs()[0].name: x}),
            "torch eager": lambda xt=xt: _eager(module, xt),
        }
        before = loadavg()
        medians = time_interleaved(runners, rounds.get(batch, 5))
        after = loadavg()
        _print_case(spec, batch, medians, before, after)


def _eager(module: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        module(x)


def _print_case(spec: str, batch: int, medians: dict[str, float], before: float, after: float) -> None:
    ours = medians["cnnspec ONNX"]
    print(f"\n{spec}, batch {batch} (1-min load average {before:.2f} -> {after:.2f}; this benchmark adds 1)")
    for name, t in medians.items():
        ratio = "" if name == "cnnspec ONNX" else f"   cnnspec is {t / ours:.2f}x faster"
        print(f"  {name:<16} {t * 1e3:8.2f} ms  {batch / t:8.1f} images/s{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "convnext_tiny"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 15 at batch 1, else 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = {b: args.rounds or (15 if b == 1 else 5) for b in args.batches}
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, one intra-op thread each, "
          f"{len(__import__('os').sched_getaffinity(0))} cores, load average {loadavg():.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models:
            bench_model(spec, args.batches, rounds, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
