"""Read a ``.pt``/``.pth`` checkpoint without trusting it, in two passes (torch is imported here only).

1. ``torch.load(weights_only=True, map_location="meta")`` reads only the pickle: names, shapes, dtypes and
   layouts, no tensor data. The caller compares them with the spec, so a 2 MB file whose deflated record
   claims 500 million zeros, or a stride-0 view of 10^12 elements, is refused having allocated nothing.
2. When the first value is asked for, ``torch.load(weights_only=True, mmap=True)`` maps the file, and each
   tensor is converted alone when the ONNX builder asks for it.

What the zip archive holds is checked against what the pickle says before either pass: records other than
tensor data are at most 64 MiB, and each tensor's data record is stored uncompressed (``torch.save`` never
compresses; a compressed record cannot be mapped) and is as long as the pickle says. The legacy format
(PyTorch < 1.6, not a zip) cannot be mapped and is read whole, so it is accepted only up to a size the spec
could need (``budget``).
"""

from __future__ import annotations

import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.compile.onnx.errors import CheckpointError, quote
from cnnspec.compile.onnx.tensors import StoredTensor, describe_torch, torch_layout, torch_values

MAX_RECORD = 64 * 2**20  # the pickle and other small records of a zip checkpoint
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def read_torch(path: Path, budget: int | None = None) -> dict[str, StoredTensor]:
    """Every tensor of the checkpoint's state_dict, described from its pickle; values are read on demand.
    ``budget``: the largest legacy-format file accepted (it is read whole)."""
    records = _zip_records(path)
    if records is None and budget is not None and path.stat().st_size > budget:
        raise CheckpointError(str(path), f"a legacy-format checkpoint (PyTorch before 1.6, not a zip) is read "
                              f"whole, and this one is {path.stat().st_size:,} bytes, more than this spec's "
                              f"weights could take ({budget:,}); save it again with a current torch.save")
    wrapper, state = unwrap(_load(path, map_location="meta"), str(path))
    data = _Data(path, wrapper, state, records)
    return {key: describe_torch(t, _reader(data, key), layout=str(t.layout).removeprefix("torch."))
            for key, t in state.items()}


def _reader(data: _Data, key: str) -> Any:
    return lambda: data.values(key)


def _load(path: Path, **kwargs: Any) -> Any:
    import torch

    try:
        with warnings.catch_warnings():  # torch warns (TypedStorage, legacy formats) over several lines
            warnings.simplefilter("ignore")
            return torch.load(str(path), weights_only=True, **kwargs)
    except Exception as exc:  # torch raises many types for corrupt, hostile or non-weights files
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[0] if lines else type(exc).__name__
        if "Quantized" in detail:  # quantized tensors cannot be made on the meta device: say what they are
            detail = "it holds quantized tensors; weights must be floating point (float16, bfloat16, float32 or float64)"
        unsupported = next((line for line in lines if line.startswith("WeightsUnpickler error")), "")
        pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if pickled:  # most often a whole model from torch.save(model, path)
            detail = (f"it holds a pickled Python object (`{pickled.group(1)}`), not only tensors; if it is a "
                      "whole model, save its weights with `torch.save(model.state_dict(), path)` and pass that file")
        elif unsupported and unsupported != detail:
            detail += " " + unsupported
        raise CheckpointError(str(path), f"cannot read checkpoint: {detail[:300]}") from exc


def unwrap(obj: Any, source: str) -> tuple[str | None, dict[str, Any]]:
    """The state_dict inside a checkpoint, bare or in a common wrapper ({'state_dict': ...},
    {'model': ...}, {'model_state_dict': ...}), with the wrapper's key."""
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                return key, obj[key]
        if _is_state_dict(obj) or obj == {}:
            return None, obj
    raise CheckpointError(source, "not a state_dict (expected a mapping from tensor names to tensors, or "
                          "a checkpoint holding one under 'state_dict', 'model_state_dict' or 'model')")


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(hasattr(v, "shape") and hasattr(v, "layout") for v in obj.values()))


class _Data:
    """The checkpoint's values, mapped from the file on first use (the second pass)."""

    def __init__(self, path: Path, wrapper: str | None, meta: dict[str, Any],
                 records: dict[int, zipfile.ZipInfo] | None) -> None:
        self.path, self.wrapper, self.meta, self.records = path, wrapper, meta, records
        self.state: dict[str, Any] | None = None

    def values(self, key: str) -> np.ndarray:
        if self.state is None:
            self.state = self._open()
        t = self.state[key]
        layout = torch_layout(t)
        if layout == "meta":
            raise CheckpointError(str(self.path), f"{quote(key)} is a meta tensor: it has a shape but no values "
                                  "(the checkpoint was saved from a model on the meta device)")
        return torch_values(t)

    def _open(self) -> dict[str, Any]:
        if self.records is not None:
            self._check_data_records()
            obj = _load(self.path, map_location="cpu", mmap=True)
        else:
            obj = _load(self.path, map_location="cpu")
        state = obj[self.wrapper] if self.wrapper is not None else obj
        if not _is_state_dict(state) or set(state) != set(self.meta):
            raise CheckpointError(str(self.path), "the checkpoint changed while it was being read")
        return state

    def _check_data_records(self) -> None:
        """Every tensor's storage must be an uncompressed record at least as long as the pickle says:
        mapping a compressed or short record would give wrong values silently."""
        assert self.records is not None
        for key, t in self.meta.items():
            if str(t.layout) != "torch.strided":
                continue
            storage = t.untyped_storage()
            offset, nbytes = getattr(storage, "_checkpoint_offset", None), storage.nbytes()
            if offset is None:  # not read from a record (a meta tensor in the file): nothing to map
                continue
            info = self.records.get(offset)
            if info is None:
                raise CheckpointError(str(self.path), f"cannot find the data record of {quote(key)}")
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(str(self.path), f"the data of {quote(key)} ({info.filename}) is compressed; "
                                      "torch.save stores tensors uncompressed, so load and save the checkpoint "
                                      "again with torch")
            if info.file_size < nbytes:
                raise CheckpointError(str(self.path), f"the data record of {quote(key)} holds {info.file_size:,} "
                                      f"bytes, but its tensor's storage needs {nbytes:,}")


def _zip_records(path: Path) -> dict[int, zipfile.ZipInfo] | None:
    """The archive's records by the file offset of their data, after checking that none but tensor data is
    over ``MAX_RECORD`` bytes; None for a file that is not a zip (the legacy format)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as fh:
            infos = archive.infolist()
            records = {}
            for info in infos:
                if "/data/" not in info.filename and info.file_size > MAX_RECORD:
                    raise CheckpointError(str(path), f"its record {info.filename[:100]} is {info.file_size:,} "
                                          f"bytes; a checkpoint's pickle and metadata are at most {MAX_RECORD:,}")
                if "/data/" in info.filename:
                    records[_data_offset(fh, info)] = info
            return records
    except (zipfile.BadZipFile, OSError, struct.error, ValueError, NotImplementedError, EOFError, RuntimeError) as exc:
        raise CheckpointError(str(path), f"cannot read checkpoint: not a valid zip archive ({exc})") from None


def _data_offset(fh: Any, info: zipfile.ZipInfo) -> int:
    """Where a record's data begins: after its local header (30 bytes, the name and the extra field)."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename[:100]}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len
