"""Run and inspect emitted models: onnxruntime inference and ONNX shape inference (tests and bench)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from cnnspec.compile.onnx.model import Compiled


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


def inferred_shapes(model: onnx.ModelProto, batch_through_resize: bool = False) -> dict[str, tuple[int | str, ...]]:
    """Every value's shape as ONNX shape inference derives it from the graph alone (our ``value_info``
    removed first, strict mode: an op the inference cannot type is an error).

    ONNX's inference gives a Resize output an unknown batch axis (``unk__0``: it keeps only numeric axes),
    and so every value computed from it. ``batch_through_resize`` gives those values the input's batch
    symbol back, only where their batch axis is such an unknown: every other axis is compared as inferred."""
    bare = _skeleton(model)
    inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=True)
    values = [*inferred.graph.value_info, *inferred.graph.output]
    shapes = {v.name: _dims(v) for v in values}
    if batch_through_resize:
        batch, after = _dims(model.graph.input[0])[0], _after_resize(model)
        shapes = {name: (batch, *shape[1:]) if name in after and str(shape[0]).startswith("unk__") else shape
                  for name, shape in shapes.items()}
    return shapes


def _after_resize(model: onnx.ModelProto) -> set[str]:
    """The values computed from a Resize's output (the nodes are in topological order)."""
    after: set[str] = set()
    for node in model.graph.node:
        if node.op_type == "Resize" or after.intersection(node.input):
            after.update(node.output)
    return after


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without ``value_info`` and with its large initializers turned into typed graph inputs:
    the same shapes for inference, without copying the weights."""
    bare = onnx.ModelProto(ir_version=model.ir_version)
    bare.opset_import.extend(model.opset_import)
    g, src = bare.graph, model.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    for tensor in src.initializer:
        if len(tensor.raw_data) <= 4096:
            g.initializer.append(tensor)
        else:
            g.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return bare


def declared_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """The shapes cnnspec wrote into ``value_info`` and the graph output."""
    return {v.name: _dims(v) for v in [*model.graph.value_info, *model.graph.output]}


def _dims(v: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    return tuple(d.dim_param if d.HasField("dim_param") else d.dim_value for d in v.type.tensor_type.shape.dim)


def static_shape_mismatches(compiled: Compiled, batch_through_resize: bool = False) -> list[str]:
    """Every leaf whose ONNX value's inferred shape differs from cnnspec's static output shape (a value
    kept channel-first inside a channels-last region is compared with the static shape's channel-first
    form). Empty when all agree. ``batch_through_resize``: as in ``inferred_shapes``."""
    inferred = inferred_shapes(compiled.model, batch_through_resize)
    batch = _dims(compiled.model.graph.input[0])[0]
    problems = []
    for value, node in compiled.produced:
        if value.name == "input":
            continue
        shape = node.output_shape
        if value.channels_last:
            shape = (shape[-1], *shape[:-1])
        if inferred.get(value.name) != (batch, *shape):
            problems.append(f"{node.path} ({node.op}): ONNX {inferred.get(value.name)}, cnnspec {(batch, *shape)}")
    return problems
