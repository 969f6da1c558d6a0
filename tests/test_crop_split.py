"""`crop`, `slice` and `channel_split` in the networks that need them: the original U-Net's cropped skip (its
size written, or taken from the decoder's map with `size_of`), a 1x1 conv's output split with `slice`, and a
ShuffleNet V2 unit, each against a hand-written torch module (state_dict, outputs) and onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnspec.compile.onnx import to_model_proto
from cnnspec.compile.onnx.check import run_model
from cnnspec.compile.torch import build_module, render_source
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_text
from cnnspec.ops import REGISTRY

torch.set_num_threads(1)

# Ronneberger et al.'s level: unpadded 3x3 convs shrink the map, the skip is cropped to the decoder's size
CROPPED_UNET = """\
name: cropped_unet
input: [1, 44, 44]
layers:
  - conv: {out: 8, kernel: 3, as: e1}                # 8x42x42
  - maxpool: {kernel: 2}                             # 8x21x21
  - conv: {out: 16, kernel: 3}                       # 16x19x19
  - conv_transpose: {out: 8, kernel: 2, stride: 2, as: up}   # 8x38x38
  - crop: {size: 38, from: e1, as: skip}             # the centre 38x38 of e1
  - concat: {of: [skip, up]}                         # 16x38x38
  - conv: {out: 2, kernel: 1}
"""

# the same, the crop's size taken from the decoder's map: no size worked out by hand
CROPPED_UNET_SIZE_OF = CROPPED_UNET.replace("crop: {size: 38, from: e1, as: skip}  ",
                                            "crop: {size_of: up, from: e1, as: skip}")

# a 1x1 conv's output split in two with `slice` (as x[:, :8], x[:, 8:]), one half trimmed at the border
SPLIT = """\
name: split
input: [3, 12, 10]
layers:
  - conv: {out: 12, kernel: 1, as: both}
  - slice: {channels: [0, 6], ranges: [[2, -2], [-8, null]], as: a}
  - slice: {from: both, channels: [-6, null], ranges: [[2, 10], [2, 100]]}
  - mul: {of: [a, previous]}
"""

# a block whose crop takes its own input's size, used at two sizes: one class, the start worked out in forward
TRIM = """\
name: trimmed
input: [4, 16, 16]
blocks:
  trim:
    layers:
      - conv: {out: 4, kernel: 3, padding: 2}
      - crop: {size_of: input}
layers:
  - trim
  - maxpool: {kernel: 2}
  - trim
"""

UNIT = """\
name: unit
input: [8, 6, 6]
layers:
  - concat:
      branches:
        - - channel_split: {parts: 2, part: 0}
        - - channel_split: {parts: 2, part: 1}
          - sequential:
              name: branch2
              layers:
                - conv: {out: 4, kernel: 1, bias: false}
                - batchnorm
                - relu
                - conv: {out: 4, kernel: 3, padding: 1, groups: 4, bias: false}
                - batchnorm
  - channel_shuffle: {groups: 2}
