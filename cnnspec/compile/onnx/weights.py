"""Where the ONNX initializers come from: a seeded initialisation with PyTorch's default distributions,
a checkpoint file keyed like the torch module's state_dict, or a torch module itself.

Every source is checked against the spec's state_dict (names and shapes) before anything is written.
``num_batches_tracked`` is optional: ONNX has no use for it and old torchvision checkpoints lack it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import SpecError
from cnnspec.ir import Graph, TensorSpec

OPTIONAL_SUFFIX = ".num_batches_tracked"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


class CheckpointError(SpecError):
    """A weights file that cannot be used for this spec; printed as ``FILE: error: ...``."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: error: {self.message}"


def tensor_specs(graph: Graph) -> dict[str, TensorSpec]:
    """Every parameter and buffer of the graph, by state_dict key, in state_dict order."""
    by_key = {leaf.tensor_key(t): t for leaf in graph.leaves() for t in (*leaf.params, *leaf.buffers)}
    return {key: by_key[key] for key, _, _ in graph.state_dict_keys()}


def init_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights drawn like PyTorch's defaults (uniform(-b, b), constants, fixed kernels) from a seeded
    numpy generator: the same seed gives the same arrays (PyTorch's own random stream is not reproduced)."""
    rng = np.random.default_rng(seed)
    return {key: _draw(spec, rng) for key, spec in tensor_specs(graph).items()}


def _draw(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if spec.init.kind == "uniform":  # U(-b, b) drawn directly in float32: no float64 temporary
        a = rng.random(spec.shape, dtype=np.float32)
        a *= np.float32(2 * spec.init.bound)
        a -= np.float32(spec.init.bound)
        return a.astype(dtype, copy=False)
    if spec.init.kind == "fixed":
        return np.asarray(spec.init.values, dtype=dtype).reshape(spec.shape)
    return np.full(spec.shape, spec.init.value, dtype=dtype)


def check_weights(graph: Graph, weights: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """``weights`` if it holds exactly the spec's tensors with the spec's shapes, else a CheckpointError
    naming every missing, unexpected and misshapen tensor with both shapes."""
    expected = {key: spec.shape for key, spec in tensor_specs(graph).items()}
    problems = []
    missing = [k for k in expected if k not in weights and not k.endswith(OPTIONAL_SUFFIX)]
    problems += [f"missing {k} {_fmt(expected[k])}" for k in missing]
    problems += [f"unexpected {k} {_fmt(np.shape(v))}" for k, v in weights.items() if k not in expected]
    problems += [
        f"{k} is {_fmt(np.shape(v))} in the file but {_fmt(expected[k])} in the spec"
        for k, v in weights.items()
        if k in expected and tuple(np.shape(v)) != tuple(expected[k])
    ]
    if problems:
        raise CheckpointError(source, f"does not fit spec '{graph.name}': " + "; ".join(problems))
    return weights


def _fmt(shape: Any) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """A state_dict from ``.safetensors`` (no torch needed) or ``.pt``/``.pth`` (read with torch, imported
    here only), as float32/int64 numpy arrays."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(str(p), "no such weights file")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(p)
    if suffix in (".pt", ".pth"):
        return _read_torch(p)
    raise CheckpointError(str(p), f"unsupported weights format '{suffix}' (use .pt, .pth or .safetensors)")


def _read_safetensors(p: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return {k: _as_numpy(v) for k, v in load_file(str(p)).items()}
    except Exception as exc:  # safetensors raises several types for corrupt or bfloat16 files
        raise CheckpointError(str(p), f"cannot read safetensors file: {exc}") from exc


def _read_torch(p: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(str(p), f"cannot read checkpoint: {str(exc).splitlines()[0]}") from exc
    return state_dict_to_numpy(_unwrap(obj, str(p)))


def _unwrap(obj: Any, source: str) -> dict[str, Any]:
    """The state_dict inside common checkpoint wrappers ({'state_dict': ...}, {'model': ...})."""
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(hasattr(v, "shape") for v in inner.values()):
                return inner
        if all(hasattr(v, "shape") for v in obj.values()):
            return obj
    raise CheckpointError(source, "not a state_dict (expected a mapping from tensor names to tensors)")


def state_dict_to_numpy(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """torch tensors (any float dtype, bfloat16 included) as float32 numpy arrays; integers as int64."""
    import torch

    out = {}
    for key, tensor in state.items():
        t = tensor.detach().cpu()
        t = t.to(torch.float32) if t.is_floating_point() else t.to(torch.int64)
        out[key] = t.numpy()
    return out


def _as_numpy(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a.astype(np.int64)


def weights_from(weights: Any, module: Any) -> tuple[dict[str, np.ndarray] | None, str]:
    """Weights for ``export``: a torch module, a checkpoint path, a state_dict, or None (seeded init);
    with the name that error messages give their source."""
    if module is not None:
        return state_dict_to_numpy(module.state_dict()), type(module).__name__
    if weights is None:
        return None, "weights"
    if isinstance(weights, str | Path):
        return read_checkpoint(weights), str(weights)
    if any(not isinstance(v, np.ndarray) for v in weights.values()):
        return state_dict_to_numpy(weights), "state_dict"
    return dict(weights), "state_dict"
