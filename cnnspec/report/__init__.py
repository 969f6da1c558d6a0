"""Summaries of an analysed graph: a text table, a markdown table, or the JSON contract (design.md §5)."""

from __future__ import annotations

from cnnspec.ir import Graph, Shape


def render(graph: Graph, fmt: str = "text", depth: int | None = None, min_input: Shape | None = None) -> str:
    if fmt == "json":
        from cnnspec.report.json_report import to_json

        return to_json(graph)
    from cnnspec.report.table import markdown, text

    return (markdown if fmt == "markdown" else text)(graph, depth, min_input)
