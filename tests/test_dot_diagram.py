"""The DOT text, parsed back with pydot: node, edge and cluster counts, shapes on edges, collapsed
totals, shortcut styles, quoting and determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.compile.dot import render_dot
from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph
from tests import dot_fixtures
from tests.dot_parse import Parsed, parse_dot

SPECS = Path(__file__).resolve().parent.parent / "specs"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's use of pyparsing

LENET5_SHAPES = ["1x28x28", "6x28x28", "6x28x28", "6x14x14", "16x10x10", "16x10x10", "16x5x5", "400",
                 "120", "120", "84", "84", "10"]


@pytest.fixture(scope="module")
def lenet5() -> Graph:
    return analyse_file(SPECS / "lenet5.yaml")


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return analyse_file(SPECS / "resnet18.yaml")


@pytest.fixture(scope="module")
def resnet18_full(resnet18: Graph) -> Parsed:
    return parse_dot(render_dot(resnet18))  # pydot takes ~0.8 s on it: parse once


def test_lenet5_is_one_chain_with_a_shape_on_every_edge(lenet5: Graph) -> None:
    d = parse_dot(render_dot(lenet5))
    assert len(d.nodes) == 12 + 2  # twelve layers, input and output
    assert len(d.edges) == 13 and not d.clusters
    assert d.edge_labels() == LENET5_SHAPES
    assert d.label("0") == ["conv 5x5, 6", "0 \u00b7 156 params"]
    assert d.label("7") == ["linear 400 -> 120", "7 \u00b7 48.1k params"]
    assert d.label("1") == ["sigmoid"]
    assert d.label("@input") == ["input", "1x28x28"]


def test_lenet5_depth_one_equals_full_depth_because_it_has_no_scopes(lenet5: Graph) -> None:
    assert render_dot(lenet5, depth=1) == render_dot(lenet5)


def test_resnet18_full_depth(resnet18_full: Parsed) -> None:
    d = resnet18_full
    adds = [n for n in d.nodes if n.endswith("@add")]
    assert len(d.nodes) == 61 + 8 + 2  # 61 layers (flatten included), 8 adds, input and output
    assert len(adds) == 8
    assert len(d.edges) == 61 + 2 * 8 + 1  # one into every layer, two into every add, one out
    assert len(d.clusters) == 4 + 8 + 3  # stages, blocks, projection shortcuts
    assert sorted(d.clusters["cluster:layer2"]) == []  # a stage holds only its block clusters
    assert sorted(d.clusters["cluster:layer2.0.downsample"]) == ["layer2.0.downsample.0",
                                                                  "layer2.0.downsample.1"]
    assert d.label("layer2.0.conv1") == ["conv 3x3, 128, stride 2", "conv1 \u00b7 73.7k params"]
    assert d.label("layer2.0.downsample.0") == ["conv 1x1, 128, stride 2", "0 \u00b7 8,192 params"]
    assert d.label("maxpool") == ["maxpool 3x3 /2"]
    assert "layer1.0.relu#2" in d.nodes  # the second use of the block's shared relu
    assert _styles(d) == {"main": 78 - 5 - 9, "identity": 5, "projection": 3 * 3}  # 3 edges per projection


def _styles(d: Parsed) -> dict[str, int]:
    """Edges by look: dashed = identity shortcut, the projection colour = projection branch."""
    out = {"main": 0, "identity": 0, "projection": 0}
    for _, _, attrs in d.edges:
        if attrs.get("style") == '"dashed"':
            out["identity"] += 1
        elif attrs.get("color") == '"#b45f06"':
            out["projection"] += 1
        else:
            out["main"] += 1
    return out


def test_resnet18_edges_carry_shapes_through_a_downsampling_block(resnet18_full: Parsed) -> None:
    into = {(src, dst): attrs["label"].strip('"') for src, dst, attrs in resnet18_full.edges}
    assert into[("layer1.1.relu#2", "layer2.0.conv1")] == "64x56x56"
    assert into[("layer1.1.relu#2", "layer2.0.downsample.0")] == "64x56x56"
    assert into[("layer2.0.downsample.1", "layer2.0@add")] == "128x28x28"
    assert into[("layer2.0.bn2", "layer2.0@add")] == "128x28x28"
    assert into[("layer2.0.relu#2", "layer2.1@add")] == "128x28x28"  # identity shortcut
    assert into[("fc", "@output")] == "1000"


def test_resnet18_depth_one_collapses_stages_with_their_totals(resnet18: Graph) -> None:
    d = parse_dot(render_dot(resnet18, depth=1))
    assert list(d.nodes) == ["@input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                             "layer4", "avgpool", "9", "fc", "@output"]
    assert len(d.edges) == 12 and not d.clusters
    assert d.label("layer2") == ["layer2", "stage: 2 x basic", "64x56x56 -> 128x28x28",
                                 "526k params, 411M MACs"]
    assert "params 525,568\\nMACs 411,041,792" in d.nodes["layer2"]["tooltip"]
    assert d.edge_labels()[4:9] == ["64x56x56", "64x56x56", "128x28x28", "256x14x14", "512x7x7"]


def test_resnet18_depth_two_draws_stages_as_clusters_of_collapsed_blocks(resnet18: Graph) -> None:
    d = parse_dot(render_dot(resnet18, depth=2))
    assert len(d.nodes) == 4 + 8 + 3 + 2 and len(d.edges) == 16
    assert d.clusters["cluster:layer3"] == ["layer3.0", "layer3.1"]
    assert d.cluster_labels["cluster:layer3"] == ["layer3", "stage: 2 x basic \u00b7 2.10M params, 411M MACs"]
    assert d.label("layer3.0") == ["layer3.0", "block basic", "128x28x28 -> 256x14x14",
                                   "919k params, 180M MACs"]


def test_depth_three_collapses_projection_shortcuts_as_summary_does(resnet18: Graph) -> None:
    d3 = parse_dot(render_dot(resnet18, depth=3))
    assert d3.clusters["cluster:layer2.0"] == [
        "layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu", "layer2.0.conv2", "layer2.0.bn2", "layer2.0.downsample",
        "layer2.0@add", "layer2.0.relu#2"]
    assert d3.label("layer2.0.downsample") == ["layer2.0.downsample", "projection shortcut",
                                               "64x56x56 -> 128x28x28", "8,448 params, 6.42M MACs"]
    assert ("layer2.0.downsample", "layer2.0@add") in [(src, dst) for src, dst, _ in d3.edges]
    assert len(d3.clusters) == 4 + 8  # stages and blocks; the 3 downsamples are one node each
    assert render_dot(resnet18, depth=4) == render_dot(resnet18)  # nothing deeper than 3 levels


def test_depth_zero_draws_the_model_as_one_node(resnet18: Graph) -> None:
    d = parse_dot(render_dot(resnet18, depth=0))
    assert list(d.nodes) == ["@input", "@model", "@output"]
    assert d.label("@model") == ["resnet18", "model", "3x224x224 -> 1000", "11.7M params, 1.81G MACs"]


def test_concat_joins_every_branch_and_passes_an_empty_one_through() -> None:
    d = parse_dot(render_dot(dot_fixtures.inception_like()))
    joins = [(src, attrs["label"].strip('"')) for src, dst, attrs in d.edges if dst == "@concat"]
    assert joins == [("b1", "4x16x16"), ("b2b", "6x16x16"), ("@input", "8x16x16")]
    assert d.label("@concat") == ["concat"]
    assert [e[2]["label"].strip('"') for e in d.edges if e[0] == "@concat"] == ["18x16x16"]


def test_any_name_is_quoted_and_escaped() -> None:
    text = render_dot(dot_fixtures.odd_names())
    d = parse_dot(text)
    assert 'c"1\\x' in d.nodes and "<b>&amp;" in d.nodes and "cluster_x" in d.nodes
    assert d.label('c"1\\x') == ["conv 3x3, 4", 'c"1\\x \u00b7 108 params']
    assert text.startswith('digraph "odd \\"model\\"" {')


def test_same_graph_same_bytes_and_rankdir(resnet18: Graph) -> None:
    first = render_dot(resnet18, depth=2, rankdir="LR")
    assert first == render_dot(analyse_file(SPECS / "resnet18.yaml"), depth=2, rankdir="LR")
    assert 'rankdir="LR"' in first
    with pytest.raises(ValueError, match="rankdir"):
        render_dot(resnet18, rankdir="BT")


def test_legend_lists_only_the_families_present(lenet5: object, resnet18: Graph) -> None:
    small = render_dot(lenet5)
    assert ">conv<" in small and ">linear<" in small and ">norm<" not in small
    assert "identity shortcut" not in small
    big = render_dot(resnet18)
    assert ">norm<" in big and "identity shortcut" in big and "projection shortcut" in big
