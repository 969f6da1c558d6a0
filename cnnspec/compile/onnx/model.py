"""Assemble the ModelProto: input, emitted nodes, initializers, value_info and metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import helper

from cnnspec._version import __version__
from cnnspec.compile.onnx.builder import Builder, Dim, Value
from cnnspec.compile.onnx.lower import lower
from cnnspec.compile.onnx.options import DEFAULT_OPSET
from cnnspec.compile.onnx.weights import check_weights, init_weights
from cnnspec.ir import Graph, Node

BATCH_DIM = "N"
INPUT, OUTPUT = "input", "output"


@dataclass
class Compiled:
    """The model and, for checks, every leaf's output value (``output`` for the last one)."""

    model: onnx.ModelProto
    produced: list[tuple[Value, Node]]


def to_model_proto(
    graph: Graph,
    weights: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    fp16: bool = False,
    source: str = "weights",
    defer_permutes: bool = True,
) -> onnx.ModelProto:
    """The ONNX model for ``graph``. ``weights`` (a state_dict as numpy arrays, checked against the spec)
    default to a seeded initialisation; ``batch`` fixes the batch dimension, else it is symbolic;
    ``defer_permutes=False`` writes every permute as a Transpose (lower.py)."""
    return compile_graph(graph, weights, seed, opset, batch, fp16, source, defer_permutes).model


def compile_graph(
    graph: Graph,
    weights: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    fp16: bool = False,
    source: str = "weights",
    defer_permutes: bool = True,
) -> Compiled:
    weights = init_weights(graph, seed) if weights is None else check_weights(graph, weights, source)
    dim: Dim = BATCH_DIM if batch is None else int(batch)
    model = onnx.ModelProto(producer_name="cnnspec", producer_version=__version__)
    b = Builder(weights, dim, np.float16 if fp16 else np.float32, opset, model.graph, defer_permutes)
    x = Value(INPUT, (dim, *graph.input_shape))
    y = lower(b, graph, x)[0]
    final = _name_output(b, y)
    g = b.graph
    g.name = graph.name
    g.node.extend(b.nodes)
    g.input.append(b.tensor_type(INPUT, x.shape))
    g.output.append(b.tensor_type(OUTPUT, (dim, *graph.output_shape)))
    g.value_info.extend(b.tensor_type(name, shape) for name, shape in b.value_info.items())
    opsets = [helper.make_opsetid("", opset)]
    model.opset_import.extend(opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.doc_string = graph.description
    helper.set_model_props(model, _metadata(graph, fp16))
    produced = [(replace(v, name=OUTPUT) if v.name == final else v, n) for v, n in b.produced]
    return Compiled(model, produced)


def _name_output(b: Builder, y: Value) -> str:
    """Call the last value ``output`` (an Identity when the model is the identity); returns its old name."""
    if y.name == INPUT:
        b.nodes.append(helper.make_node("Identity", [INPUT], [OUTPUT], name=OUTPUT))
        return OUTPUT
    producer = next(n for n in reversed(b.nodes) if y.name in n.output)
    for node in b.nodes:  # a fused last op may feed nothing else, but rename every use to be safe
        for i, name in enumerate(node.input):
            if name == y.name:
                node.input[i] = OUTPUT
    producer.output[list(producer.output).index(y.name)] = OUTPUT
    del b.value_info[y.name]
    return y.name


def _metadata(graph: Graph, fp16: bool) -> dict[str, str]:
    root = graph.root
    props = {
        "cnnspec.version": __version__,
        "cnnspec.spec": graph.name,
        "cnnspec.spec_hash": graph.spec_hash,
        "cnnspec.input_shape": json.dumps(list(graph.input_shape)),
        "cnnspec.output_shape": json.dumps(list(graph.output_shape)),
        "cnnspec.params": str(root.total_params),
        "cnnspec.macs": str(root.total_macs),
        "cnnspec.dtype": "float16" if fp16 else "float32",
    }
    return dict(sorted(props.items()))
