"""Per-instance values in stages (``$index``, ``$block``, ``$blocks``), float arithmetic, list-valued block
arguments and names as nn.Module allows them (``block1-0``), through analysis and the torch backend."""

from __future__ import annotations

import ast

import pytest
import torch

from cnnspec.compile.torch import build_module, render_source
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_text

SPEC = """\
name: staged
params: {p: 0.1}
input: [3, 16, 16]
blocks:
  unit:
    args: {w: int, k: "list[int]", pad: [0, 3], drop: float}
    layers:
      - conv: {out: $w, kernel: $k, padding: $pad, name: conv}
      - relu
      - stochastic_depth: {p: $drop, name: sd}
layers:
  - stage: {name: block1-0, block: unit, repeat: 2, args: {w: 8, k: [1, 7], drop: "$p * $block / ($blocks - 1)"}}
  - sequential:
      name: features
      layers:
        - stage: {block: unit, repeat: 3, args: {w: "8 + $index", k: [7, 1], pad: [3, 0],
                                                 drop: "$p * $block / ($blocks - 1)"}}
"""


def _depths(text: str = SPEC) -> list[tuple[str, float]]:
    graph = analyse_text(text)
    return [(n.path, n.attrs.p) for n in graph.leaves() if n.op == "stochastic_depth"]


def test_block_and_blocks_follow_torchvisions_schedule() -> None:
    # torchvision (ConvNeXt, EfficientNet): p * block_id / (total_blocks - 1.0), over every stage's blocks
    expected = [0.1 * i / (5 - 1.0) for i in range(5)]
    assert _depths() == list(zip(["block1-0.0.sd", "block1-0.1.sd", "features.0.0.sd", "features.0.1.sd",
                                  "features.0.2.sd"], expected, strict=True))


def test_index_counts_within_the_stage() -> None:
    graph = analyse_text(SPEC)
    widths = [n.output_shape[0] for n in graph.leaves() if n.op == "conv"]
    assert widths == [8, 8, 8, 9, 10]


def test_list_arguments_reach_the_layers() -> None:
    graph = analyse_text(SPEC)
    kernels = [(n.attrs.kernel, n.attrs.padding) for n in graph.leaves() if n.op == "conv"]
    assert kernels == [((1, 7), (0, 3))] * 2 + [((7, 1), (3, 0))] * 3


@pytest.mark.slow
def test_dashed_names_in_state_dict_and_generated_python() -> None:
    graph = analyse_text(SPEC)
    keys = [key for key, _, _ in graph.state_dict_keys()]
    assert keys[:2] == ["block1-0.0.conv.weight", "block1-0.0.conv.bias"]
    source = render_source(graph)
    ast.parse(source)
    assert "self.add_module('block1-0', nn.Sequential(" in source
    assert "self.get_submodule('block1-0')(x)" in source
    module = build_module(graph).eval()
    assert list(module.state_dict()) == keys
    assert [tuple(t.shape) for t in module.state_dict().values()] == [s for _, s, _ in graph.state_dict_keys()]
    assert module(torch.randn(2, 3, 16, 16)).shape == (2, 10, 16, 16)
    sd = [m.p for m in module.modules() if type(m).__name__ == "StochasticDepth"]
    assert sd == [p for _, p in _depths()]


def test_a_float_where_a_whole_number_is_wanted_is_refused_where_written() -> None:
    text = SPEC.replace("args: {w: 8,", 'args: {w: "80 * $p",')
    with pytest.raises(SpecError) as info:
        analyse_text(text)
    assert str(info.value) == ("<string>:12:63: error: argument `w` of block `unit` should be a whole number (int), "
                               "got 8.0")


def test_index_in_a_stage_inside_a_block() -> None:
    text = SPEC.replace("layers:\n  - stage: {name: block1-0", """  pair:
    layers:
      - stage: {block: unit, repeat: 2, args: {w: "4 * ($index + 1)", k: [1, 1], pad: [0, 0], drop: 0.0}}
layers:
  - pair
  - stage: {name: block1-0""")
    graph = analyse_text(text)
    assert [n.output_shape[0] for n in graph.leaves() if n.op == "conv"][:2] == [4, 8]
    # the model's own stages still count 5 blocks: the one inside `pair` is not among them
    assert [p for path, p in _depths(text) if path.startswith("block1-0")] == [0.0, 0.1 / 4]


