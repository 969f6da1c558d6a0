"""onnxruntime sessions for ``cnnspec run`` and ``cnnspec bench``: the model (an ``.onnx`` file, or a spec
compiled in memory), the provider, and inputs for any model.

Any ONNX file may come in: several inputs or none, 0-d inputs, integer, bool, string or float64 inputs,
fixed dimensions of any size. Each tensor input gets random values of its own dtype, made directly in
that dtype, after the element count of every input together is checked against the input limit
(``cnnspec.compile.limits.input_limit``). What onnxruntime cannot load or run becomes one line (its own
log is silenced); an input it cannot take (a sequence, a map, bfloat16) is refused by name.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnspec.compile.limits import INPUT_ENV, human
from cnnspec.compile.onnx.errors import ModelError, quote, short
from cnnspec.compile.onnx.npy import InputSpec, fit_input, read_npy
from cnnspec.errors import UsageError
from cnnspec.ir import Graph

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
SPEC_SUFFIXES = (".yaml", ".yml")
SILENT = 4  # onnxruntime's FATAL: its errors come back as exceptions, turned into one line here
ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_, "tensor(string)": np.str_,
}
STRING_BYTES = 8  # a string element is a reference to one shared Python string
CHUNK = 2**22  # float16 noise is drawn in float32 chunks of this many values


@dataclass
class Loaded:
    """A model ready for a session: serialized bytes or a path, a label, and the path for messages."""

    source: bytes | str
    label: str
    path: str = ""


def load_model(path: str) -> Loaded:
    """An ``.onnx`` file, read by onnxruntime itself (a spec is compiled by ``cnnspec.commands.run``)."""
    return Loaded(path, path, path)


def compiled_spec(graph: Graph, path: str, seed: int, weights: str | None, strip: str | None) -> Loaded:
    """``graph`` compiled in memory with a dynamic batch and seeded weights or ``weights`` (a checkpoint,
    names stripped of ``strip``)."""
    from cnnspec.compile.onnx.detached import serialize
    from cnnspec.compile.onnx.model import compile_graph
    from cnnspec.compile.onnx.weights import load_weights

    tensors = load_weights(graph, weights, strip) if weights else None
    compiled = compile_graph(graph, tensors, seed=seed, source=str(weights), detached=True)
    assert compiled.initializers is not None
    data = bytes(serialize(compiled.model, compiled.initializers))
    origin = f"weights from {weights}" if weights else "random weights"
    return Loaded(data, f"{graph.name} ({path}, {origin})", path)


@dataclass
class Session:
    session: Any  # onnxruntime.InferenceSession
    provider: str  # the provider that actually runs the model
    note: str | None  # a one-line note when auto fell back to the CPU
    model: Loaded | None = None


def open_session(model: Loaded, provider: str = "auto", threads: int | None = None) -> Session:
    """A session on CUDA when asked for (``cuda``) or available (``auto``), else on the CPU."""
    import onnxruntime as ort

    ort.set_default_logger_severity(SILENT)
    available = ort.get_available_providers()
    note = None
    if provider == "cuda" and CUDA not in available:
        raise UsageError("this onnxruntime has no CUDA provider (install onnxruntime-gpu: pip install cnnspec[gpu])")
    if provider == "auto" and CUDA not in available:
        note = "note: no CUDA provider in this onnxruntime; running on the CPU"
    providers = [CUDA, CPU] if provider != "cpu" and CUDA in available else [CPU]
    options = ort.SessionOptions()
    options.log_severity_level = SILENT
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(model.source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for invalid models
        raise ModelError(model.path or model.label, f"onnxruntime cannot load it: {first_line(exc)}") from exc
    used = session.get_providers()[0]
    if providers[0] == CUDA and used != CUDA:
        if provider == "cuda":
            raise UsageError("the CUDA provider failed to start; try --provider cpu")
        note = "note: the CUDA provider failed to start; running on the CPU"
    return Session(session, used, note, model)


def first_line(exc: BaseException) -> str:
    """An exception's message as one short line: onnxruntime's lose their error-code prefix and the
    source file and C++ signature they quote."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for pattern in _ORT_NOISE:
        text = pattern.sub("", text)
    return text[:400]


_ORT_NOISE = (re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : "),
              re.compile(r"\S*onnxruntime_src/\S+:\d+ (?:[\w:<>*&, ]+\([^()]*\)(?: const)? )?"))


# inputs --------------------------------------------------------------------------------------------------

def input_specs(s: Session) -> list[InputSpec]:
    """Every input of the model; one that is not a tensor of numbers, booleans or strings is refused."""
    specs = []
    for inp in s.session.get_inputs():
        dtype = ORT_DTYPES.get(inp.type)
        if dtype is None:
            raise ModelError(_where(s), f"input {quote(inp.name)} is {short(inp.type)}; cnnspec feeds tensors of "
                             "numbers, booleans or strings")
        shape = tuple(d if isinstance(d, int | str) or d is None else str(d) for d in (inp.shape or ()))
        specs.append(InputSpec(inp.name, shape, np.dtype(dtype)))
    return specs


