"""Captions in the lecture's words (each op's own, read from analysed specs), shapes and counts."""

from __future__ import annotations

import pytest

from cnnspec.compile.dot.labels import block_kind, count_text, shape_text
from cnnspec.frontend import analyse_text
from cnnspec.ops import REGISTRY


def _first(layer: str, shape: str = "[3, 8, 8]") -> str:
    graph = analyse_text(f"name: t\ninput: {shape}\nlayers: [{layer}]\n")
    node = graph.leaves()[0]
    return REGISTRY[node.op].caption(node.attrs)


@pytest.mark.parametrize(("layer", "shape", "caption"), [
    ("conv: {out: 64, kernel: 3, padding: 1}", "[3, 8, 8]", "conv 3x3, 64"),
    ("conv: {out: 64, kernel: 3, stride: 2}", "[3, 8, 8]", "conv 3x3, 64, stride 2"),
    ("conv: {out: 64, kernel: [1, 7], stride: [1, 2]}", "[3, 8, 8]", "conv 1x7, 64, stride 1x2"),
    ("conv: {out: 64, kernel: 7, dilation: 2}", "[3, 32]", "conv 7, 64, dilation 2"),
    ("conv: {out: 64, kernel: 3, groups: 64}", "[64, 8, 8]", "conv 3x3, 64, depthwise"),
    ("conv: {out: 128, kernel: 3, groups: 32}", "[128, 8, 8]", "conv 3x3, 128, groups 32"),
    ("conv: {weights: [[0, 1, 0], [1, -4, 1], [0, 1, 0]], trainable: false}", "[1, 8, 8]", "conv 3x3, 1, fixed"),
    ("maxpool: {kernel: 3, stride: 2}", "[3, 8, 8]", "maxpool 3x3 /2"),
    ("avgpool: {kernel: 2}", "[3, 4, 4, 4]", "avgpool 2x2x2 /2"),
    ("adaptive_avgpool: {out: 6}", "[3, 8, 8]", "adaptive avgpool -> 6x6"),
    ("global_avgpool", "[3, 8, 8]", "global avgpool"),
    ("linear: {out: 1000}", "[512]", "linear 512 -> 1000"),
    ("linear: {out: 384, over: channels}", "[96, 4, 4]", "linear 96 -> 384 per position"),
    ("groupnorm: {groups: 32}", "[64, 4, 4]", "groupnorm, 32 groups"),
    ("layernorm: {over: last}", "[3, 8, 8]", "layernorm (last axis)"),
    ("leaky_relu: {slope: 0.2}", "[3, 8, 8]", "leaky relu 0.2"),
    ("dropout: {p: 0.5}", "[3, 8, 8]", "dropout 0.5"),
    ("stochastic_depth: {p: 0.1, mode: row}", "[3, 8, 8]", "stochastic depth 0.1"),
    ("permute: {dims: [0, 2, 3, 1]}", "[3, 8, 8]", "permute 0,2,3,1"),
    ("relu", "[3, 8, 8]", "relu"),
    ("hardtanh: {min: 0, max: 6}", "[3, 8, 8]", "hardtanh [0, 6]"),
    ("layer_scale: {init: 1.0e-6}", "[96, 4, 4]", "layer scale"),
    ("conv_transpose: {out: 64, kernel: 4, stride: 2, padding: 1}", "[128, 8, 8]", "transposed conv 4x4, 64, stride 2"),
    ("conv_transpose: {out: 8, kernel: 3, dilation: 2, groups: 4}", "[8, 9]", "transposed conv 3, 8, dilation 2, groups 4"),
    ("upsample: {scale: 2}", "[3, 8, 8]", "upsample x2 (nearest)"),
    ("upsample: {size: [16, 12], mode: linear, align_corners: true}", "[3, 8, 8]",
     "upsample -> 16x12 (bilinear, align corners)"),
    ("upsample: {scale: [1, 1.5], mode: linear}", "[3, 8, 8]", "upsample x(1, 1.5) (bilinear)"),
    ("upsample: {scale: 2.0, mode: linear}", "[3, 4, 4, 4]", "upsample x2 (trilinear)"),
    ("pad: {left: 6}", "[2, 20]", "pad left 6"),
    ("pad: {padding: 3, mode: reflect}", "[3, 8, 8]", "reflect pad 3"),
    ("pad: {top: 1, bottom: 2, mode: replicate}", "[3, 8, 8]", "replicate pad top 1, bottom 2"),
    ("pad: {padding: 1, value: -1}", "[3, 8, 8]", "pad 1 (value -1)"),
    ("pixel_shuffle: {factor: 2}", "[12, 4, 4]", "pixel shuffle x2"),
    ("pixel_unshuffle: {factor: 2}", "[3, 4, 4]", "pixel unshuffle x2"),
    ("channel_shuffle: {groups: 3}", "[12, 4, 4]", "channel shuffle, 3 groups"),
    ("channel_split: {parts: 2, part: 1}", "[6, 4, 4]", "channels 3..5 (part 2 of 2)"),
    ("crop: {size: [2, 3]}", "[6, 4, 4]", "centre crop 2x3"),
    ("crop: {size_of: input}", "[6, 4, 4]", "centre crop 4x4 (size of input)"),
    ("slice: {channels: [0, 3], ranges: [null, [1, -1]]}", "[6, 4, 4]", "slice [:, 0:3, :, 1:-1]"),
    ("slice: {ranges: [[-2, null]]}", "[6, 9]", "slice [:, :, -2:]"),
    ("reshape: {shape: [512, 4, 4]}", "[8192]", "unflatten -> 512x4x4"),
    ("reshape: {shape: [-1]}", "[3, 8, 8]", "reshape -> 192"),
    ("elu", "[3, 8, 8]", "elu"),
    ("elu: {alpha: 0.5}", "[3, 8, 8]", "elu 0.5"),
    ("mish", "[3, 8, 8]", "mish"),
    ("prelu", "[3, 8, 8]", "prelu"),
    ("prelu: {per_channel: true}", "[3, 8, 8]", "prelu per channel"),
])
def test_op_caption(layer: str, shape: str, caption: str) -> None:
    assert _first(layer, shape) == caption


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
    graph = analyse_text("""
name: t
input: [3, 8, 8]
blocks: {basic: {layers: [relu]}}
layers:
  - stage: {name: layer1, block: basic, repeat: 3}
  - sequential: {name: features, layers: [relu]}
""")
    stage, features = graph.root.members
    assert block_kind(stage) == "stage: 3 x basic"
    assert block_kind(stage.members[0]) == "block basic"
    assert block_kind(features) == "sequential"
