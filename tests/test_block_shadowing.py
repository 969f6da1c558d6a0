"""A spec parameter named like a block's own quantity (``$in_channels``) is refused inside a block that has
no argument of that name (issue 10, item 8; the refusal's text is in tests/broken), and only there."""

from __future__ import annotations

from cnnspec.frontend import analyse_text

SPEC = """\
name: ok
params: {in_channels: 3, channels: 8}
input: [$in_channels, 16, 16]
blocks:
  dw:
    args: {in_channels: int}
    layers:
      - conv: {out: $in_channels, kernel: 3, padding: 1, groups: $in_channels}
layers:
  - conv: {out: $channels, kernel: 3, padding: 1}
  - dw: {in_channels: $channels}
"""


def test_a_block_argument_of_that_name_and_the_model_level_param_are_accepted() -> None:
    graph = analyse_text(SPEC)
    convs = [(n.attrs.in_channels, n.attrs.out_channels, n.attrs.groups) for n in graph.nodes if n.op == "conv"]
    assert convs == [(3, 8, 1), (8, 8, 8)]
