"""The ONNX compiler: the analysed graph emitted directly as an ONNX model with the ``onnx`` package.

No tracing through torch: every spec op has an emitter (``EMITTERS``), node and initializer names are the
spec's dotted paths, every value's shape is in ``value_info``, and the same inputs give the same bytes.
torch is imported only to read a ``.pt``/``.pth`` checkpoint or a module's state_dict.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.compile.onnx.model import DEFAULT_OPSET, to_model_proto
from cnnspec.compile.onnx.options import add_build_options, model_options
from cnnspec.compile.onnx.registry import EMITTERS
from cnnspec.compile.onnx.save import save_model
from cnnspec.compile.onnx.weights import CheckpointError, read_checkpoint, state_dict_to_numpy
from cnnspec.graph import Graph

__all__ = [
    "DEFAULT_OPSET",
    "EMITTERS",
    "CheckpointError",
    "add_build_options",
    "build",
    "export",
    "to_model_proto",
]


def build(graph: Graph, output: Path, options: argparse.Namespace) -> list[Path]:
    """``cnnspec build --target onnx``: write ``output`` (and ``output.data`` past 2 GB)."""
    path = getattr(options, "weights", None)
    weights = read_checkpoint(path) if path else None
    model = to_model_proto(graph, weights, source=str(path), **model_options(options))
    return save_model(model, output)


def export(
    graph: Graph,
    path: str | Path,
    weights: str | Path | dict[str, Any] | None = None,
    module: Any = None,
    external: bool | None = None,
    **opts: Any,
) -> list[Path]:
    """``Model.to_onnx``: weights from a checkpoint path, a state_dict (numpy arrays or torch tensors), a
    torch module's state_dict, or (none given) the seeded initialisation. ``opts``: seed, opset, batch,
    fp16."""
    arrays, source = _weights(weights, module)
    model = to_model_proto(graph, arrays, source=source, **opts)
    return save_model(model, path, external=external)


def _weights(weights: Any, module: Any) -> tuple[dict[str, np.ndarray] | None, str]:
    if module is not None:
        return state_dict_to_numpy(module.state_dict()), type(module).__name__
    if weights is None:
        return None, "weights"
    if isinstance(weights, str | Path):
        return read_checkpoint(weights), str(weights)
    if any(not isinstance(v, np.ndarray) for v in weights.values()):
        return state_dict_to_numpy(weights), "state_dict"
    return dict(weights), "state_dict"
