"""The graph under construction: nodes, initializers and every value's shape.

Ops' lowerings (``cnnspec.ops``, through ``lower.Context``) add ONNX nodes with :meth:`Builder.raw_op`. A node's name and its output
tensor's name are the spec's dotted path (``layer1.0.conv1``), or ``path/Suffix`` for the helper nodes
one layer needs (``layer1.0.conv1/Pad``); a path used twice (torchvision's shared ``relu``) gets ``#2``,
``#3``, and so does an output whose name an initializer holds (ConvNeXt's ``layer_scale`` is both a
parameter and a layer; the node keeps the plain name). Every output's shape goes into ``value_info`` so
that Netron shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from cnnspec.ir import Node

Dim = int | str  # the batch dimension is symbolic ("N") unless --batch fixes it
OnnxShape = tuple[Dim, ...]


@dataclass(frozen=True)
class Value:
    """A tensor in the graph being built, with its physical shape (batch first).

    ``channels_last`` marks a value whose spec-level (logical) tensor is the physical one with the channel
    axis moved last: a ``permute`` to channels-last that was not emitted (see ``emit.py``). ``origin`` is
    that permute's path, which names the Transpose if one must be emitted after all."""

    name: str
    shape: OnnxShape
    channels_last: bool = False
    origin: str = ""


class Builder:
    """Collects nodes, initializers and value shapes; emitters only ever talk to this class."""

    def __init__(self, weights: dict[str, np.ndarray], batch: Dim, dtype: Any, opset: int,
                 graph: onnx.GraphProto | None = None, defer_permutes: bool = True) -> None:
        self.weights = weights
        self.opset = opset
        self.batch = batch
        self.dtype = np.dtype(dtype)
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[onnx.NodeProto] = []
        # initializers are written straight into the model's graph: large weights are never copied
        self.graph = graph if graph is not None else onnx.GraphProto()
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.value_info: dict[str, OnnxShape] = {}
        self.produced: list[tuple[Value, Node]] = []  # every leaf's output value, for shape checks
        # emit channels-last regions without their permutes (lower.py); False writes every permute as a
        # Transpose, as torch.onnx does (bench/bench_onnx_layouts.py measures the difference)
        self.defer_permutes = defer_permutes
        self._taken: dict[str, int] = {}  # tensor names (initializers and node outputs)
        self._node_names: dict[str, int] = {}

    # names -------------------------------------------------------------------------------------------
    def unique(self, name: str, taken: dict[str, int] | None = None) -> str:
        """``name``, or ``name#2``, ``name#3``... when it is already used (tensor names by default)."""
        taken = self._taken if taken is None else taken
        count = taken.get(name, 0) + 1
        taken[name] = count
        return name if count == 1 else f"{name}#{count}"

    # tensors -----------------------------------------------------------------------------------------
    def param(self, node: Node, key: str, shape: Sequence[int] | None = None, transpose: bool = False) -> str:
        """The initializer holding ``node``'s tensor ``key``, named by its state_dict key. ``transpose``
        stores a matrix transposed (MatMul's layout) and ``shape`` a broadcastable view such as
        ``(C, 1, 1)``; the values are those of the state_dict either way."""
        name = f"{node.path}.{key}" if key else node.path
        if name not in self.initializers:
            array = np.asarray(self.weights[name], dtype=self.dtype)
            if transpose:
                array = np.ascontiguousarray(array.T)
            if shape is not None:
                array = array.reshape(tuple(shape))
            self._initializer(name, array)
            self._taken.setdefault(name, 1)  # a node output never shadows an initializer
        return name

    def const(self, name: str, array: np.ndarray | Sequence[Any], dtype: Any = None) -> str:
        """A helper constant (pads, axes, shapes: int64; scalars: the model's float type)."""
        arr = np.asarray(array, dtype=dtype if dtype is not None else self.dtype)
        name = self.unique(name)
        self._initializer(name, arr)
        return name

    def _initializer(self, name: str, array: np.ndarray) -> None:
        tensor = self.graph.initializer.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        self.initializers[name] = tensor

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.const(name, list(values), dtype=np.int64)

    # nodes -------------------------------------------------------------------------------------------
    def raw_op(self, base: str, op_type: str, inputs: Sequence[str], shape: Sequence[Dim], **attrs: Any) -> Value:
        name = self.unique(base)
        node_name = self.unique(base, self._node_names)
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=node_name, **attrs))
        self.value_info[name] = tuple(shape)
        return Value(name, tuple(shape))

    def materialize(self, x: Value) -> Value:
        """``x`` in its logical layout: the deferred Transpose to channels-last, if any, is emitted."""
        if not x.channels_last:
            return x
        perm = [0, *range(2, len(x.shape)), 1]
        return self.raw_op(x.origin, "Transpose", [x.name], tuple(x.shape[i] for i in perm), perm=perm)

    def out_shape(self, node: Node, channels_last: bool = False) -> OnnxShape:
        """``node``'s static output shape with the batch dimension in front; with ``channels_last`` the
        physical (channel-first) shape of a logically channels-last output."""
        shape = node.output_shape
        if channels_last:
            shape = (shape[-1], *shape[:-1])
        return (self.batch, *shape)

    def tensor_type(self, name: str, shape: OnnxShape) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, self.elem_type, list(shape))

