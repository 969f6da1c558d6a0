"""Write a ModelProto deterministically and atomically; tensors go to a side file past protobuf's 2 GB."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import set_external_data

from cnnspec.fsutil import write_atomic

PROTOBUF_LIMIT = 2**31 - 2**26  # 2 GiB less a margin for the graph itself
EXTERNAL_MIN_BYTES = 1024  # small tensors stay inline even in an external-data model
ALIGN = 4096


def save_model(model: onnx.ModelProto, path: str | Path, external: bool | None = None) -> list[Path]:
    """Write ``model`` to ``path``; with ``external`` (default: when it would pass 2 GB) the large tensors
    go to ``<path>.data`` next to it. Returns the files written."""
    target = Path(path)
    if external is None:
        external = sum(len(t.raw_data) for t in model.graph.initializer) > PROTOBUF_LIMIT
    if not external:
        return [write_atomic(target, model.SerializeToString(deterministic=True))]
    model = _copy(model)
    data_path = target.with_name(target.name + ".data")
    blob = _externalise(model, data_path.name)
    written = [write_atomic(data_path, blob)]
    written.insert(0, write_atomic(target, model.SerializeToString(deterministic=True)))
    return written


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _externalise(model: onnx.ModelProto, location: str) -> bytes:
    """Move every large initializer's bytes into one aligned blob referenced by offset and length."""
    chunks: list[bytes] = []
    offset = 0
    for tensor in model.graph.initializer:
        raw = tensor.raw_data
        if len(raw) < EXTERNAL_MIN_BYTES:
            continue
        pad = (-offset) % ALIGN
        chunks.append(b"\0" * pad)
        offset += pad
        set_external_data(tensor, location, offset=offset, length=len(raw))
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        chunks.append(raw)
        offset += len(raw)
    return b"".join(chunks)
