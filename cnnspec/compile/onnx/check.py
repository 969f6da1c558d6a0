"""Run and inspect emitted models: onnxruntime inference and ONNX shape inference (tests and bench)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx


def run_model(model: onnx.ModelProto | bytes | str | Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """The model's output for input ``x`` on onnxruntime's CPU provider."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(str(src) if isinstance(src, Path) else src, opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """Every value's shape as ONNX shape inference derives it from the graph alone (our ``value_info``
    removed first, strict mode: an op the inference cannot type is an error)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=True)
    values = [*inferred.graph.value_info, *inferred.graph.output]
    return {v.name: _dims(v) for v in values}


def declared_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """The shapes cnnspec wrote into ``value_info`` and the graph output."""
    return {v.name: _dims(v) for v in [*model.graph.value_info, *model.graph.output]}


def _dims(v: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    return tuple(d.dim_param if d.HasField("dim_param") else d.dim_value for d in v.type.tensor_type.shape.dim)
