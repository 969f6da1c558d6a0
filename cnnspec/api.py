"""Python API: ``cnnspec.load(path, **params)`` returns a :class:`Model`.

The model holds the analysed graph; its compile methods import their backend only when called, so
loading and summarising never import torch or onnx."""

from __future__ import annotations

import operator
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
        """The per-layer table and totals as ``text``, ``markdown`` or ``json`` (what ``cnnspec summary``
        prints, the smallest input included)."""
        from cnnspec.frontend import size_fixed_by, smallest_input
        from cnnspec.report import render

        if fmt not in SUMMARY_FORMATS:
            raise ValueError(f"summary format {fmt!r}: one of {', '.join(SUMMARY_FORMATS)}")
        smallest = smallest_input(self.graph)
        return render(self.graph, fmt, depth, smallest, size_fixed_by(self.graph, smallest))

    def to_source(self) -> str:
        """The generated PyTorch module (what ``cnnspec build --target torch`` writes), as text."""
        from cnnspec.compile.torch import render_source

        return render_source(self.graph)

    def to_torch(self, max_bytes: int | None = None, **params: Any) -> torch.nn.Module:
        """A ``torch.nn.Module`` built by importing ``to_source()``. ``params`` naming spec params analyse the
        spec again with them (as ``load(path, **params)`` would), so every size that follows from them is
        right (``pad=0`` on a network with a flatten); other ``params`` go to the constructor. A network
        whose weights exceed ``max_bytes`` (default ``$CNNSPEC_MAX_BYTES``, else 4 GiB) is refused with a
        ``SpecError``, and so is a param value the spec refuses."""
        from cnnspec.compile.torch import build_module

        graph = self.graph
        spec_params = {k: v for k, v in params.items() if k in graph.params}
        if spec_params and graph.variant is not None:
            graph = graph.variant({k: v.item() if _is_numpy_scalar(v) else v for k, v in spec_params.items()})
            params = {k: v for k, v in params.items() if k not in spec_params}
        return build_module(graph, max_bytes, **params)

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


SUMMARY_FORMATS = ("text", "markdown", "json")
MAX_SIZE = 2**63 - 1  # what the command line accepts for sizes (int64, as torch and ONNX hold them)


def load(path: str | Path, input_shape: Shape | None = None, **params: Any) -> Model:
    """Load, validate, resolve and analyse the spec at ``path``; keyword arguments override ``params``.
    ``input_shape`` sizes are whole numbers from 1 to 2^63 - 1 (numpy integers too); numpy scalars given
    as params are taken as the Python numbers they hold. Raises ``ValueError`` for a malformed argument."""
    shape = None if input_shape is None else tuple(_whole(v, "input_shape") for v in input_shape)
    plain = {key: value.item() if _is_numpy_scalar(value) else value for key, value in params.items()}
    return Model(analyse_file(path, plain or None, shape))


def _whole(value: Any, what: str) -> int:
    """``value`` as a size: a whole number (``int`` or a numpy integer, not ``bool``) from 1 to 2^63 - 1."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None:
        raise ValueError(f"{what}: sizes are whole numbers, got {value!r}")
    if not 1 <= number <= MAX_SIZE:
        raise ValueError(f"{what}: sizes are from 1 to 2^63 - 1, got {number}")
    return number


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0
