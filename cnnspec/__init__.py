"""cnnspec: CNN architectures as YAML, checked and measured statically, compiled to PyTorch, ONNX and
diagrams. ``cnnspec.load(path, **params)`` is the Python entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec._version import __version__

if TYPE_CHECKING:
    from cnnspec.api import Model

__all__ = ["__version__", "load"]


def load(path: str, input_shape: tuple[int, ...] | None = None, **params: Any) -> Model:
    """Load, validate, resolve and analyse a spec; ``params`` override the spec's ``params``."""
    from cnnspec.api import load as _load

    return _load(path, input_shape=input_shape, **params)
