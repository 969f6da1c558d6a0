"""Budgets: a spec's ``constraints`` (max_params, max_macs, max_activation_bytes, input_sizes).

An input size is valid when the network built for the spec's own input runs on it unchanged: same rank
and channels, every layer's output non-empty, and the same weights (a ``linear`` after ``flatten`` whose
size follows the input is a different network). Each size re-runs only ``infer``."""

from __future__ import annotations

from cnnspec.errors import SpecError
from cnnspec.frontend.infer import infer
from cnnspec.ir import Graph, Shape
from cnnspec.ops.shape import fmt

MAX_INPUT_SIZES = 100  # constraints.input_sizes: one analysis each (resnet50: about 5 ms)


def check_budgets(graph: Graph) -> list[SpecError]:
    """Every exceeded budget and every listed input size the network refuses, located at the constraint
    (at the offending item of ``input_sizes``)."""
    errors: list[SpecError] = []
    root = graph.root
    measured = {
        "max_params": (root.total_params, "parameters"),
        "max_macs": (root.total_macs, "MACs"),
        "max_activation_bytes": (graph.activation_bytes, "activation bytes (batch 1)"),
    }
    for key, (value, what) in measured.items():
        if key in graph.constraints:
            limit, pos = graph.constraints[key]
            if value > limit:
                errors.append(SpecError(f"{key}: the network has {value:,} {what}, over the budget of {limit:,} "
                                        f"by {value - limit:,} ({value / limit:.2f}x)", pos))
    if "input_sizes" in graph.constraints:
        sizes, pos = graph.constraints["input_sizes"]
        if len(sizes) > MAX_INPUT_SIZES:
            errors.append(SpecError(f"input_sizes lists {len(sizes):,} sizes; at most {MAX_INPUT_SIZES:,} (each is "
                                    "a whole analysis of the network): keep the sizes that matter", pos))
            return errors
        seen: set[tuple[int, ...]] = set()
        for index, size in enumerate(sizes):
            if tuple(size) in seen:  # a repeated size is analysed once
                continue
            seen.add(tuple(size))
            problem = _input_size(graph, tuple(size))
            if problem:
                errors.append(SpecError(f"input_sizes[{index}]: {problem}", graph.constraint_items[("input_sizes", index)]))
    return errors


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
