"""Reading diagrams back for the tests: DOT through pydot (an independent parser), SVG through the
standard library's XML parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pydot

_DEFAULTS = {"node", "edge", "graph"}


def _unquote(name: str) -> str:
    return name[1:-1].replace('\\"', '"').replace("\\\\", "\\") if name.startswith('"') else name


def label_lines(label: str) -> list[str]:
    """The visible lines of an HTML-like label ``<<b>conv 3x3</b><br/>...>`` (entities decoded)."""
    import html

    text = label[1:-1] if label.startswith("<") and label.endswith(">") else _unquote(label)
    parts = re.split(r"<br[^>]*/>", text)
    return [html.unescape(re.sub(r"<[^>]*>", "", p)) for p in parts if p]


@dataclass
class Parsed:
    nodes: dict[str, dict[str, str]]  # id -> attributes (the legend and defaults left out)
    edges: list[tuple[str, str, dict[str, str]]]
    clusters: dict[str, list[str]]  # cluster id -> the ids of the nodes directly inside it
    cluster_labels: dict[str, list[str]]

    def label(self, node_id: str) -> list[str]:
        return label_lines(self.nodes[node_id]["label"])

    def edge_labels(self) -> list[str]:
        return [_unquote(attrs["label"]) for _, _, attrs in self.edges]


def parse_dot(text: str) -> Parsed:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, "not one digraph"
    parsed = Parsed({}, [], {}, {})
    _walk(graphs[0], parsed, None)
    return parsed


def _walk(graph: pydot.Dot | pydot.Subgraph, out: Parsed, cluster: str | None) -> None:
    for node in graph.get_nodes():
        name = _unquote(node.get_name())
        if name in _DEFAULTS or name == "@legend":
            continue
        assert name not in out.nodes, f"node {name!r} defined twice"
        out.nodes[name] = node.get_attributes()
        if cluster is not None:
            out.clusters[cluster].append(name)
    for edge in graph.get_edges():
        ends = _unquote(edge.get_source()), _unquote(edge.get_destination())
        out.edges.append((*ends, edge.get_attributes()))
    for sub in graph.get_subgraphs():
        name = _unquote(sub.get_name())
        assert name.startswith("cluster"), name
        out.clusters[name] = []
        out.cluster_labels[name] = label_lines(sub.get_attributes()["label"])
        _walk(sub, out, name)