"""


class HandCroppedUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(1, 8, 3))
        self.add_module("2", nn.Conv2d(8, 16, 3))
        self.add_module("3", nn.ConvTranspose2d(16, 8, 2, stride=2))
        self.add_module("5", nn.Conv2d(16, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.get_submodule("0")(x)
        y = self.get_submodule("3")(self.get_submodule("2")(nn.functional.max_pool2d(e1, 2)))
        skip = e1[:, :, 2:40, 2:40]  # (42 - 38) // 2 = 2
        return self.get_submodule("5")(torch.cat([skip, y], 1))


class HandUnit(nn.Module):
    """torchvision's ShuffleNet V2 InvertedResidual with stride 1."""

    def __init__(self) -> None:
        super().__init__()
        self.branch2 = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                     nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        n, c, h, w = out.size()
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class HandSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(3, 12, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.get_submodule("0")(x)
        return both[:, :6, 2:-2, -8:] * both[:, -6:, 2:10, 2:100]


class HandTrim(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(4, 4, 3, padding=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        return self.get_submodule("0")(x)[:, :, 1:1 + h, 1:1 + w]  # (L + 2 - L) // 2 = 1


def _same(text: str, hand: nn.Module) -> None:
    graph = analyse_text(text)
    torch.manual_seed(0)
    hand.eval()
    with torch.no_grad():
        for tensor in hand.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape) + 0.5)
    ours = build_module(graph).eval()
    ours.load_state_dict(hand.state_dict(), strict=True)
    x = torch.randn(3, *graph.input_shape)
    with torch.no_grad():
        want = hand(x)
        assert torch.equal(ours(x), want)
    weights = {k: v.numpy() for k, v in hand.state_dict().items()}
    got = run_model(to_model_proto(graph, weights), x.numpy())
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_cropped_skip_equals_hand_written_unet() -> None:
    graph = analyse_text(CROPPED_UNET)
    crop = next(n for n in graph.leaves() if n.op == "crop")
    assert (crop.input_shape, crop.output_shape, crop.attrs.starts) == ((8, 42, 42), (8, 38, 38), (2, 2))
    assert "skip = e1[:, :, 2:40, 2:40]" in render_source(graph)
    _same(CROPPED_UNET, HandCroppedUNet())


def test_crop_to_a_named_tensors_size_equals_hand_written_unet() -> None:
    graph = analyse_text(CROPPED_UNET_SIZE_OF)
    crop = next(n for n in graph.leaves() if n.op == "crop")
    assert (crop.input_shapes, crop.output_shape, crop.attrs.starts) == (((8, 42, 42), (8, 38, 38)), (8, 38, 38),
                                                                          (2, 2))
    assert REGISTRY["crop"].caption(crop.attrs) == "centre crop 38x38 (size of up)"
    assert (crop.rf_size, crop.rf_stride) == ((3, 3), (1, 1))  # e1's: a crop keeps each position's field
    assert (graph.root.total_params, graph.root.total_macs) == (1802, 773920)
    assert "skip = e1[:, :, 2:40, 2:40]" in render_source(graph)
    _same(CROPPED_UNET_SIZE_OF, HandCroppedUNet())


def test_a_blocks_crops_to_its_own_sizes_in_one_class() -> None:
    graph = analyse_text(TRIM)
    crops = [n for n in graph.leaves() if n.op == "crop"]
    assert [(n.attrs.starts, n.output_shape) for n in crops] == [((1, 1), (4, 16, 16)), ((1, 1), (4, 8, 8))]
    source = render_source(graph)
    assert source.count("class Trim(nn.Module)") == 1 and "x = center_crop(x, x_in.shape[2:])" in source
    _same(TRIM, nn.Sequential(HandTrim(), nn.MaxPool2d(2), HandTrim()))


def test_channel_and_border_slices_equal_hand_written_indexing() -> None:
    graph = analyse_text(SPLIT)
    slices = [n for n in graph.leaves() if n.op == "slice"]
    assert [n.output_shape for n in slices] == [(6, 8, 8), (6, 8, 8)]
    assert [REGISTRY["slice"].caption(n.attrs) for n in slices] == ["slice [:, 0:6, 2:-2, -8:]",
                                                                     "slice [:, -6:, 2:10, 2:100]"]
    source = render_source(graph)
    assert "a = both[:, 0:6, 2:-2, -8:]" in source and "x = both[:, -6:, 2:10, 2:100]" in source
    _same(SPLIT, HandSplit())


def test_shufflenet_unit_equals_torchvisions_inverted_residual() -> None:
    source = render_source(analyse_text(UNIT))
    assert "x.chunk(2, dim=1)[0]" in source and "x.chunk(2, dim=1)[1]" in source
    _same(UNIT, HandUnit())


def test_a_crop_larger_than_its_input_is_refused_where_written() -> None:
    with pytest.raises(SpecError) as info:
        analyse_text(CROPPED_UNET.replace("size: 38", "size: [38, 44]"))
    assert str(info.value) == ("<string>:8:18: error: layer 4 (crop): crop size 44 along W is larger than the input's 42 "
                               "(8x42x42 input); a crop keeps part of its input, it cannot grow it (that is `pad`)")
