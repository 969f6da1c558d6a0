"""Elementwise activations, softmax, and the layers that are identities at inference."""

from __future__ import annotations

import math

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.graph import Node


def _unary(op_type: str):
    def emit(b: Builder, node: Node, x: Value) -> Value:
        return b.op(node, op_type, [x.name], x.shape)

    emit.__name__ = f"emit_{op_type.lower()}"
    return emit


def emit_leaky_relu(b: Builder, node: Node, x: Value) -> Value:
    return b.op(node, "LeakyRelu", [x.name], x.shape, alpha=float(node.attrs.get("slope", 0.01)))


def emit_silu(b: Builder, node: Node, x: Value) -> Value:
    """x * sigmoid(x): onnxruntime fuses the pair into one kernel."""
    s = b.op(node, "Sigmoid", [x.name], x.shape, suffix="Sigmoid")
    return b.op(node, "Mul", [x.name, s.name], x.shape)


def emit_gelu(b: Builder, node: Node, x: Value) -> Value:
    approximate = node.attrs.get("approximate", "none")
    if b.opset >= 20:
        return b.op(node, "Gelu", [x.name], x.shape, approximate=approximate)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.op(node, "Pow", [x.name, b.const(f"{node.path}/three", 3.0)], x.shape, suffix="Pow")
        inner = b.op(node, "Mul", [cube.name, b.const(f"{node.path}/c", 0.044715)], x.shape, suffix="Mul")
        inner = b.op(node, "Add", [x.name, inner.name], x.shape, suffix="Add")
        inner = b.op(node, "Mul", [inner.name, b.const(f"{node.path}/k", math.sqrt(2 / math.pi))], x.shape,
                     suffix="Scale")
        t = b.op(node, "Tanh", [inner.name], x.shape, suffix="Tanh")
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        scaled = b.op(node, "Div", [x.name, b.const(f"{node.path}/sqrt2", math.sqrt(2))], x.shape, suffix="Div")
        t = b.op(node, "Erf", [scaled.name], x.shape, suffix="Erf")
    one = b.op(node, "Add", [t.name, b.const(f"{node.path}/one", 1.0)], x.shape, suffix="AddOne")
    half = b.op(node, "Mul", [x.name, b.const(f"{node.path}/half", 0.5)], x.shape, suffix="Half")
    return b.op(node, "Mul", [half.name, one.name], x.shape)


def emit_softmax(b: Builder, node: Node, x: Value) -> Value:
    axis = int(node.attrs["axis"]) + 1 if "axis" in node.attrs else (1 if node.attrs["over"] == "channels" else -1)
    return b.op(node, "Softmax", [x.name], x.shape, axis=axis)


def emit_passthrough(b: Builder, node: Node, x: Value) -> Value:
    """identity, dropout and stochastic depth do nothing at inference: no node is emitted."""
    return x


EMITTERS = {
    "relu": _unary("Relu"),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "leaky_relu": emit_leaky_relu,
    "silu": emit_silu,
    "gelu": emit_gelu,
    "softmax": emit_softmax,
    "identity": emit_passthrough,
    "dropout": emit_passthrough,
    "stochastic_depth": emit_passthrough,
}
