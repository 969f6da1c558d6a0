"""The ONNX compiler: the analysed graph emitted directly as an ONNX model with the ``onnx`` package.

No tracing through torch: every op's ``onnx`` lowering (``cnnspec.ops``) adds its nodes; node and initializer names are the
spec's dotted paths, every value's shape is in ``value_info``, and the same inputs give the same bytes.
torch is imported only to read a ``.pt``/``.pth`` checkpoint or a module's state_dict.

This package module imports only the standard library: ``cnnspec build`` loads ``add_build_options`` on
every run, and onnx/numpy are imported when a function here is first called.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.compile.onnx.options import DEFAULT_OPSET, add_build_options, model_options
from cnnspec.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from cnnspec.ir import Graph

__all__ = [
    "DEFAULT_OPSET",
    "CheckpointError",
    "add_build_options",
    "build",
    "export",
    "to_model_proto",
]


def __getattr__(name: str) -> Any:
    if name == "CheckpointError":
        from cnnspec.compile.onnx.errors import CheckpointError

        return CheckpointError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_model_proto(graph: Graph, weights: dict[str, np.ndarray] | None = None, seed: int = 0,
                   opset: int = DEFAULT_OPSET, batch: int | None = None, fp16: bool = False) -> onnx.ModelProto:
    """The ONNX model of ``graph``: ``weights`` (a state_dict as numpy arrays, checked against the spec)
    or a seeded initialisation; ``batch`` fixes the batch dimension, else it is symbolic."""
    from cnnspec.compile.onnx.model import to_model_proto as _to_model_proto

    return _to_model_proto(graph, weights, seed, opset, batch, fp16)


def build(graph: Graph, output: Path, options: argparse.Namespace) -> list[Path]:
    """``cnnspec build --target onnx``: write ``output`` (and ``output.data`` past 2 GB); nothing is
    written when the weights do not fit the spec."""
    from cnnspec.compile.limits import check_size
    from cnnspec.compile.onnx.weights import load_weights

    check_size(graph, "onnx", getattr(options, "max_bytes", None))
    path = getattr(options, "weights", None)
    strip = getattr(options, "strip_prefix", None)
    if strip and not path:
        raise UsageError("--strip-prefix applies to the names in a --weights file; give one")
    weights = load_weights(graph, path, strip) if path else None
    return _compile_and_save(graph, output, weights, str(path), None, model_options(options))


def _compile_and_save(graph: Graph, output: str | Path, weights: Any, source: str, external: bool | None,
                      opts: dict[str, Any]) -> list[Path]:
    """Compile with the initializers kept out of protobuf and write them straight to the file."""
    from cnnspec.compile.onnx.model import compile_graph
    from cnnspec.compile.onnx.save import save_detached

    compiled = compile_graph(graph, weights, source=source, detached=True, **opts)
    assert compiled.initializers is not None
    return save_detached(compiled.model, compiled.initializers, output, external)


def export(graph: Graph, path: str | Path, weights: str | Path | dict[str, Any] | None = None, module: Any = None,
           external: bool | None = None, max_bytes: int | None = None, strip_prefix: str | None = None,
           **opts: Any) -> list[Path]:
    """``Model.to_onnx``: weights from a checkpoint path, a state_dict (numpy arrays or torch tensors), a
    torch module's state_dict, or (none given) the seeded initialisation; ``strip_prefix`` removes a prefix
    from their names (``"module."``). ``opts``: seed, opset, batch, fp16; ``external`` forces (or forbids)
    external data, which is otherwise used past 2 GB; ``max_bytes`` overrides the size limit
    (``cnnspec.compile.limits``)."""
    from cnnspec.compile.limits import check_size
    from cnnspec.compile.onnx.model import check_batch
    from cnnspec.compile.onnx.weights import weights_from

    if opts.get("batch") is not None:
        check_batch(opts["batch"])  # before any weights are read
    check_size(graph, "onnx", max_bytes)
    tensors, source = weights_from(graph, weights, module, strip_prefix)
    return _compile_and_save(graph, path, tensors, source, external, opts)
