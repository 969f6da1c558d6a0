"""Analysed graphs for diagram cases no zoo spec has: concat branches (one of them empty) and names that
need escaping (a spec cannot even write some of them, so they are put on an analysed graph afterwards)."""

from __future__ import annotations

from dataclasses import replace

from cnnspec.frontend import analyse_text
from cnnspec.ir import Graph

INCEPTION_LIKE = """
name: inception_like
input: [8, 16, 16]
layers:
  - concat:
      branches:
        - [conv: {out: 4, kernel: 1, bias: false, name: b1}]
        - - conv: {out: 4, kernel: 1, bias: false, name: b2a}
          - relu: {name: b2r}
          - conv: {out: 6, kernel: 3, padding: 1, bias: false, name: b2b}
        - []
  - global_avgpool: {name: pool}
  - flatten: {name: flat}
  - linear: {out: 3, name: head}
"""

PLAIN = """
name: plain
input: [3, 8, 8]
layers: [conv: {out: 4, kernel: 3, bias: false, name: c}, relu: {name: r}, flatten: {name: f},
         linear: {out: 2, name: l}]
"""


def inception_like() -> Graph:
    """A concat with three branches, one of them empty (the input passed through)."""
    return analyse_text(INCEPTION_LIKE, "fixture.yaml")


def odd_names() -> Graph:
    """Names that need quoting in DOT: quotes, backslashes, HTML metacharacters, unicode."""
    graph = analyse_text(PLAIN, "fixture.yaml")
    names = {"c": 'c"1\\x', "r": "<b>&amp;", "f": "\u00fc}{", "l": "cluster_x"}
    nodes = tuple(n.evolve(name=names[n.name], path=names[n.name]) for n in graph.nodes)
    renamed = {id(old): new for old, new in zip(graph.nodes, nodes)}
    root = replace(graph.root, members=[renamed.get(id(m), m) for m in graph.root.members])
    return replace(graph, name='odd "model"', nodes=nodes, root=root)