def _where(s: Session) -> str:
    return (s.model.path or s.model.label) if s.model else "model"


def input_shape(spec: InputSpec, batch: int | None) -> tuple[int, ...]:
    """The shape of ``spec``'s input: axis 0 (the batch) is ``batch`` (default 1 where it is not fixed),
    every other dimension that is not fixed is 1."""
    dims: list[int] = []
    for axis, d in enumerate(spec.shape):
        fixed = isinstance(d, int) and d >= 0
        if axis == 0 and batch is not None:
            if fixed and d != batch:
                raise UsageError(f"input {quote(spec.name)} has a fixed batch dimension of {d}; use --batch {d}")
            dims.append(batch)
        else:
            dims.append(d if fixed else 1)  # type: ignore[arg-type]
    return tuple(dims)


def check_input_bytes(specs: list[InputSpec], shapes: list[tuple[int, ...]], limit: int) -> None:
    """Refuse inputs whose elements together exceed ``limit`` bytes, before any is made."""
    total = elements = 0
    for spec, shape in zip(specs, shapes, strict=True):
        n = math.prod(shape)
        elements += n
        total += n * (STRING_BYTES if spec.dtype.kind == "U" else spec.dtype.itemsize)
    if total > limit:
        raise UsageError(f"the model's inputs need {elements:,} values ({human(total)}), over the input limit of "
                         f"{human(limit)}; use a smaller --batch, or raise the limit with --max-input-bytes or "
                         f"${INPUT_ENV}")


def random_input(spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values of ``spec``'s dtype, made in that dtype: standard normal floats, integers from 0 to 9,
    booleans, the string ``cnnspec``."""
    dtype = spec.dtype
    if dtype.kind == "U":
        return np.full(shape, "cnnspec", dtype=object)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape, dtype=np.bool_)
    if dtype.kind in "iu":
        return rng.integers(0, 10, size=shape, dtype=dtype)
    if dtype in (np.float32, np.float64):
        return np.asarray(rng.standard_normal(shape, dtype=dtype))
    out = np.empty(shape, dtype=dtype)  # float16: no generator for it; float32 chunks, cast as they come
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        flat[start:start + CHUNK] = rng.standard_normal(min(CHUNK, flat.size - start), dtype=np.float32)
    return out


def make_inputs(s: Session, batch: int | None, seed: int, limit: int) -> dict[str, np.ndarray]:
    """Random inputs for every input of the model (``batch`` items; default: the model's fixed batch, else
    1), checked against ``limit`` bytes before any is made."""
    specs = input_specs(s)
    shapes = [input_shape(spec, batch) for spec in specs]
    check_input_bytes(specs, shapes, limit)
    rng = np.random.default_rng(seed)
    try:
        return {spec.name: random_input(spec, shape, rng) for spec, shape in zip(specs, shapes, strict=True)}
    except MemoryError:
        raise ModelError(_where(s), "not enough memory for its inputs; use a smaller --batch") from None


def feeds_for(s: Session, npy: str | None, batch: int | None, seed: int, limit: int) -> dict[str, np.ndarray]:
    """The model's inputs: random ones (``make_inputs``), or the array in ``npy`` for a one-input model."""
    if npy is None:
        return make_inputs(s, batch, seed, limit)

    specs = input_specs(s)
    if len(specs) != 1:
        names = ", ".join(quote(spec.name) for spec in specs[:5]) + (", ..." if len(specs) > 5 else "")
        raise UsageError(f"--input X.npy feeds a model with one input; this one has {len(specs)}"
                         + (f" ({names})" if specs else ""))
    if batch is not None:
        raise UsageError("--batch sizes the random input; an --input array brings its own batch")
    return {specs[0].name: fit_input(specs[0], read_npy(npy, limit), npy)}


def runner(s: Session) -> Callable[[dict[str, np.ndarray]], list[Any]]:
    """A function giving every output of one inference; a failure inside onnxruntime (an invalid shape
    at run time, an allocation it cannot make) is one line."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = SILENT

    def run(feeds: dict[str, np.ndarray]) -> list[Any]:
        try:
            return list(s.session.run(None, feeds, options))
        except MemoryError:
            raise ModelError(_where(s), "onnxruntime ran out of memory running it") from None
        except Exception as exc:  # onnxruntime's Fail, InvalidArgument, RuntimeException...
            raise ModelError(_where(s), f"onnxruntime failed running it: {first_line(exc)}") from exc

    return run


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
