"""PyTorch backend: one standalone, readable module per spec (``render_source``), imported to build the
model object (``build_module``). Rendering needs jinja2 only; building imports torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.compile.torch.render import render_source

if TYPE_CHECKING:
    from torch import nn

    from cnnspec.ir import Graph

__all__ = ["build_module", "render_source"]


def build_module(graph: Graph, max_bytes: int | None = None, **params: Any) -> nn.Module:
    """The model described by ``graph`` as a ``torch.nn.Module``, built by importing ``render_source(graph)``;
    refused (``SpecError``) when its weights exceed ``max_bytes`` (see ``cnnspec.compile.limits``)."""
    from cnnspec.compile.limits import check_size
    from cnnspec.compile.torch.loader import build_module as _build

    check_size(graph, "torch", max_bytes)
    return _build(graph, **params)
