"""Budgets: a spec's ``constraints`` (max_params, max_macs, max_activation_bytes, input_sizes)."""

from __future__ import annotations

import os
from collections.abc import Callable

from cnnspec.analyse.rules import fmt
from cnnspec.errors import SpecError
from cnnspec.graph import Graph, Shape, SourcePos
from cnnspec.report.json_report import BYTES_PER_ELEMENT

Analyse = Callable[[str | os.PathLike[str], Shape], Graph]


def check_budgets(path: str | os.PathLike[str], graph: Graph, analyse: Analyse) -> list[SpecError]:
    """Every exceeded budget and every listed input size the network refuses, located at the constraint."""
    errors: list[SpecError] = []
    root = graph.root
    measured = {
        "max_params": (root.total_params, "parameters"),
        "max_macs": (root.total_macs, "MACs"),
        "max_activation_bytes": (root.activation_elems * BYTES_PER_ELEMENT, "activation bytes (batch 1)"),
    }
    for key, (value, what) in measured.items():
        if key in graph.constraints:
            limit, pos = graph.constraints[key]
            if value > limit:
                errors.append(SpecError(f"{key}: the network has {value:,} {what}, over the budget of {limit:,} "
                                        f"by {value - limit:,} ({value / limit:.2f}x)", pos))
    if "input_sizes" in graph.constraints:
        sizes, pos = graph.constraints["input_sizes"]
        for index, size in enumerate(sizes):
            errors.extend(_input_size(path, tuple(size), index, pos, analyse))
    return errors


def _input_size(path: str | os.PathLike[str], shape: Shape, index: int, pos: SourcePos, analyse: Analyse
                ) -> list[SpecError]:
    try:
        analyse(path, shape)
    except SpecError as exc:
        return [SpecError(f"input_sizes[{index}]: at input {fmt(shape)}: {exc.message}"
                          f"{f' (at {exc.pos})' if exc.pos else ''}", pos)]
    return []
