"""The front end's pipeline as one call: a loaded spec to its analysed graph (``analyse``), the first
error raised instead (``analyse_file``/``analyse_doc``/``analyse_text``), and the smallest input the built
network runs on. The stages are described in ``cnnspec/frontend/__init__.py``."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cnnspec import ir
from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend.budgets import attach_constraints
from cnnspec.frontend.elaborate import bind_params, check_input, check_input_rank, elaborate, input_shape
from cnnspec.frontend.infer import infer
from cnnspec.frontend.link import Program, Read, link
from cnnspec.frontend.read import Doc, load_file, load_text
from cnnspec.frontend.syntax import parse

T = TypeVar("T")


def gc_paused(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function`` with Python's cyclic garbage collector paused (restored after, also on errors).

    The front end builds only acyclic data, so the collector finds nothing, but each full collection
    scans every object alive in the process: with torch imported, analysing 5,000 layers cost 2.6x as
    much per layer as 500 layers. Paused, the cost is linear (bench/bench_check.py)."""

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


@dataclass
class Analysis:
    """What the front end made of one file: the analysed graph (None when it could not be made), every
    error found, and what was read (``kind`` is ``spec`` or ``blocks`` for a block library)."""

    graph: ir.Graph | None
    errors: list[SpecError]
    kind: str = "spec"
    program: Program | None = None


@gc_paused
def analyse(doc: Doc, path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None,
            shape: ir.Shape | None = None, every_error: bool = True, read: Read | None = None) -> Analysis:
    """Run the pipeline on a loaded file. ``overrides`` replace the spec's ``params`` (``--set``);
    ``shape`` replaces its ``input`` (``--input``). With ``every_error``, every problem is collected (in
    file order, then the first shape error of each independent branch); otherwise the analysis stops at
    the first shape error. ``read`` loads the files the spec imports (``link``'s reader; the disk by
    default): the language server passes one that serves open editor buffers first."""
    spec, errors = parse(doc)
    if spec is None:
        return Analysis(None, _ordered(errors, doc.file))
    program, link_errors = link(spec, path) if read is None else link(spec, path, read=read)
    errors = errors + link_errors
    if spec.layers is None:  # a block library
        return Analysis(None, _ordered(errors, doc.file), "blocks", program)
    if link_errors:  # blocks of a file that could not be read would be reported unknown
        return Analysis(None, _ordered(errors, doc.file), program=program)
    try:
        params = bind_params(spec, overrides or {})
        own = input_shape(spec, params)
        if shape is not None:
            check_input(shape, SourcePos(doc.file, 1, 1))
            check_input_rank(shape, own, spec.spots.pos("input"))
            own = shape
    except SpecError as exc:
        return Analysis(None, _ordered([*errors, exc], doc.file), program=program)
    graph, elaboration_errors = elaborate(program, params, str(path) if path is not None else doc.file)
    errors = _ordered(errors + elaboration_errors, doc.file)
    if errors:
        return Analysis(None, errors, program=program)
    graph, shape_errors = infer(graph, own, first_error_only=not every_error)
    shape_errors += attach_constraints(graph, spec, params)
    graph.digest = functools.cache(functools.partial(_digest, program, params, own))
    graph.files = program.files
    graph.variant = functools.partial(_variant, doc, path, dict(overrides or {}), shape, read)
    return Analysis(graph, shape_errors, program=program)


def _variant(doc: Doc, path: str | os.PathLike[str] | None, overrides: Mapping[str, Any], shape: ir.Shape | None,
             read: Read | None, changed: Mapping[str, Any]) -> ir.Graph:
    """``doc`` analysed again with ``changed`` params (``ir.Graph.variant``); raises the first problem. An
    input axis given explicitly (``--input``) keeps its size unless the spec's own input writes it with a
    changed param (``[$in_channels, 224, 224]``): then it follows the param."""
    if shape is not None:
        spec, _ = parse(doc)
        if spec is not None:
            before = input_shape(spec, bind_params(spec, overrides))
            after = input_shape(spec, bind_params(spec, {**overrides, **changed}))
            shape = tuple(a if a != b else s for s, b, a in zip(shape, before, after))
    result = analyse(doc, path, {**overrides, **changed}, shape, every_error=False, read=read)
    if result.errors:
        raise result.errors[0]
    assert result.graph is not None
    return result.graph


def analyse_doc(doc: Doc, path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None,
                input_shape: ir.Shape | None = None) -> ir.Graph:
    """The analysed graph of a loaded spec; raises the first problem as a :class:`SpecError`."""
    result = analyse(doc, path, overrides, input_shape, every_error=False)
    if result.errors:
        raise result.errors[0]
    if result.graph is None:
        raise SpecError("this file holds only `blocks` (a block library), not a network", SourcePos(doc.file, 1, 1))
    return result.graph


