"""Python API: ``cnnspec.load(path, **params)`` returns a :class:`Model`.

The model holds the analysed graph; its compile methods import their backend only when called, so
loading and summarising never import torch or onnx."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph, Shape

if TYPE_CHECKING:
    import torch


@dataclass
class Model:
    graph: Graph

    @property
    def name(self) -> str:
        return self.graph.name

    def summary(self, fmt: str = "text", depth: int | None = None) -> str:
        """The per-layer table and totals as ``text``, ``markdown`` or ``json``."""
        from cnnspec.report import render

        return render(self.graph, fmt, depth)

    def to_source(self) -> str:
        """The generated PyTorch module (what ``cnnspec build --target torch`` writes), as text."""
        from cnnspec.compile.torch import render_source

        return render_source(self.graph)

    def to_torch(self, max_bytes: int | None = None, **params: Any) -> torch.nn.Module:
        """A ``torch.nn.Module`` built by importing ``to_source()``; ``params`` override its constructor's
        defaults (the spec's values, with this model's overrides applied). A network whose weights exceed
        ``max_bytes`` (default ``$CNNSPEC_MAX_BYTES``, else 4 GiB) is refused with a ``SpecError``."""
        from cnnspec.compile.torch import build_module

        return build_module(self.graph, max_bytes, **params)

    def to_onnx(self, path: str | Path, weights: Any = None, module: Any = None, **opts: Any) -> list[Path]:
        """Write the ONNX model to ``path`` (what ``cnnspec build --target onnx`` writes); returns the files
        written. Weights come from ``module`` (a torch module, e.g. ``to_torch()``, whose state_dict is
        copied), ``weights`` (a ``.pt``/``.pth``/``.safetensors`` path or a state_dict), or a seeded
        initialisation. ``opts``: ``seed``, ``opset``, ``batch``, ``fp16``, ``external``, ``max_bytes`` (default
        ``$CNNSPEC_MAX_BYTES``, else 16 GiB: a bigger network is refused with a ``SpecError``)."""
        from cnnspec.compile.onnx import export

        return export(self.graph, path, weights=weights, module=module, **opts)

    def to_dot(self, depth: int | None = None, rankdir: str = "TB") -> str:
        """The architecture diagram as Graphviz DOT text (render it with ``dot -Tsvg``)."""
        from cnnspec.compile.dot import render_dot

        return render_dot(self.graph, depth, rankdir)


def load(path: str | Path, input_shape: Shape | None = None, **params: Any) -> Model:
    """Load, validate, resolve and analyse the spec at ``path``; keyword arguments override ``params``."""
    return Model(analyse_file(path, params or None, tuple(input_shape) if input_shape else None))
