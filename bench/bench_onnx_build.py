"""Build time, whole process from spec to .onnx file with random weights: cnnspec's ONNX compiler vs
torch.onnx.export (dynamo, through onnxscript) of the PyTorch compiler's module for the same spec.

Each contender is a fresh Python process (imports included), run alternately; prints medians and the ratio.

    PYTHONPATH=. python bench/bench_onnx_build.py [--models resnet18 resnet50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CNNSPEC = """
import sys
from cnnspec.compile.onnx import export
from cnnspec.frontend import analyse_file
export(analyse_file(sys.argv[1]), sys.argv[2])
"""

TORCH = """
import sys, warnings
import torch
from cnnspec.compile.torch import build_module
from cnnspec.frontend import analyse_file
warnings.simplefilter("ignore")
graph = analyse_file(sys.argv[1])
module = build_module(graph).eval()
x = torch.randn(2, *graph.input_shape)  # batch 2: torch.export specialises a batch of 1
torch.onnx.export(module, (x,), sys.argv[2], dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},),
                  verbose=False)
"""


def run(script: str, spec: str, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, spec, str(out)], check=True, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    written = list(out.parent.glob(out.name + "*"))  # torch writes its weights to <out>.data
    assert sum(f.stat().st_size for f in written) > 1_000_000
    for f in written:
        f.unlink()
    return elapsed


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            spec = f"specs/{name}.yaml"
            times: dict[str, list[float]] = {"cnnspec": [], "torch.onnx.export": []}
            before = loadavg()
            for _ in range(args.rounds):
                times["cnnspec"].append(run(CNNSPEC, spec, Path(tmp) / "a.onnx"))
                times["torch.onnx.export"].append(run(TORCH, spec, Path(tmp) / "b.onnx"))
            ours, theirs = (statistics.median(t) for t in times.values())
            print(f"{name}: cnnspec {ours:.2f} s, torch.onnx.export (dynamo) {theirs:.2f} s -> cnnspec is "
                  f"{theirs / ours:.1f}x faster (median of {args.rounds}, whole process; "
                  f"load average {before:.2f} -> {loadavg():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
