"""Assemble the ModelProto: input, emitted nodes, initializers, value_info and metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx
from onnx import helper

from cnnspec._version import __version__
from cnnspec.compile.onnx.builder import Builder, Dim, Value
from cnnspec.compile.onnx.detached import InitializerSink, RawTensor
from cnnspec.compile.onnx.dynamic import input_dims, output_dims, symbolic_axes
from cnnspec.compile.onnx.lower import lower
from cnnspec.compile.onnx.options import DEFAULT_OPSET
from cnnspec.compile.onnx.weights import CheckedWeights, SeededWeights, check_weights
from cnnspec.ir import Graph, Node

BATCH_DIM = "N"
INPUT, OUTPUT = "input", "output"
# ModelProto.model_version: the version of the layout cnnspec writes (input and output names, initializer
# names and layouts, metadata keys). It goes up when a change would break code that reads those.
MODEL_VERSION = 1


@dataclass
class Compiled:
    """The model and, for checks, every leaf's output value (``output`` for the last one)."""

    model: onnx.ModelProto
    produced: list[tuple[Value, Node]]
    # with ``detached``: the initializers, kept out of ``model`` (for ``save.save_detached``)
    initializers: list[RawTensor] | None = None


def to_model_proto(
    graph: Graph,
    weights: Mapping[str, Any] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    fp16: bool = False,
    source: str = "weights",
    defer_permutes: bool = True,
    dynamic_spatial: bool = False,
) -> onnx.ModelProto:
    """The ONNX model for ``graph``. ``weights`` (a state_dict of numpy arrays or torch tensors, or a
    checkpoint's tensors from ``weights.read_checkpoint``; checked against the spec) default to a seeded
    initialisation; ``batch`` fixes the batch dimension, else it is symbolic; ``defer_permutes=False``
    writes every permute as a Transpose (lower.py); ``dynamic_spatial`` keeps the spatial sizes symbolic
    (``dynamic.py``)."""
    return compile_graph(graph, weights, seed, opset, batch, fp16, source, defer_permutes=defer_permutes,
                         dynamic_spatial=dynamic_spatial).model


def compile_graph(
    graph: Graph,
    weights: Mapping[str, Any] | None = None,
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    fp16: bool = False,
    source: str = "weights",
    detached: bool = False,
    defer_permutes: bool = True,
    dynamic_spatial: bool = False,
) -> Compiled:
    """The model and every leaf's value; with ``detached`` the initializers stay out of the ModelProto
    (its graph has none) and come back as ``Compiled.initializers``, to be written by ``save_detached``
    without protobuf's copies of them."""
    dim: Dim = BATCH_DIM if batch is None else check_batch(batch)
    axes = symbolic_axes(graph) if dynamic_spatial else None  # refused before any weight is read
    # read lazily, one tensor at a time: the model being built holds the only full copy of the weights
    lazy = SeededWeights(graph, seed) if weights is None else check_weights(graph, weights, source, fp16)
    model = onnx.ModelProto(producer_name="cnnspec", producer_version=__version__)
    sink = InitializerSink() if detached else model.graph
    b = Builder(lazy, dim, np.float16 if fp16 else np.float32, opset, sink, defer_permutes)  # type: ignore[arg-type]
    x = Value(INPUT, (dim, *graph.input_shape))
    ys = lower(b, graph, x)
    outputs = graph.inference_outputs()
    names = [OUTPUT] if graph.output_form == "one" else [name for name, _ in outputs]
    renamed = {_name_output(b, y, name): name for y, name in zip(ys, names, strict=True)}
    if isinstance(lazy, CheckedWeights):
        lazy.check_unread()
    g = model.graph
    g.name = graph.name
    g.node.extend(b.nodes)
    if axes is None:
        g.input.append(b.tensor_type(INPUT, x.shape))
        g.output.extend(b.tensor_type(name, (dim, *graph.shapes[value])) for name, (_, value) in zip(names, outputs))
        g.value_info.extend(b.tensor_type(name, shape) for name, shape in b.value_info.items())
    else:  # inner shapes are those of the spec's input size: left out
        g.input.append(b.tensor_type(INPUT, (dim, *input_dims(graph))))
        g.output.extend(b.tensor_type(name, (dim, *output_dims(graph, axes, value, "out" if name == OUTPUT else name)))
                        for name, (_, value) in zip(names, outputs))
    opsets = [helper.make_opsetid("", opset)]
    model.opset_import.extend(opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.model_version = MODEL_VERSION
    model.doc_string = f"{graph.name}: {graph.description}" if graph.description else graph.name
    helper.set_model_props(model, _metadata(graph, fp16))
    produced = [(replace(v, name=renamed[v.name]) if v.name in renamed else v, n) for v, n in b.produced]
    return Compiled(model, produced, sink.initializer if isinstance(sink, InitializerSink) else None)


def check_batch(batch: object) -> int:
    """A fixed batch size: a positive integer (``None``, not this, asks for a symbolic batch dimension)."""
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer):
        raise TypeError(f"batch must be a positive integer (a fixed batch size) or None (a symbolic batch "
                        f"dimension), got {type(batch).__name__}")
    if batch < 1:
        raise ValueError(f"batch must be a positive integer (a fixed batch size) or None (a symbolic batch "
                         f"dimension), got {batch}: a model needs at least one item per batch")
    return int(batch)


def _name_output(b: Builder, y: Value, name: str = OUTPUT) -> str:
    """Call an output value ``name`` (``output``, or the spec's output name; an Identity when it is the input
    itself); returns its old name."""
    if y.name == INPUT:
        b.nodes.append(helper.make_node("Identity", [INPUT], [name], name=name))
        return name
    producer = next(n for n in reversed(b.nodes) if y.name in n.output)
    for node in b.nodes:  # a fused last op may feed nothing else, but rename every use to be safe
        for i, used in enumerate(node.input):
            if used == y.name:
                node.input[i] = name
    producer.output[list(producer.output).index(y.name)] = name
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
        **({} if graph.output_form == "one" else
           {"cnnspec.outputs": json.dumps({name: list(graph.shapes[v]) for name, v in graph.inference_outputs()})}),
        "cnnspec.params": str(root.total_params),
        "cnnspec.macs": str(root.total_macs),
        "cnnspec.dtype": "float16" if fp16 else "float32",
    }
    return dict(sorted(props.items()))
