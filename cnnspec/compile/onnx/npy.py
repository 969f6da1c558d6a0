"""``cnnspec run --input X.npy``: an ``.npy`` array read without trusting it, and fitted to a model input.

The header (shape, dtype) is read and checked first: object arrays (pickles), structured and void arrays
are refused, and the element count against the input limit, before the data is mapped; a file shorter
than its header says is refused. Values are converted to the model input's dtype only where nothing is
lost: numbers to floats (refused where a finite value would overflow), integers and booleans to integers
that hold them, booleans to booleans, text to strings; complex values are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnspec.compile.limits import INPUT_ENV, human
from cnnspec.compile.onnx.errors import quote
from cnnspec.errors import UsageError


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, shape (symbolic or unknown dimensions as strings or None) and dtype."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype


MAX_HEADER = 2**16


def read_npy(path: str, limit: int) -> np.ndarray:
    """The array in ``path`` (memory-mapped: its values are read when they are converted)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such input file: {path}" if not p.exists() else f"not a regular file: {path}")
    shape, dtype, offset = _header(path)
    n = math.prod(shape)
    if dtype.hasobject or dtype.names is not None or dtype.kind == "V":
        what = "Python objects (a pickle)" if dtype.hasobject else f"records of type {dtype.str}"
        raise UsageError(f"{path}: the array holds {what}; give an array of numbers, booleans or strings")
    if n * dtype.itemsize > limit:
        raise UsageError(f"{path}: the array has {n:,} values ({human(n * dtype.itemsize)}), over the input limit "
                         f"of {human(limit)}; raise it with --max-input-bytes or ${INPUT_ENV}")
    if p.stat().st_size < offset + n * dtype.itemsize:
        raise UsageError(f"{path}: the file is shorter than its header says (truncated?)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False) if n else np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not a .npy array ({str(exc)[:200]})") from None


def _header(path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh, max_header_size=MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                # private, so numpy's stubs leave it out; no public reader takes version 3.0
                shape, _, dtype = fmt._read_array_header(fh, version, max_header_size=MAX_HEADER)  # type: ignore[attr-defined]
            else:
                raise ValueError(f"unsupported .npy version {version}")
            return tuple(shape), np.dtype(dtype), fh.tell()
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise UsageError(f"{path}: not a .npy array ({str(exc)[:200]})") from None


def fit_input(spec: InputSpec, x: np.ndarray, source: str) -> np.ndarray:
    """``x`` for model input ``spec``: a missing batch axis is added, fixed dimensions must match, and the
    values are converted to the input's dtype where nothing is lost."""
    if x.ndim == len(spec.shape) - 1:
        x = x[None]
    want = "[" + ", ".join(str(d) if isinstance(d, int) and d >= 0 else "N" for d in spec.shape) + "]"
    if x.ndim != len(spec.shape) or any(isinstance(d, int) and d >= 0 and d != s
                                        for d, s in zip(spec.shape, x.shape, strict=True)):
        raise UsageError(f"{source}: input of shape {list(x.shape)} does not fit the model's input {want}")
    return convert(x, spec, source)


def convert(x: np.ndarray, spec: InputSpec, source: str) -> np.ndarray:
    want, kind = spec.dtype, x.dtype.kind
    target = f"the model's input {quote(spec.name)} is {_name(want)}"
    if want.kind == "U":
        if kind not in "US":
            raise UsageError(f"{source}: the array holds {_name(x.dtype)} values, but {target}")
        return np.asarray(x.astype(str), dtype=object)
    if kind == "c":
        raise UsageError(f"{source}: the array holds complex values, but {target} (the imaginary parts would be lost)")
    if kind not in "biuf" or (want == np.bool_ and kind != "b") or (want.kind in "iu" and kind == "f"):
        raise UsageError(f"{source}: the array holds {_name(x.dtype)} values, but {target}")
    if want.kind in "iu" and kind in "iu" and x.size:
        info = np.iinfo(want)
        low, high = int(x.min()), int(x.max())
        if low < info.min or high > info.max:
            raise UsageError(f"{source}: the array holds values from {low} to {high}, but {target}, which holds "
                             f"{info.min} to {info.max}")
    with np.errstate(all="ignore"):
        out = np.asarray(x, dtype=want, order="C")
        finite = not out.size or want.kind != "f" or np.isfinite(np.add.reduce(out, axis=None, dtype=np.float64))
    if not finite:
        overflow = np.isinf(out) & np.isfinite(x)
        if overflow.any():
            raise UsageError(f"{source}: the array holds values up to {float(np.abs(x[overflow]).max()):.6g} in "
                             f"magnitude, beyond what {_name(want)} holds ({float(np.finfo(want).max):.6g}); "
                             f"{target}")
    return out


def _name(dtype: np.dtype) -> str:
    return {"U": "string", "S": "bytes", "b": "bool"}.get(dtype.kind, dtype.name)
