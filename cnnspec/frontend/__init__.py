"""The front end: a spec file to its analysed graph, as a pipeline of functions, each taking the previous
one's product and nothing else::

    read (the file, with every position) -> parse (the file's structure, every op's settings) ->
    link (``use:`` imports, the block table) -> elaborate (blocks, ``$expressions``, names: a graph of
    values) -> infer (shapes, tensors, costs for one input shape)

Imports nothing heavier than PyYAML: this is the whole path of ``cnnspec check`` and ``cnnspec summary``.
The names below are loaded on first use (PEP 562), so importing one stage (``cnnspec.frontend.read``, which
``check``'s result cache needs) does not load the others: the op registry and its settings models are
most of a cold start."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.frontend.analysis import (
        SMALLEST_INPUT_BUDGET,
        Analysis,
        analyse,
        analyse_doc,
        analyse_file,
        analyse_text,
        search_cost,
        size_fixed_by,
        smallest_input,
    )
    from cnnspec.frontend.read import load_file, load_text
    from cnnspec.frontend.syntax import is_library

# what ``from cnnspec.frontend import NAME`` gives, by the stage module that defines it (a name that is also a
# submodule's, such as ``infer``, is not here: importing the submodule would rebind it)
_HOME = {name: "analysis" for name in ("SMALLEST_INPUT_BUDGET", "Analysis", "analyse", "analyse_doc", "analyse_file",
                                       "analyse_text", "search_cost", "size_fixed_by", "smallest_input")}
_HOME |= {"load_file": "read", "load_text": "read", "is_library": "syntax"}

__all__ = ["SMALLEST_INPUT_BUDGET", "Analysis", "analyse", "analyse_doc", "analyse_file", "analyse_text", "is_library",
           "load_file", "load_text", "search_cost", "size_fixed_by", "smallest_input"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'cnnspec.frontend' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnnspec.frontend.{_HOME[name]}"), name)
