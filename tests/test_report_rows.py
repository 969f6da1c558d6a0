"""Captions of the summary rows, also on the partial graphs the language server shows."""

from __future__ import annotations

from cnnspec.frontend import analyse, load_text
from cnnspec.report.rows import caption

STOPS_AT_LINEAR = """\
name: t
input: [1, 3, 8, 8]
layers:
  - conv: {out: 4, kernel: 3}
  - linear: {out: 10}
  - flatten: {}
  - relu6: {}
  - conv: {out: 4, kernel: 3, stride: 2}
"""


def test_caption_of_a_partial_graph() -> None:
    """Shapes stop at the linear layer's error; the nodes after it have no attrs and are captioned by
    their op's plain name (before, ``caption`` raised AttributeError on them)."""
    analysis = analyse(load_text(STOPS_AT_LINEAR, "t.yaml"), None)
    assert [str(e) for e in analysis.errors] == [
        ("t.yaml:5:5: error: layer 1 (linear) needs a flat feature vector but gets a 4x1x6x6 tensor; add `- flatten` "
         "before it, or set `over: channels` to apply it at every position")]
    assert analysis.graph is not None
    assert [(node.attrs is None, caption(node)) for node in analysis.graph.nodes] == [
        (False, "conv 3x3x3, 4"), (True, "linear"), (True, "flatten"), (True, "relu6"), (True, "conv")]
