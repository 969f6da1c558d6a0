"""Read a ``.safetensors`` file without trusting it.

The format: an 8-byte little-endian header length N, N bytes of JSON (``{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {...}}``), then the tensors' bytes. The header is read and
checked first (its size, JSON, every entry's dtype, shape and offsets: inside the file, matching the shape,
not overlapping), so the names, shapes and dtypes can be compared with the spec before any tensor is read.
Each tensor is then read alone, straight from the file into an array (no whole-file map, no torch, no
ml_dtypes): bfloat16 and float8 are decoded exactly here.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.compile.onnx.errors import CheckpointError, quote
from cnnspec.compile.onnx.tensors import StoredTensor, convert

MAX_HEADER = 100 * 2**20  # the safetensors library's own limit
# safetensors dtype -> (cnnspec's name, numpy dtype of the stored bytes)
DTYPES: dict[str, tuple[str, str]] = {
    "F64": ("float64", "<f8"), "F32": ("float32", "<f4"), "F16": ("float16", "<f2"), "BF16": ("bfloat16", "<u2"),
    "F8_E4M3": ("float8_e4m3fn", "u1"), "F8_E5M2": ("float8_e5m2", "u1"),
    "I64": ("int64", "<i8"), "I32": ("int32", "<i4"), "I16": ("int16", "<i2"), "I8": ("int8", "i1"),
    "U64": ("uint64", "<u8"), "U32": ("uint32", "<u4"), "U16": ("uint16", "<u2"), "U8": ("uint8", "u1"),
    "BOOL": ("bool", "u1"), "C64": ("complex64", "<c8"),
}


def read_safetensors(path: Path) -> dict[str, StoredTensor]:
    """Every tensor of the file, described from its header; values are read on demand."""
    header, data_start, data_len = _header(path)
    tensors: dict[str, StoredTensor] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, begin, end = _entry(path, name, info, data_len)
        spans.append((begin, end, name))
        known = DTYPES.get(dtype)
        if known is None:  # described so that the dtype check names it; never read
            tensors[name] = StoredTensor(shape, dtype, _unreadable)
            continue
        tensors[name] = StoredTensor(shape, known[0], _reader(path, data_start + begin, shape, dtype))
    _no_overlap(path, spans)
    return tensors


def _bad(path: Path, why: str) -> CheckpointError:
    return CheckpointError(str(path), f"not a valid safetensors file: {why}")


def _header(path: Path) -> tuple[dict[str, Any], int, int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _bad(path, f"it is {size:,} bytes long, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER:
            raise _bad(path, f"its header length is {n:,} bytes, over the limit of {MAX_HEADER:,}")
        if 8 + n > size:
            raise _bad(path, f"its header length is {n:,} bytes, but only {size - 8:,} bytes follow it")
        text = fh.read(n)
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(path, f"its header is not JSON ({str(exc)[:200]})") from None
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    return header, 8 + n, size - 8 - n


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"{quote(twice)} appears twice")
    return out


def _entry(path: Path, name: str, info: Any, data_len: int) -> tuple[str, tuple[int, ...], int, int]:
    """``(dtype, shape, begin, end)`` of one header entry, checked."""
    if not isinstance(info, dict):
        raise _bad(path, f"the entry of {quote(name)} is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise _bad(path, f"{quote(name)} has no dtype")
    if not isinstance(shape, list) or not all(_is_size(d) for d in shape):
        raise _bad(path, f"{quote(name)} has no valid shape (a list of sizes)")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_size(o) for o in offsets)
            and offsets[0] <= offsets[1] <= data_len):
        raise _bad(path, f"the data offsets of {quote(name)} do not lie inside the file's {data_len:,} data bytes")
    begin, end = offsets
    numel = math.prod(shape)
    if dtype in DTYPES:
        need = numel * np.dtype(DTYPES[dtype][1]).itemsize
        if end - begin != need:
            raise _bad(path, f"{quote(name)} is {dtype} of shape {shape}, {need:,} bytes, but its data offsets "
                       f"span {end - begin:,} bytes")
    return dtype, tuple(shape), begin, end


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_overlap(path: Path, spans: list[tuple[int, int, str]]) -> None:
    spans = sorted(s for s in spans if s[1] > s[0])
    for (_, end, first), (begin, _, second) in itertools.pairwise(spans):
        if begin < end:
            raise _bad(path, f"the data of {quote(first)} and {quote(second)} overlap")


def _unreadable() -> np.ndarray:
    raise AssertionError("a tensor of an unknown dtype is refused before it is read")


def _reader(path: Path, start: int, shape: tuple[int, ...], dtype: str) -> Callable[[], np.ndarray]:
    name, stored = DTYPES[dtype]

    def read() -> np.ndarray:
        raw = np.empty(shape, dtype=stored)
        _read_into(path, start, raw.reshape(-1).view(np.uint8).data)
        return decode(raw, name)

    return read


def _read_into(path: Path, start: int, buf: memoryview) -> None:
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        done = 0
        while done < len(buf):
            n = fh.readinto(buf[done:])
            if not n:
                raise CheckpointError(str(path), "the file ended before its tensors' data (was it truncated "
                                      "while being read?)")
            done += n


def decode(raw: np.ndarray, name: str) -> np.ndarray:
    """Stored bytes (as read) to float32 or int64 values, exactly for every float but float64."""
    if name == "bfloat16":  # the upper 16 bits of a float32
        wide = raw.astype(np.uint32)
        wide <<= 16
        return wide.view(np.float32)
    if name in ("float8_e4m3fn", "float8_e5m2"):
        return _float8_table(name)[raw]
    return convert(raw, name)


@cache
def _float8_table(name: str) -> np.ndarray:
    """The float32 value of each of the 256 bytes: e4m3fn (bias 7, no infinities, NaN at S.1111.111) or
    e5m2 (bias 15, IEEE-style infinities and NaNs), as in the OCP 8-bit floating point specification."""
    exp_bits, man_bits, bias = (4, 3, 7) if name == "float8_e4m3fn" else (5, 2, 15)
    table = np.empty(256, dtype=np.float32)
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        exp = (byte >> man_bits) & ((1 << exp_bits) - 1)
        man = byte & ((1 << man_bits) - 1)
        top = exp == (1 << exp_bits) - 1
        if name == "float8_e4m3fn" and top and man == (1 << man_bits) - 1:
            value = float("nan")
        elif name == "float8_e5m2" and top:
            value = float("nan") if man else sign * float("inf")
        elif exp == 0:
            value = sign * man / (1 << man_bits) * 2.0 ** (1 - bias)
        else:
            value = sign * (1 + man / (1 << man_bits)) * 2.0 ** (exp - bias)
        table[byte] = value
    return table
