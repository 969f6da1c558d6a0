"""How to write ConvNeXt's channels-last block for onnxruntime: the two layouts the ONNX compiler can emit,
timed interleaved on the CPU provider with one intra-op thread (median ms per batch).

  A  every permute a Transpose; LayerNormalization and MatMul on channels-last (torch.onnx's structure)
  C  permutes deferred; LayerNorm as Transpose + LayerNormalization + Transpose; linears as 1x1 Conv (the default)

Two more variants were measured before and lost to C (docs/onnx-backend.md has their figures): B, LayerNorm as
ReduceMean arithmetic over axis 1, and D, B with linears as Transpose + MatMul + Transpose; they were removed
from the compiler with the module-level switches that selected them.

    PYTHONPATH=. python bench/bench_onnx_layouts.py [--spec specs/convnext_tiny.yaml] [--batches 1 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

from cnnspec.compile.onnx.model import to_model_proto
from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph

VARIANTS = {  # defer permutes
    "A transposes (torch-like)": False,
    "C transposed-LN + conv": True,
}


def session(defer: bool, graph: Graph) -> ort.InferenceSession:
    model = to_model_proto(graph, defer_permutes=defer).SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/convnext_tiny.yaml")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 15 at batch 1, else 5)")
    args = parser.parse_args()
    graph = analyse_file(args.spec)
    sessions = {name: session(v, graph) for name, v in VARIANTS.items()}
    for batch in args.batches:
        x = np.random.default_rng(0).standard_normal((batch, *graph.input_shape)).astype(np.float32)
        outputs = [s.run(None, {"input": x})[0] for s in sessions.values()]
        assert all(np.allclose(o, outputs[0], rtol=1e-3, atol=1e-4) for o in outputs)
        times: dict[str, list[float]] = {name: [] for name in sessions}
        before = loadavg()
        for _ in range(args.rounds or (15 if batch == 1 else 5)):
            for name, s in sessions.items():
                start = time.perf_counter()
                s.run(None, {"input": x})
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times[next(iter(times))])
        print(f"{graph.name}, batch {batch} (load average {before:.2f} -> {loadavg():.2f}):")
        for name, t in times.items():
            m = statistics.median(t)
            print(f"  {name:<28} {m * 1e3:8.2f} ms   {base / m:.2f}x vs A")
    return 0


if __name__ == "__main__":
    sys.exit(main())