def analyse_file(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None,
                 input_shape: ir.Shape | None = None) -> ir.Graph:
    """Load, validate, link, elaborate and analyse the spec at ``path``; raises the first problem."""
    return analyse_doc(load_file(path), path, overrides, input_shape)


def analyse_text(text: str, file: str = "<string>", overrides: Mapping[str, Any] | None = None,
                 input_shape: ir.Shape | None = None) -> ir.Graph:
    """:func:`analyse_file` for a spec given as text (imports are relative to the working directory)."""
    return analyse_doc(load_text(text, file), None, overrides, input_shape)


def _ordered(errors: list[SpecError], file: str) -> list[SpecError]:
    """Errors in file order: the spec's own first, then those of imported files."""
    def key(e: SpecError) -> tuple[bool, str, int, int]:
        pos = e.pos or SourcePos(file, 0, 0)
        return pos.file != file, pos.file, pos.line, pos.col

    return sorted(errors, key=key)


def _digest(program: Program, params: Mapping[str, Any], shape: ir.Shape) -> str:
    """A digest of everything that determines the network: the spec, every block it can call (imported
    ones included), params and input."""
    written: dict[str, Any] = {}
    for source in (program.spec, *program.libraries):
        for name, block in (source.data.get("blocks") or {}).items():
            written.setdefault(name, {"description": block.get("description", ""), "args": block.get("args", {}),
                                      "layers": block.get("layers")})
    blocks = {name: written[name] for name in sorted(program.blocks)}
    payload = json.dumps({"spec": program.spec.data, "blocks": blocks, "params": params, "input": list(shape)},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# node analyses of the bisection, every 256 fixed kernel values counting as one more (each analysis walks
# them): 200,000 plain analyses took 8-25 s on the 2-core machine (a 50,000-layer chain of 1x1 convs), a
# 97,336-value fixed 3D kernel at 123 probes 5 s; 25,000 keeps summary's search near a second there
SMALLEST_INPUT_BUDGET = 25_000


def search_cost(graph: ir.Graph) -> int:
    """What one analysis of ``graph`` costs, in node analyses (:data:`SMALLEST_INPUT_BUDGET`)."""
    fixed = sum(t.numel for n in graph.nodes for t in n.params if t.init.kind == "fixed")
    return len(graph.nodes) + fixed // 256


def smallest_input(graph: ir.Graph) -> ir.Shape | None:
    """The smallest input (per spatial axis, others kept) that the network as built runs on: every layer
    has a positive output and every weight keeps its shape (a linear after a flatten fixes the sizes its
    features come from), so the generated module and the ONNX file take it. Found by bisection (larger inputs
    are assumed to stay valid). None when the input has no spatial axes, or when the bisection would cost
    more than :data:`SMALLEST_INPUT_BUDGET` node analyses."""
    if graph.rank < 1:
        return None
    probes = sum(size.bit_length() for size in graph.input_shape[1:])
    if probes * search_cost(graph) > SMALLEST_INPUT_BUDGET:
        return None
    weights = _weight_shapes(graph)
    best = list(graph.input_shape)
    for axis in range(1, len(best)):
        low, high = 1, graph.input_shape[axis]
        while low < high:
            middle = (low + high) // 2
            if _refuses(graph, tuple(best[:axis] + [middle] + best[axis + 1:]), weights) is not None:
                low = middle + 1
            else:
                high = middle
        best[axis] = low
    return tuple(best)


def size_fixed_by(graph: ir.Graph, smallest: ir.Shape | None) -> str | None:
    """The layer whose weights stop ``smallest`` (see :func:`smallest_input`) from being smaller along some
    axis (``layer 7 (linear)``, whose features a flatten takes from every position), or None when no weight
    depends on the input's spatial size there."""
    if smallest is None:
        return None
    weights = _weight_shapes(graph)
    for axis in range(1, len(smallest)):
        if smallest[axis] > 1:
            shape = (*smallest[:axis], smallest[axis] - 1, *smallest[axis + 1:])
            found = _refuses(graph, shape, weights, weights_only=True)
            if found is not None:
                return found
    return None


def _weight_shapes(graph: ir.Graph) -> dict[str, tuple[ir.Shape, ...]]:
    return {node.path: tuple(t.shape for t in (*node.params, *node.buffers)) for node in graph.nodes}


def _refuses(graph: ir.Graph, shape: ir.Shape, weights: dict[str, tuple[ir.Shape, ...]],
             weights_only: bool = False) -> str | None:
    """Why the network built at ``graph``'s input does not run at ``shape`` (a shape error, or the label of
    the first layer whose weights would change), or None."""
    probe, errors = infer(graph, shape, first_error_only=True)
    if errors:
        return None if weights_only else str(errors[0])
    for node in probe.nodes:
        if tuple(t.shape for t in (*node.params, *node.buffers)) != weights.get(node.path, ()):
            return node.label or node.op
    return None
