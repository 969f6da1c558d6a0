"""Captions in the lecture's words, shapes and counts."""

from __future__ import annotations

import pytest

from cnnspec.compile.dot.labels import block_kind, count_text, op_caption, shape_text
from cnnspec.graph import BlockCall, Node, SourcePos

POS = SourcePos("t.yaml", 1, 1)


def conv(**kw: object) -> dict[str, object]:
    attrs: dict[str, object] = {"in_channels": 3, "out_channels": 64, "kernel": (3, 3), "stride": (1, 1),
                                "dilation": (1, 1), "groups": 1, "padding": (1, 1)}
    attrs.update(kw)
    return attrs


@pytest.mark.parametrize(("op", "attrs", "caption"), [
    ("conv", conv(), "conv 3x3, 64"),
    ("conv", conv(stride=(2, 2)), "conv 3x3, 64, stride 2"),
    ("conv", conv(kernel=(1, 7), stride=(1, 2)), "conv 1x7, 64, stride 1x2"),
    ("conv", conv(kernel=(7,), stride=(1,), dilation=(2,)), "conv 7, 64, dilation 2"),
    ("conv", conv(in_channels=64, groups=64), "conv 3x3, 64, depthwise"),
    ("conv", conv(in_channels=128, out_channels=128, groups=32), "conv 3x3, 128, groups 32"),
    ("conv", conv(out_channels=1, weights=[[[0.0]]], trainable=False), "conv 3x3, 1, fixed"),
    ("maxpool", {"kernel": (3, 3), "stride": (2, 2)}, "maxpool 3x3 /2"),
    ("avgpool", {"kernel": (2, 2, 2), "stride": (2, 2, 2)}, "avgpool 2x2x2 /2"),
    ("adaptive_avgpool", {"out": (6, 6)}, "adaptive avgpool -> 6x6"),
    ("global_avgpool", {"out": (1, 1)}, "global avgpool"),
    ("linear", {"in_features": 512, "out_features": 1000, "over": "features"}, "linear 512 -> 1000"),
    ("linear", {"in_features": 96, "out_features": 384, "over": "channels"}, "linear 96 -> 384 per position"),
    ("groupnorm", {"groups": 32}, "groupnorm, 32 groups"),
    ("layernorm", {"over": "last"}, "layernorm (last axis)"),
    ("leaky_relu", {"slope": 0.2}, "leaky relu 0.2"),
    ("dropout", {"p": 0.5}, "dropout 0.5"),
    ("stochastic_depth", {"p": 0.1, "mode": "row"}, "stochastic depth 0.1"),
    ("permute", {"dims": (0, 2, 3, 1)}, "permute 0,2,3,1"),
    ("relu", {}, "relu"),
    ("layer_scale", {"channels": 96, "init": 1e-6}, "layer scale"),
])
def test_op_caption(op: str, attrs: dict[str, object], caption: str) -> None:
    assert op_caption(Node(op, "x", "x", POS, attrs=attrs)) == caption


@pytest.mark.parametrize(("n", "text"), [
    (0, "0"), (156, "156"), (9408, "9,408"), (48_120, "48.1k"), (147_456, "147k"), (1_180_160, "1.18M"),
    (11_689_512, "11.7M"), (1_814_073_344, "1.81G"),
])
def test_count_text(n: int, text: str) -> None:
    assert count_text(n) == text


def test_shape_text_leaves_out_batch_and_flattens() -> None:
    assert shape_text((64, 56, 56)) == "64x56x56"
    assert shape_text((400,)) == "400"


def test_block_kind_names_stage_repeats_and_block_kinds() -> None:
    blocks = [Node("block", str(i), f"layer1.{i}", POS, block=BlockCall("basic", {}, None)) for i in range(3)]
    assert block_kind(Node("stage", "layer1", "layer1", POS, children=blocks)) == "stage: 3 x basic"
    assert block_kind(blocks[0]) == "block basic"
    assert block_kind(Node("sequential", "features", "features", POS)) == "sequential"
