"""Where the ONNX initializers come from: a seeded initialisation with PyTorch's default distributions,
a checkpoint file keyed like the torch module's state_dict, a state_dict, or a torch module itself.

Every source is checked against the spec (``fit.py``) before its values are trusted, and every source is
read lazily: the builder asks for one tensor at a time, so a build holds about one copy of the weights
(in the model being built) rather than three.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.compile.onnx.errors import CheckpointError
from cnnspec.compile.onnx.fit import OPTIONAL_SUFFIX, CheckedWeights, as_stored, check_weights, strip_prefix
from cnnspec.compile.onnx.tensors import StoredTensor
from cnnspec.ir import Graph, TensorSpec

__all__ = ["OPTIONAL_SUFFIX", "CheckedWeights", "CheckpointError", "SeededWeights", "check_weights",
           "init_weights", "load_weights", "read_checkpoint", "state_dict_to_numpy", "tensor_specs",
           "weights_from"]
SUFFIXES = (".safetensors", ".pt", ".pth")


def tensor_specs(graph: Graph) -> dict[str, TensorSpec]:
    """Every parameter and buffer of the graph, by state_dict key, in state_dict order."""
    by_key = {leaf.tensor_key(t): t for leaf in graph.leaves() for t in (*leaf.params, *leaf.buffers)}
    return {key: by_key[key] for key, _, _ in graph.state_dict_keys()}


class SeededWeights(Mapping[str, np.ndarray]):
    """PyTorch's default initialisation drawn from a seeded numpy generator, in state_dict order, one tensor
    when asked for: the values are those ``init_weights`` gives, without holding them all at once (tensors
    drawn ahead of the one asked for wait in a small cache)."""

    def __init__(self, graph: Graph, seed: int = 0) -> None:
        self._specs = tensor_specs(graph)
        self._seed = seed
        self._restart()

    def _restart(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        self._order = iter(self._specs.items())
        self._ahead: dict[str, np.ndarray] = {}
        self._drawn: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._ahead:
            return self._ahead.pop(key)
        if key in self._drawn:  # asked for twice: draw the stream again
            self._restart()
        if key not in self._specs:
            raise KeyError(key)
        for name, spec in self._order:
            self._drawn.add(name)
            if name == key:
                return _draw(spec, self._rng)
            self._ahead[name] = _draw(spec, self._rng)
        raise AssertionError(f"{key} was not drawn")  # unreachable: every key is in the order

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def init_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights drawn like PyTorch's defaults (uniform(-b, b), constants, fixed kernels) from a seeded
    numpy generator: the same seed gives the same arrays (PyTorch's own random stream is not reproduced)."""
    seeded = SeededWeights(graph, seed)
    return {key: seeded[key] for key in seeded}


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


def read_checkpoint(path: str | Path, strip: str | None = None, budget: int | None = None) -> dict[str, StoredTensor]:
    """A checkpoint's tensors, described from its header (``.safetensors``, read without torch) or pickle
    (``.pt``/``.pth``, torch imported here only); values are read when asked for. ``strip`` removes a
    prefix from the names (``module.``); ``budget`` bounds a legacy-format ``.pt``, which is read whole."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(str(p), "no such weights file" if not p.exists() else "not a regular file")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        from cnnspec.compile.onnx.safetensors_file import read_safetensors

        tensors = read_safetensors(p)
    elif suffix in (".pt", ".pth"):
        from cnnspec.compile.onnx.torch_file import read_torch

        tensors = read_torch(p, budget)
    else:
        raise CheckpointError(str(p), f"unsupported weights format '{suffix[:20]}' (use .pt, .pth or .safetensors)")
    return strip_prefix(tensors, strip, str(p)) if strip else tensors


def legacy_budget(graph: Graph) -> int:
    """The largest legacy-format ``.pt`` read for ``graph``: its weights at float64, four times over (room
    for optimizer state), plus 1 MiB."""
    return 4 * 8 * sum(spec.numel for spec in tensor_specs(graph).values()) + 2**20


def load_weights(graph: Graph, path: str | Path, strip: str | None = None) -> dict[str, StoredTensor]:
    """``cnnspec build/run/bench --weights``: the checkpoint's tensors for ``graph`` (checked when built)."""
    return read_checkpoint(path, strip, legacy_budget(graph))


def weights_from(graph: Graph, weights: Any, module: Any,
                 strip: str | None = None) -> tuple[dict[str, StoredTensor] | None, str]:
    """Weights for ``export``: a torch module, a checkpoint path, a state_dict (numpy arrays or torch
    tensors), or None (seeded init); with the name that error messages give their source."""
    if module is not None:
        if not callable(getattr(module, "state_dict", None)):
            raise TypeError(f"module must be a torch.nn.Module (something with a state_dict()), got "
                            f"{type(module).__name__}")
        stored, source = as_stored(module.state_dict()), type(module).__name__
    elif weights is None:
        return None, "weights"
    elif isinstance(weights, str | Path):
        return load_weights(graph, weights, strip), str(weights)
    elif isinstance(weights, Mapping):
        stored, source = as_stored(weights), "state_dict"
    else:
        raise TypeError(f"weights must be a checkpoint path (str or pathlib.Path to a .pt, .pth or .safetensors "
                        f"file), a state_dict (a dict of numpy arrays or torch tensors) or None, got "
                        f"{type(weights).__name__}")
    return (strip_prefix(stored, strip, source) if strip else stored), source


def state_dict_to_numpy(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state_dict's tensors as float32 (any float dtype, bfloat16 included) or int64 numpy arrays."""
    return {key: t.read() for key, t in as_stored(state).items()}
