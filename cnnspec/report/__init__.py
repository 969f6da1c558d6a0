"""Summaries of an analysed graph: a text table, a markdown table, or the JSON contract (design.md §5)."""

from __future__ import annotations

from cnnspec.ir import Graph, Shape


def render(graph: Graph, fmt: str = "text", depth: int | None = None, min_input: Shape | None = None,
           fixed_by: str | None = None) -> str:
    """``min_input``: the smallest input the built network runs on; ``fixed_by``: the layer whose weights fix
    the input's size, if any (``cnnspec.frontend.smallest_input`` and ``size_fixed_by``)."""
    if fmt == "json":
        from cnnspec.report.json_report import to_json

        return to_json(graph, min_input)
    from cnnspec.report.table import markdown, text

    return (markdown if fmt == "markdown" else text)(graph, depth, min_input, fixed_by)
