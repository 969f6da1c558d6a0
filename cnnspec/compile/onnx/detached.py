"""Initializers kept out of the ModelProto while a model is built for a file, and written straight into
the file's bytes.

Protobuf copies every ``raw_data`` it is given into its own memory, and serialising a ModelProto copies
it twice more (an encoding buffer, then Python bytes). A build that goes to disk therefore hands the
builder an ``InitializerSink`` instead of the model's graph: the builder's ``graph.initializer.add()``
gets a ``RawTensor`` that keeps the bytes object the builder made, and the file is assembled from the
small rest of the model and those bytes, in exactly the bytes ``SerializeToString(deterministic=True)``
gives for the whole model (the wire format is each field's tag and value in field-number order; the tests
compare both on the zoo). Peak memory is about twice the weights (the kept bytes and the file's buffer),
instead of three to four times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import onnx

GRAPH_FIELD = 7  # ModelProto.graph
INITIALIZER_FIELD = 5  # GraphProto.initializer
RAW_DATA_FIELD = 9  # TensorProto.raw_data
LENGTH_DELIMITED = 2


class RawTensor:
    """The fields the ONNX builder sets on an initializer; ``raw_data`` is the builder's own bytes."""

    __slots__ = ("data_type", "dims", "name", "raw_data")

    def __init__(self) -> None:
        self.name = ""
        self.data_type = 0
        self.dims: list[int] = []
        self.raw_data = b""

    def header(self) -> onnx.TensorProto:
        """The tensor without its data (dims, data_type, name: fields 1, 2 and 8)."""
        return onnx.TensorProto(name=self.name, data_type=self.data_type, dims=self.dims)


class _Initializers(list[RawTensor]):
    def add(self) -> RawTensor:
        tensor = RawTensor()
        self.append(tensor)
        return tensor


class InitializerSink:
    """Stands in for ``GraphProto`` where the builder adds initializers (``graph.initializer.add()``)."""

    def __init__(self) -> None:
        self.initializer = _Initializers()


def attach(graph: onnx.GraphProto, tensors: Iterable[RawTensor]) -> None:
    """Put ``tensors`` into ``graph`` as ordinary initializers (protobuf copies their bytes)."""
    for t in tensors:
        out = graph.initializer.add()
        out.CopyFrom(t.header())
        out.raw_data = t.raw_data


def detach(graph: onnx.GraphProto) -> list[RawTensor]:
    """``graph``'s initializers as RawTensors (each ``raw_data`` read, so copied, once); only for
    initializers that hold nothing but dims, data_type, name and raw_data, as the builder makes them."""
    out = []
    for tensor in graph.initializer:
        if {f.name for f, _ in tensor.ListFields()} - {"dims", "data_type", "name", "raw_data"}:
            raise ValueError(f"initializer {tensor.name} has fields a RawTensor cannot hold")
        raw = RawTensor()
        raw.name, raw.data_type, raw.dims, raw.raw_data = tensor.name, tensor.data_type, list(tensor.dims), tensor.raw_data
        out.append(raw)
    return out


def serialize(model: onnx.ModelProto, tensors: list[RawTensor],
              buffer: Callable[[int], Any] = bytearray) -> Any:
    """The bytes of ``model`` (whose graph has no initializers) with ``tensors`` as its graph's
    initializers, equal to ``SerializeToString(deterministic=True)`` of the model holding them, written
    once into ``buffer(size)``. Each tensor's bytes are released (``raw_data`` emptied) once copied."""
    graph = model.graph
    g_low, g_high = _fields(graph, below=INITIALIZER_FIELD), _fields(graph, above=INITIALIZER_FIELD)
    m_low, m_high = _fields(model, below=GRAPH_FIELD), _fields(model, above=GRAPH_FIELD)
    heads = []
    for t in tensors:
        head = t.header().SerializeToString(deterministic=True) + _tag(RAW_DATA_FIELD) + _varint(len(t.raw_data))
        body = len(head) + len(t.raw_data)
        heads.append(_tag(INITIALIZER_FIELD) + _varint(body) + head)
    graph_len = len(g_low) + len(g_high) + sum(len(h) + len(t.raw_data) for h, t in zip(heads, tensors, strict=True))
    total = len(m_low) + len(m_high) + len(_tag(GRAPH_FIELD) + _varint(graph_len)) + graph_len
    out = buffer(total)
    at = _put(out, 0, m_low + _tag(GRAPH_FIELD) + _varint(graph_len) + g_low)
    for head, t in zip(heads, tensors, strict=True):
        at = _put(out, at, head)
        at = _put(out, at, t.raw_data)
        t.raw_data = b""  # copied: let the builder's bytes go
    at = _put(out, at, g_high + m_high)
    assert at == total
    return out


def _put(out: Any, at: int, piece: bytes) -> int:
    out[at:at + len(piece)] = piece
    return at + len(piece)


def _fields(message: Any, below: int | None = None, above: int | None = None) -> bytes:
    """The serialisation of ``message``'s fields numbered below ``below`` (or above ``above``) only."""
    part = type(message)()
    for field, value in message.ListFields():
        if (below is not None and field.number < below) or (above is not None and field.number > above):
            copy_field(part, field.name, value)
    return part.SerializeToString(deterministic=True)


def copy_field(dst: Any, name: str, value: Any) -> None:
    """Set field ``name`` of protobuf message ``dst`` to ``value`` (from another message's ListFields)."""
    if isinstance(value, str | bytes | int | float):  # a scalar (bool and enums included)
        setattr(dst, name, value)
    elif hasattr(value, "CopyFrom"):  # a message
        getattr(dst, name).CopyFrom(value)
    else:  # a repeated field (protobuf 7 has no FieldDescriptor.label to ask)
        getattr(dst, name).extend(value)


def _tag(field: int) -> bytes:
    return _varint(field << 3 | LENGTH_DELIMITED)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