PREFIXED = """\
name: prefixed
input: [3, 8, 8]
blocks:
  unit:
    layers:
      - concat: {branches: [[], [conv: {out: 4, kernel: 3, padding: 1, name: conv}]]}
layers:
  - stage: {name: denseblock1, block: unit, repeat: 3, prefix: denselayer, start: 1}
  - stage: {name: block1, block: unit, repeat: 2, prefix: block1-}
"""


def test_prefix_names_the_instances_as_torchvision_does() -> None:
    graph = analyse_text(PREFIXED)
    keys = [key for key, _, _ in graph.state_dict_keys() if key.endswith("weight")]
    assert keys == ["denseblock1.denselayer1.conv.weight", "denseblock1.denselayer2.conv.weight",
                    "denseblock1.denselayer3.conv.weight", "block1.block1-0.conv.weight", "block1.block1-1.conv.weight"]
    assert [n.output_shape[0] for n in graph.leaves() if n.op == "concat"] == [7, 11, 15, 19, 23]
    module = build_module(graph)
    assert list(module.state_dict()) == [key for key, _, _ in graph.state_dict_keys()]
    source = render_source(graph)
    assert "self.denselayer3 = Unit(in_channels + 8)" in source  # repeated widths are counted, not repeated
    assert module(torch.randn(2, 3, 8, 8)).shape == (2, 23, 8, 8)


def test_a_prefix_that_makes_no_name_is_refused_where_written() -> None:
    with pytest.raises(SpecError) as info:
        analyse_text(PREFIXED.replace("prefix: block1-}", "prefix: block.}"))
    assert str(info.value) == ("<string>:9:59: error: layer name `block.0` contains `.`, which nn.Module refuses: `.` "
                               "separates the parts of a state_dict key; use `_` or `-` (a stage names its instances "
                               "`prefix` + a number)")


def test_first_block_opens_the_stage() -> None:
    text = PREFIXED.replace("  - stage: {name: block1, block: unit,", """  - stage: {name: block1, first_block: opening, block: unit,""").replace("""layers:
  - stage: {name: denseblock1""", """  opening:
    layers:
      - conv: {out: 5, kernel: 1, name: proj}
layers:
  - stage: {name: denseblock1""")
    graph = analyse_text(text)
    keys = [key for key, _, _ in graph.state_dict_keys() if key.startswith("block1.")]
    assert keys == ["block1.block1-0.proj.weight", "block1.block1-0.proj.bias", "block1.block1-1.conv.weight",
                    "block1.block1-1.conv.bias"]
    assert graph.output_shape == (9, 8, 8)
    with pytest.raises(SpecError) as info:
        analyse_text(text.replace("first_block: opening", "first_block: openin"))
    assert str(info.value) == "<string>:12:40: error: unknown block `openin`; did you mean `opening`?"
FIRST_BLOCK = """\
name: mb
input: [8, 8, 8]
blocks:
  plain:
    args: {w: int, stride: 1, p: 0.0}
    layers:
      - conv: {out: $w, kernel: 3, stride: $stride, padding: 1, name: conv}
  res:
    args: {w: int, p: float}
    layers:
      - residual:
          body:
            - conv: {out: $w, kernel: 3, padding: 1, name: conv}
            - stochastic_depth: {p: $p, name: sd}
layers:
  - stage: {first_block: plain, block: res, repeat: 3, first: {stride: 2}, args: {w: 16, p: "0.3 * $block / $blocks"}}
"""


def test_first_block_gives_instance_zero_another_block() -> None:
    graph = analyse_text(FIRST_BLOCK)
    kinds = [(s.path, s.block.kind) for s in graph.root.members[0].members]
    assert kinds == [("0.0", "plain"), ("0.1", "res"), ("0.2", "res")]
    assert [(n.path, n.attrs.p) for n in graph.leaves() if n.op == "stochastic_depth"] == [
        ("0.1.sd", 0.3 * 1 / 3), ("0.2.sd", 0.3 * 2 / 3)]
    assert graph.output_shape == (16, 4, 4)
    source = render_source(graph)
    assert "Plain(8, 16, stride=2)," in source and f"Res(16, 16, {0.3 * 1 / 3!r})," in source


def test_unknown_first_block_is_located() -> None:
    with pytest.raises(SpecError) as info:
        analyse_text(FIRST_BLOCK.replace("first_block: plain", "first_block: plane"))
    assert str(info.value) == "<string>:16:26: error: unknown block `plane`; did you mean `plain`?"
