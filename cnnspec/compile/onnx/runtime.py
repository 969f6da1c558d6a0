"""onnxruntime sessions for ``cnnspec run`` and ``cnnspec bench``: provider choice, inputs, and the model
given as an ``.onnx`` file or a spec (compiled in memory with seeded weights)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Loaded:
    """A model ready for a session: serialized bytes or a path, and a label for messages."""

    source: bytes | str
    label: str


def load_model(path: str, overrides: dict[str, Any] | None = None, seed: int = 0,
               max_bytes: int | None = None) -> Loaded:
    """An ``.onnx`` file as is, or a spec compiled with a dynamic batch and seeded weights (refused past
    ``max_bytes``, see ``cnnspec.compile.limits``)."""
    p = Path(path)
    if p.suffix.lower() in SPEC_SUFFIXES:
        from cnnspec.compile.limits import check_size
        from cnnspec.compile.onnx.model import to_model_proto
        from cnnspec.frontend import analyse_file

        graph = analyse_file(p, overrides)
        check_size(graph, "onnx", max_bytes)
        return Loaded(to_model_proto(graph, seed=seed).SerializeToString(), f"{graph.name} ({path}, random weights)")
    if overrides:
        raise UsageError("--set applies to a spec, not to an .onnx file")
    if not p.is_file():
        raise UsageError(f"no such file: {path}")
    return Loaded(str(p), str(p))


@dataclass
class Session:
    session: Any  # onnxruntime.InferenceSession
    provider: str  # the provider that actually runs the model
    note: str | None  # a one-line note when auto fell back to the CPU


def open_session(model: Loaded, provider: str = "auto", threads: int | None = None) -> Session:
    """A session on CUDA when asked for (``cuda``) or available (``auto``), else on the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    note = None
    if provider == "cuda" and CUDA not in available:
        raise UsageError("this onnxruntime has no CUDA provider (install onnxruntime-gpu: pip install cnnspec[gpu])")
    if provider == "auto" and CUDA not in available:
        note = "note: no CUDA provider in this onnxruntime; running on the CPU"
    providers = [CUDA, CPU] if provider != "cpu" and CUDA in available else [CPU]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(model.source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for invalid models
        raise UsageError(f"onnxruntime cannot load {model.label}: {str(exc).splitlines()[0]}") from exc
    used = session.get_providers()[0]
    if providers[0] == CUDA and used != CUDA:
        if provider == "cuda":
            raise UsageError("the CUDA provider failed to start (see onnxruntime's log); try --provider cpu")
        note = "note: the CUDA provider failed to start; running on the CPU"
    return Session(session, used, note)


def input_spec(session: Any) -> tuple[str, list[int | str], np.dtype]:
    """The model's input name, shape (symbolic dims as strings) and numpy dtype."""
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    return inp.name, list(inp.shape), np.dtype(dtype)


def make_input(session: Any, batch: int, seed: int = 0) -> np.ndarray:
    """Standard-normal input of the model's shape with ``batch`` items (a fixed batch must match)."""
    _, shape, dtype = input_spec(session)
    if isinstance(shape[0], int) and shape[0] != batch:
        raise UsageError(f"the model's batch dimension is fixed to {shape[0]}; use --batch {shape[0]}")
    dims = [batch, *(d if isinstance(d, int) else 1 for d in shape[1:])]
    return np.random.default_rng(seed).standard_normal(dims).astype(dtype)


def fit_input(session: Any, x: np.ndarray, source: str) -> np.ndarray:
    """``x`` checked against the model's input: a missing batch axis is added, the dtype converted."""
    _, shape, dtype = input_spec(session)
    if x.ndim == len(shape) - 1:
        x = x[None]
    want = "[" + ", ".join(str(d) if isinstance(d, int) else "N" for d in shape) + "]"
    if x.ndim != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(shape, x.shape, strict=True)):
        raise UsageError(f"{source}: input of shape {list(x.shape)} does not fit the model's input {want}")
    return x.astype(dtype)


def gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, if there is one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None
