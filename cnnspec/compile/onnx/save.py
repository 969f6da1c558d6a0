"""Write a model deterministically and atomically; tensors go to a side file past protobuf's 2 GB.

A build hands over the model without its initializers and the initializers' bytes (``detached.py``).
The file's bytes are assembled in an anonymous memory map, which takes memory only as it is filled, and
each tensor's bytes are let go as soon as they are copied, so saving needs about one copy of the weights
at any time (plus the largest tensor), not the three or four that serialising a whole ModelProto takes.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import onnx

from cnnspec.compile.onnx.detached import RawTensor, copy_field, detach, serialize
from cnnspec.fsutil import write_atomic

PROTOBUF_LIMIT = 2**31 - 2**26  # 2 GiB less a margin for the graph itself
EXTERNAL_MIN_BYTES = 1024  # small tensors stay inline even in an external-data model
ALIGN = 4096


def save_model(model: onnx.ModelProto, path: str | Path, external: bool | None = None) -> list[Path]:
    """Write ``model`` to ``path``; with ``external`` (default: when it would pass 2 GB) the large tensors
    go to ``<path>.data`` next to it. Returns the files written. ``model`` is not changed."""
    bare = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            copy_field(bare, field.name, value)
    for field, value in model.graph.ListFields():
        if field.name != "initializer":
            copy_field(bare.graph, field.name, value)
    return save_detached(bare, detach(model.graph), path, external)


def save_detached(model: onnx.ModelProto, tensors: list[RawTensor], path: str | Path,
                  external: bool | None = None) -> list[Path]:
    """``save_model`` for a model whose graph has no initializers and the initializers beside it (their
    bytes are released as they are written, and ``model`` gets the initializers of the file it is)."""
    target = Path(path)
    if external is None:
        external = sum(len(t.raw_data) for t in tensors) > PROTOBUF_LIMIT
    if not external:
        return [write_atomic(target, serialize(model, tensors, buffer=anonymous))]
    data_path = target.with_name(target.name + ".data")
    blob = _externalise(model.graph, tensors, data_path.name)
    written = [write_atomic(data_path, blob)]
    del blob
    written.insert(0, write_atomic(target, model.SerializeToString(deterministic=True)))
    return written


def anonymous(size: int) -> mmap.mmap | bytearray:
    """A zeroed writable buffer whose pages take memory only once written (an anonymous map)."""
    return mmap.mmap(-1, size) if size else bytearray()


def _externalise(graph: onnx.GraphProto, tensors: list[RawTensor], location: str) -> mmap.mmap | bytearray:
    """Give ``graph`` the initializers, those of ``EXTERNAL_MIN_BYTES`` or more referring by offset and
    length into one blob (each starting at a multiple of ``ALIGN``), and return that blob."""
    offsets: dict[int, int] = {}
    end = 0
    for i, t in enumerate(tensors):
        if len(t.raw_data) >= EXTERNAL_MIN_BYTES:
            offsets[i] = end + (-end) % ALIGN
            end = offsets[i] + len(t.raw_data)
    blob = anonymous(end)
    for i, t in enumerate(tensors):
        out = graph.initializer.add()
        out.CopyFrom(t.header())
        if i not in offsets:
            out.raw_data = t.raw_data
            continue
        size = len(t.raw_data)
        blob[offsets[i]:offsets[i] + size] = t.raw_data
        t.raw_data = b""  # written: let the bytes go
        out.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offsets[i]), ("length", size)):
            entry = out.external_data.add()
            entry.key, entry.value = key, str(value)
    return blob
