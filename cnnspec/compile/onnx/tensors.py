"""A tensor of a checkpoint or state_dict, described before its values are read, and what cnnspec accepts.

``StoredTensor`` holds what a file's header or a pickle's metadata says (shape, dtype, layout) and a
``read`` function that reads the values only when the ONNX builder asks for them, converted for ONNX:

- floating dtypes that convert exactly, float16, bfloat16, float8 (e4m3fn, e5m2) and float32, become
  float32; float64 is rounded to float32 and refused where a value would overflow it;
- integer dtypes become int64 (accepted only where the spec's tensor is int64: BatchNorm's
  ``num_batches_tracked``);
- bool, complex, quantised and any other dtype, and sparse or meta tensors, are refused by the caller
  (``fit.py``) before anything is read.

torch is imported only when a torch tensor is described (a ``.pt`` checkpoint, a module's state_dict).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOAT_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"})
INT_DTYPES = frozenset({"int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8"})
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT16_MAX = 65504.0
FLOAT16_OVERFLOW = 65520.0  # the smallest magnitude that rounds to infinity in float16
ML_DTYPES_FLOATS = frozenset({"bfloat16", "float8_e4m3fn", "float8_e5m2"})  # numpy dtypes from ml_dtypes


class ValueProblem(Exception):
    """What is wrong with one tensor's values; the caller adds the tensor's name and the file."""


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as its file describes it; ``read()`` gives its values as float32 or int64."""

    shape: tuple[int, ...]
    dtype: str  # "float32", "bfloat16", "int64", "bool", "complex64", ...
    read: Callable[[], np.ndarray]
    layout: str = "strided"  # "sparse_coo", "meta", ...: refused

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def kind(self) -> str:
        """``float``, ``int`` or the dtype itself (bool, complex64, ...: never accepted)."""
        if self.dtype in FLOAT_DTYPES:
            return "float"
        if self.dtype in INT_DTYPES:
            return "int"
        return self.dtype


def to_float32(a: np.ndarray) -> np.ndarray:
    """``a`` (any float dtype numpy or ml_dtypes knows) as a C-contiguous float32 array; float64 values
    beyond float32's range raise ``ValueProblem`` instead of becoming infinite."""
    with np.errstate(over="ignore"):  # overflow is reported below, not as a numpy warning
        out = np.asarray(a, dtype=np.float32, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    if a.dtype == np.float64 and out.size and not _finite_sum(out):
        overflow = np.isfinite(a) & ~np.isfinite(out)
        if overflow.any():
            big = float(np.abs(a[overflow]).max())
            raise ValueProblem(f"holds float64 values up to {big:.6g} in magnitude, beyond float32's largest "
                               f"({FLOAT32_MAX:.6g}), where they would become infinite")
    return out


def _finite_sum(a: np.ndarray) -> bool:
    """True when every value of ``a`` is finite: one float64 sum (a float32 array cannot overflow it), no
    temporary the size of ``a``; numpy's warnings about infinities are not printed."""
    with np.errstate(all="ignore"):
        return bool(np.isfinite(np.add.reduce(a, axis=None, dtype=np.float64)))


def convert(a: np.ndarray, dtype: str) -> np.ndarray:
    """The values of an accepted dtype as ONNX takes them: float32 for floats, int64 for integers."""
    if dtype in INT_DTYPES:
        return np.asarray(a, dtype=np.int64, order="C")
    return to_float32(a)


def check_values(a: np.ndarray, fp16: bool) -> None:
    """Raise ``ValueProblem`` for NaN or infinite values, or (``fp16``) values float16 cannot hold. One
    float64 sum decides the common case without a temporary array the size of ``a``."""
    if a.dtype != np.float32 or a.size == 0:
        return
    if not _finite_sum(a):
        nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
        what = " and ".join(part for part in (f"{nan:,} NaN" if nan else "", f"{inf:,} infinite" if inf else "")
                            if part)
        raise ValueProblem(f"holds {what} value{'s' if nan + inf > 1 else ''} (of {a.size:,}); weights must be "
                           "finite numbers")
    if fp16:
        big = max(float(a.max()), -float(a.min()))
        if big >= FLOAT16_OVERFLOW:
            raise ValueProblem(f"holds values up to {big:.6g} in magnitude, beyond float16's largest "
                               f"({FLOAT16_MAX:,.0f}): with --fp16 they would become infinite; build without "
                               "--fp16 or rescale the weights")


# numpy arrays ----------------------------------------------------------------------------------------------

def numpy_dtype_name(dtype: np.dtype) -> str:
    """``float32``, ``bfloat16`` (ml_dtypes), ``int8``, ``bool``, ``complex64``, ``<U5``, ``object``..."""
    if dtype.kind in "fiucb" or dtype.name in ML_DTYPES_FLOATS:
        return "bool" if dtype.kind == "b" else dtype.name
    return dtype.name if dtype.kind == "O" else dtype.str.lstrip("<>|=")


def from_numpy(a: np.ndarray) -> StoredTensor:
    dtype = numpy_dtype_name(a.dtype)
    if a.dtype.kind == "f" and dtype not in FLOAT_DTYPES:
        dtype = f"{dtype} (extended precision)"  # float128: not a checkpoint dtype
    return StoredTensor(tuple(int(d) for d in a.shape), dtype, lambda: convert(a, dtype))


# torch tensors ---------------------------------------------------------------------------------------------

def is_torch_tensor(value: Any) -> bool:
    """True for a torch tensor; never imports torch (a value cannot be a tensor if torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def torch_layout(t: Any) -> str:
    """``strided``, ``meta`` (a tensor without values), ``sparse_coo``, ``sparse_csr``..."""
    layout = str(t.layout).removeprefix("torch.")
    if layout == "strided" and t.is_meta:
        return "meta"
    return layout


def describe_torch(t: Any, read: Callable[[], np.ndarray] | None = None, layout: str | None = None) -> StoredTensor:
    """A torch tensor's metadata; its values are read (from ``t`` itself unless ``read`` is given) only
    when asked for. ``layout`` overrides the tensor's own (a checkpoint's first pass loads every tensor
    on the meta device)."""
    dtype = str(t.dtype).removeprefix("torch.")
    return StoredTensor(tuple(int(d) for d in t.shape), dtype, read or (lambda: torch_values(t)),
                        layout or torch_layout(t))


def torch_values(t: Any) -> np.ndarray:
    """A strided CPU or GPU tensor of an accepted dtype as float32/int64 numpy values (an expanded tensor
    is materialised; its shape was checked against the spec first)."""
    import torch

    dtype = str(t.dtype).removeprefix("torch.")
    t = t.detach()
    if dtype in FLOAT_DTYPES and t.dtype not in (torch.float64, torch.float32, torch.float16):
        t = t.to(torch.float32)  # bfloat16 and float8: exact in float32, and numpy cannot take them
    return convert(t.cpu().contiguous().numpy(), dtype)
