"""The front end in one call: load -> validate -> resolve -> analyse, giving a :class:`Graph`.

Imports nothing heavier than pydantic and PyYAML: this is the whole path of ``cnnspec check`` and
``cnnspec summary``."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cnnspec.analyse.analyser import analyse
from cnnspec.errors import SpecError
from cnnspec.graph import Graph, Node, Shape, SourcePos
from cnnspec.loader.yaml_loader import Doc, load_file
from cnnspec.resolve.imports import Src, gather_blocks, validated
from cnnspec.resolve.resolver import Resolver, Scope, substitute
from cnnspec.validate.messages import suggest
from cnnspec.validate.spec import SpecFile

T = TypeVar("T")


def gc_paused(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function`` with Python's cyclic garbage collector paused (restored after, also on errors).

    The front end builds only acyclic data (dicts, lists, a tree of nodes), so the collector finds nothing,
    but each full collection scans every object alive in the process: with torch imported, analysing 5,000
    layers cost 2.6x as much per layer as 500 layers. Paused, the cost is linear (bench/bench_check.py)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def analyse_file(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
                 input_shape: Shape | None = None) -> Graph:
    """Load, validate, resolve and analyse the spec at ``path``.

    ``overrides`` replace the spec's ``params`` (``--set``); ``input_shape`` replaces its ``input``
    (``--input``). Raises :class:`SpecError` with the location of the first problem."""
    return analyse_doc(load_file(path), path, overrides, input_shape)


@gc_paused
def analyse_doc(doc: Doc, path: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
                input_shape: Shape | None = None) -> Graph:
    """:func:`analyse_file` for a spec already loaded from ``path`` (imports are relative to it)."""
    spec = validated(SpecFile, doc.data, Src(doc, ()), "the spec")
    params = _params(spec, doc, overrides or {})
    shape = input_shape or _input(spec, doc, params)
    _check_input(shape, doc.pos(("input",)) if input_shape is None else SourcePos(doc.file, 1, 1))
    root_dir = Path(os.path.realpath(path)).parent
    blocks = gather_blocks(doc, spec.blocks, spec.use, root_dir)
    root = Node(op="model", name="", path="", pos=doc.pos(("layers",), key=True))
    root.children = Resolver(blocks, params).layers(spec.layers, Src(doc, ("layers",)), Scope(""), params, ())
    analyse(root, shape)
    constraints = {}
    if spec.constraints is not None:
        for key, value in spec.constraints.model_dump(exclude_none=True).items():
            constraints[key] = (value, doc.pos(("constraints", key)))
    return Graph(name=spec.name, source=str(path), root=root, input_shape=shape, params=params,
                 description=spec.description, spec_hash=_hash(doc, params, shape, blocks),
                 constraints=constraints)


def _params(spec: SpecFile, doc: Doc, overrides: dict[str, Any]) -> dict[str, Any]:
    params = dict(spec.params)
    for key, value in overrides.items():
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(f"--set {key}: the spec has no parameter `{key}`"
                            f"{suggest(key, params) or f' (parameters: {known})'}", doc.pos(("params",), key=True))
        current = params[key]
        if type(value) is not type(current) and not (isinstance(current, float) and type(value) is int):
            shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:30]}..."
            raise SpecError(f"--set {key}={shown}: `{key}` is {_TYPE_WORDS[type(current)]} ({current!r} in the "
                            f"spec), got {_TYPE_WORDS.get(type(value), 'a value')}", doc.pos(("params", key)))
        params[key] = value
    return params


_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def _input(spec: SpecFile, doc: Doc, params: dict[str, Any]) -> Shape:
    values = substitute(spec.input, Src(doc, ("input",)), params)
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"`input` sizes must be whole numbers, got {value!r}", doc.pos(("input", index)))
    return tuple(values)


def _check_input(shape: Shape, pos: SourcePos) -> None:
    if not 1 <= len(shape) <= 4:
        raise SpecError(f"`input` is [C], [C, L], [C, H, W] or [C, D, H, W] (no batch axis); got {len(shape)} "
                        "sizes", pos)
    for size in shape:
        if size < 1:
            raise SpecError(f"`input` sizes must be at least 1, got {list(shape)}", pos)


def _hash(doc: Doc, params: dict[str, Any], shape: Shape, blocks: dict[str, Any]) -> str:
    """A digest of everything that determines the network: the spec, imported blocks, params, input."""
    imported = {name: entry.definition.model_dump() for name, entry in sorted(blocks.items())}
    payload = json.dumps({"spec": doc.data, "blocks": imported, "params": params, "input": list(shape)},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


SMALLEST_INPUT_BUDGET = 200_000  # layer analyses (~1 s): summary stays fast on 50,000-layer specs


def smallest_input(graph: Graph) -> Shape | None:
    """The smallest input (per spatial axis, others kept) for which every layer has a positive output,
    found by bisection (larger inputs are assumed to stay valid). None when the input has no spatial axes,
    or when the bisection would analyse more than :data:`SMALLEST_INPUT_BUDGET` layers (a 40,000-layer
    spec took 4 s). Re-analyses the graph's tree at each probe and restores it at the end."""
    if graph.rank < 1:
        return None
    probes = sum(size.bit_length() for size in graph.input_shape[1:])
    if probes * sum(1 for _ in graph.root.walk()) > SMALLEST_INPUT_BUDGET:
        return None
    best = list(graph.input_shape)
    try:
        for axis in range(1, len(best)):
            low, high = 1, graph.input_shape[axis]
            while low < high:
                middle = (low + high) // 2
                if _valid(graph.root, tuple(best[:axis] + [middle] + best[axis + 1:])):
                    high = middle
                else:
                    low = middle + 1
            best[axis] = low
    finally:
        analyse(graph.root, graph.input_shape)
    return tuple(best)


def _valid(root: Node, shape: Shape) -> bool:
    try:
        analyse(root, shape)
    except SpecError:
        return False
    return True


def is_blocks_file(doc: Doc) -> bool:
    """A file holding only ``blocks`` (and ``use``): a block library, imported by specs."""
    return "layers" not in doc.data and "blocks" in doc.data and "input" not in doc.data


def check_blocks_file(doc: Doc, path: str | os.PathLike[str]) -> None:
    """Validate a block library: its structure and its imports (blocks are checked where they are used)."""
    from cnnspec.validate.spec import BlocksFile

    lib = validated(BlocksFile, doc.data, Src(doc, ()), "the block library")
    gather_blocks(doc, lib.blocks, lib.use, Path(os.path.realpath(path)).parent)
