"""Budgets: a spec's ``constraints`` (max_params, max_macs, max_flops, max_activation_bytes,
min_receptive_field, input_sizes).

An input size is valid when the network built for the spec's own input runs on it unchanged: same rank
and channels, every layer's output non-empty, and the same weights (a ``linear`` after ``flatten`` whose
size follows the input is a different network). Each size re-runs only ``infer``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnspec.errors import SpecError
from cnnspec.frontend.ast import SpecAst
from cnnspec.frontend.expr import ExprError, evaluate, is_expression
from cnnspec.frontend.infer import infer
from cnnspec.ir import Graph, Shape
from cnnspec.ops.shape import fmt
from cnnspec.report.rows import rf_text


def attach_constraints(graph: Graph, spec: SpecAst, params: Mapping[str, Any]) -> list[SpecError]:
    """Store the spec's ``constraints`` on ``graph`` with their positions, the ``$expressions`` of
    ``input_sizes`` evaluated with the spec's ``params``; the errors of sizes that do not evaluate to
    positive whole numbers (those sizes are left out)."""
    errors: list[SpecError] = []
    graph.constraints = {key: (value, spec.spots.pos("constraints", key)) for key, value in spec.constraints.items()}
    graph.constraint_items = {}
    if "input_sizes" not in spec.constraints:
        return errors
    sizes: list[list[int] | None] = []  # None: its expression failed
    for index, size in enumerate(spec.constraints["input_sizes"]):
        graph.constraint_items[("input_sizes", index)] = spec.spots.pos("constraints", "input_sizes", index)
        try:
            sizes.append([_size(value, params) for value in size])
        except ExprError as exc:
            errors.append(SpecError(f"input_sizes[{index}]: {exc}", graph.constraint_items[("input_sizes", index)]))
            sizes.append(None)
    graph.constraints["input_sizes"] = (sizes, graph.constraints["input_sizes"][1])
    return errors


def _size(value: Any, params: Mapping[str, Any]) -> int:
    if not is_expression(value):
        return int(value)
    result = evaluate(value, params)
    if isinstance(result, bool) or not isinstance(result, int) or result < 1:
        raise ExprError(f"`{value}` is {result!r}; sizes are positive whole numbers")
    return result

MAX_INPUT_SIZES = 100  # constraints.input_sizes: one analysis each (resnet50: about 5 ms)


def check_budgets(graph: Graph) -> list[SpecError]:
    """Every exceeded budget and every listed input size the network refuses, located at the constraint
    (at the offending item of ``input_sizes``)."""
    errors: list[SpecError] = []
    root = graph.root
    measured = {
        "max_params": (root.total_params, "parameters"),
        "max_macs": (root.total_macs, "MACs"),
        "max_flops": (2 * root.total_macs, "FLOPs (2 x MACs)"),
        "max_activation_bytes": (graph.activation_bytes, "activation bytes (batch 1)"),
    }
    for key, (value, what) in measured.items():
        if key in graph.constraints:
            limit, pos = graph.constraints[key]
            if value > limit:
                errors.append(SpecError(f"{key}: the network has {value:,} {what}, over the budget of {limit:,} "
                                        f"by {value - limit:,} ({value / limit:.2f}x)", pos))
    if "min_receptive_field" in graph.constraints:
        problem = _receptive_field(graph, *graph.constraints["min_receptive_field"])
        errors += [problem] if problem else []
    if "input_sizes" in graph.constraints:
        sizes, pos = graph.constraints["input_sizes"]
        if len(sizes) > MAX_INPUT_SIZES:
            errors.append(SpecError(f"input_sizes lists {len(sizes):,} sizes; at most {MAX_INPUT_SIZES:,} (each is "
                                    "a whole analysis of the network): keep the sizes that matter", pos))
            return errors
        seen: set[tuple[int, ...]] = set()
        for index, size in enumerate(sizes):
            if size is None:  # its expression failed, reported by attach_constraints
                continue
            if tuple(size) in seen:  # a repeated size is analysed once
                continue
            seen.add(tuple(size))
            why = _input_size(graph, tuple(size))
            if why:
                errors.append(SpecError(f"input_sizes[{index}]: {why}", graph.constraint_items[("input_sizes", index)]))
    return errors


def _receptive_field(graph: Graph, wanted: list[int], pos: Any) -> SpecError | None:
    """``min_receptive_field``: one size per spatial axis of the input; every axis of the output's receptive
    field must cover at least that many input pixels."""
    spatial = graph.input_shape[1:]
    if len(wanted) != len(spatial):
        return SpecError(f"min_receptive_field: give one size per spatial axis of the input ({fmt(spatial)}, "
                         f"without the channels), got {len(wanted)}", pos)
    have = graph.root.rf_size
    if all(h >= w for h, w in zip(have, wanted)):
        return None
    return SpecError(f"min_receptive_field: the output's receptive field is {rf_text(have)} input pixels, smaller "
                     f"than the {fmt(tuple(wanted))} asked for (deeper layers, larger kernels, strides or dilation "
                     "widen it)", pos)


def _input_size(graph: Graph, shape: Shape) -> str | None:
    """Why the network cannot take ``shape``, or None."""
    own = graph.input_shape
    if len(shape) != len(own):
        return f"{fmt(shape)} has {len(shape)} sizes but the network's input ({fmt(own)}) has {len(own)}"
    if shape[0] != own[0]:
        return f"{fmt(shape)} has {shape[0]} channels but the network takes {own[0]} (input {fmt(own)})"
    other, errors = infer(graph, shape, first_error_only=True)
    if errors:
        exc = errors[0]
        return f"at input {fmt(shape)}: {exc.message}{f' (at {exc.pos})' if exc.pos else ''}"
    return _weights_differ(graph, other, shape)


def _weights_differ(graph: Graph, other: Graph, shape: Shape) -> str | None:
    theirs = {key: size for key, size, _ in other.state_dict_keys()}
    for key, size, _ in graph.state_dict_keys():
        if theirs.get(key) != size:
            found = fmt(theirs[key]) if key in theirs else "missing"
            return (f"at input {fmt(shape)}, `{key}` would be {found} instead of {fmt(size)} (its size follows "
                    "the input; a global or adaptive pool before `flatten` makes it independent)")
    return None
