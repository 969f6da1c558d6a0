"""Lower the analysed graph to ONNX nodes: every active node, in execution order, through its op's
``onnx`` hook (``cnnspec.ops``), which sees the backend only through :class:`Context`.

Channels-last regions are emitted without their permutes: a ``permute`` to channels-last (ConvNeXt's
``[0, 2, 3, 1]``) only marks the value, the ops that follow work on the physical channel-first tensor
(a layernorm over the last axis becomes one over axis 1, a linear over the last axis a 1x1 Conv,
activations are unchanged), and the permute back is a no-op. Any other op first gets a real Transpose
(``Op.takes_channels_last``). onnxruntime's CPU kernels are channel-first, so this removes every
Transpose from such blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.errors import SpecError
from cnnspec.ir import Graph, Node, Shape
from cnnspec.ops import REGISTRY
from cnnspec.ops.base import OnnxValue


def _own(value: OnnxValue) -> Value:
    """A value of the builder: an op's lowering hands back only the values its context gave it."""
    if not isinstance(value, Value):
        raise TypeError(f"{value!r} is not a value of the ONNX builder: a lowering passes on only its context's")
    return value


class Context:
    """One node's view of the builder (the ``OnnxContext`` of ``cnnspec.ops.base``)."""

    def __init__(self, b: Builder, node: Node, inputs: list[Value]) -> None:
        self.b = b
        self.node = node
        self.inputs = inputs
        self.opset = b.opset
        self.defer_permutes = b.defer_permutes
        self.output_shapes: list[Shape] = list(node.output_shapes)
        # an add or concat the spec wrote as a structure is named after its scope: ``layer1.0/add``
        self.base = node.path if node.name else (f"{node.path}/{node.op}" if node.path else node.op)

    def op(self, op_type: str, inputs: Sequence[str], shape: Sequence[Any], suffix: str | None = None,
           **attrs: Any) -> Value:
        base = self.base if suffix is None else f"{self.base}/{suffix}"
        return self.b.raw_op(base, op_type, inputs, shape, **attrs)

    def param(self, key: str, shape: Sequence[int] | None = None, transpose: bool = False) -> str:
        return self.b.param(self.node, key, shape, transpose)

    def const(self, name: str, values: Any, integer: bool = False) -> str:
        if integer:
            return self.b.ints(f"{self.node.path}/{name}", values)
        return self.b.const(f"{self.node.path}/{name}", values)

    def out_shape(self, channels_last: bool = False) -> tuple[Any, ...]:
        return self.b.out_shape(self.node, channels_last)

    def materialize(self, value: OnnxValue) -> Value:
        return self.b.materialize(_own(value))

    def relabel(self, value: OnnxValue, channels_last: bool, origin: OnnxValue | None = None) -> Value:
        if not channels_last:
            return Value(value.name, value.shape)
        return replace(_own(value), channels_last=True,
                       origin=_own(origin).origin if origin is not None else self.node.path)

    def fail(self, message: str) -> Exception:
        return SpecError(f"layer `{self.node.path}`: {message}", self.node.pos)


def lower(b: Builder, graph: Graph, x: Value) -> list[Value]:
    """Emit every node of ``graph`` that runs at inference on input ``x``; returns the graph's inference
    outputs, materialized (``training_only`` layers are left out: an auxiliary classifier)."""
    values: dict[int, Value] = {graph.inputs[0]: x}
    for node in graph.nodes:
        if not node.active or node.training_only:
            continue
        op = REGISTRY[node.op]
        inputs = [values[v] for v in node.inputs]
        if not op.takes_channels_last(node.attrs):
            inputs = [b.materialize(v) for v in inputs]
        y = _own(op.onnx(node.attrs, Context(b, node, inputs)))
        if op.traits.elementwise:  # keeps its input's layout
            y = replace(y, channels_last=inputs[0].channels_last, origin=inputs[0].origin)
        b.produced.append((y, node))
        values[node.outputs[0]] = y
    return [b.materialize(values[v]) for _, v in graph.inference_outputs()]
