"""Import generated source as a module (no file needed): the only way cnnspec builds a torch model, so the
model you get in Python is exactly the file ``cnnspec build --target torch`` writes."""

from __future__ import annotations

import hashlib
import importlib.util
import linecache
import sys
from types import ModuleType

from torch import nn

from cnnspec.compile.torch.render import render_source
from cnnspec.ir import Graph


def import_source(source: str, module_name: str) -> ModuleType:
    """Execute ``source`` as a fresh module named ``module_name`` (registered in ``sys.modules`` so that
    pickling and ``inspect.getsource`` work; its text is registered with ``linecache`` for tracebacks)."""
    filename = f"<cnnspec:{module_name}>"
    spec = importlib.util.spec_from_loader(module_name, loader=None, origin=filename)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    code = compile(source, filename, "exec")
    _register_parents(module_name)
    sys.modules[module_name] = module
    exec(code, module.__dict__)  # noqa: S102 - cnnspec's own generated, validated source
    return module


def _register_parents(module_name: str) -> None:
    """Register the packages above ``module_name`` (``cnnspec_generated``) in ``sys.modules``: ``pickle``
    imports a class's module by name, and Python imports its parent package first."""
    parent, _, _ = module_name.rpartition(".")
    if parent and parent not in sys.modules:
        _register_parents(parent)
        package = ModuleType(parent, "Models built by cnnspec in this process (cnnspec.load(...).to_torch()).")
        package.__path__ = []
        sys.modules[parent] = package


def build_module(graph: Graph, **params: object) -> nn.Module:
    """Render ``graph``, import the source and instantiate its model class (``params`` override the
    constructor's defaults, which are the spec's values)."""
    source = render_source(graph)
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    stem = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in graph.name)  # a NUL, a dot
    module = import_source(source, f"cnnspec_generated.{stem}_{digest}")
    return model_class(module, graph)(**params)


def model_class(module: ModuleType, graph: Graph) -> type[nn.Module]:
    """The top-level model class of a generated module: the one its ``__all__`` exports."""
    return getattr(module, module.__all__[0])
