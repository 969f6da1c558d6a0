"""The zoo's nets beyond classification that have no single reference implementation (``dcgan_generator``,
``tcn``, ``espcn``), each against a small hand-written torch module as its paper or tutorial writes it: the
same state_dict keys and shapes in the same order, outputs equal with the hand module's weights, parameter
counts and MACs (``FlopCounterMode`` / 2) equal to what torch counts, and onnxruntime equal to the generated
module. (``unet`` is checked the same way in ``tests/test_references.py``.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnspec.compile.onnx import to_model_proto
from cnnspec.compile.onnx.check import run_model
from cnnspec.compile.torch.loader import build_module
from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph

SPECS = Path(__file__).parents[1] / "specs"


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Every float tensor of ``module`` random (running variances positive), so no branch hides."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
    return module.eval()


def check_against_hand_written(graph: Graph, hand: nn.Module, x: torch.Tensor,
                               hand_input: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                               hand_extra_macs: int = 0) -> nn.Module:
    """``graph``'s generated module against ``hand``: state_dict, counts, MACs (``hand`` may compute
    ``hand_extra_macs`` per sample more, outputs it throws away), outputs, onnxruntime."""
    hand = _randomise(hand, seed=0)
    ours = build_module(graph).eval()
    theirs = hand.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.items()]
    assert [(k, s) for k, s, _ in graph.state_dict_keys()] == [(k, tuple(v.shape)) for k, v in theirs.items()]
    assert graph.root.total_params == sum(p.numel() for p in hand.parameters())
    assert graph.root.total_buffers == sum(b.numel() for b in hand.buffers())
    ours.load_state_dict(theirs, strict=True)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        want = hand(hand_input(x))
    assert counter.get_total_flops() == 2 * x.shape[0] * (graph.root.total_macs + hand_extra_macs)
    with torch.no_grad():
        got = ours(x)
    assert tuple(got.shape) == (x.shape[0], *graph.output_shape)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    weights = {k: v.numpy() for k, v in theirs.items()}
    np.testing.assert_allclose(run_model(to_model_proto(graph, weights), x.numpy()), got.numpy(),
                               rtol=1e-4, atol=1e-5)
    return ours


def _dcgan_tutorial_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Module:
    """The PyTorch DCGAN tutorial's ``Generator``, as written there."""
    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.main(z)

    return Generator()


def test_dcgan_generator_figures() -> None:
    graph = analyse_file(SPECS / "dcgan_generator.yaml")
    assert (graph.input_shape, graph.output_shape) == ((100,), (3, 64, 64))
    assert (graph.root.total_params, graph.root.total_buffers, graph.root.total_macs) == (3_576_704, 1_924,
                                                                                          104_628_224)
    sizes = [n.output_shape for n in graph.leaves() if n.op == "conv_transpose"]
    assert sizes == [(512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (3, 64, 64)]


def test_dcgan_generator_equals_the_tutorials() -> None:
    graph = analyse_file(SPECS / "dcgan_generator.yaml")
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(1))
    ours = check_against_hand_written(graph, _dcgan_tutorial_generator(), z, lambda z: z.view(-1, 100, 1, 1))
    with torch.no_grad():
        assert float(ours(z).abs().max()) <= 1.0  # tanh: pixel values in [-1, 1]


def _bai_tcn(channels: int = 2, width: int = 32, kernel: int = 3, dilations: tuple[int, ...] = (1, 2, 4, 8)
             ) -> nn.Module:
    """Bai et al.'s TCN as their code writes it: symmetric padding then a chomp of the right end (not the
    spec's left-only `pad`), so the two agree only if both are causal. No weight norm; a bias-free 1x1
    downsample."""
    class Chomp(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.size = size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, :-self.size].contiguous()

    class TemporalBlock(nn.Module):
        def __init__(self, n_in: int, dilation: int) -> None:
            super().__init__()
            pad = (kernel - 1) * dilation
            self.conv1 = nn.Conv1d(n_in, width, kernel, padding=pad, dilation=dilation)
            self.conv2 = nn.Conv1d(width, width, kernel, padding=pad, dilation=dilation)
            self.chomp, self.dropout = Chomp(pad), nn.Dropout(0.1)
            self.downsample = nn.Sequential(nn.Conv1d(n_in, width, 1, bias=False)) if n_in != width else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.dropout(torch.relu(self.chomp(self.conv1(x))))
            out = self.dropout(torch.relu(self.chomp(self.conv2(out))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class TCN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, d in enumerate(dilations):
                self.add_module(f"block{i + 1}", TemporalBlock(channels if i == 0 else width, d))
            self.head = nn.Conv1d(width, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for i in range(len(dilations)):
                x = self.get_submodule(f"block{i + 1}")(x)
            return self.head(x)

    return TCN()


def test_tcn_figures() -> None:
    graph = analyse_file(SPECS / "tcn.yaml")
    assert (graph.input_shape, graph.output_shape) == ((2, 256), (1, 256))
    assert (graph.root.total_params, graph.root.total_macs) == (22_049, 5_578_752)
    # the receptive field of stacked dilated convs: 1 + (two convs per block) (kernel - 1) (sum of dilations)
    assert (graph.root.rf_size, graph.root.rf_stride) == ((1 + 2 * (3 - 1) * (1 + 2 + 4 + 8),), (1,))
    wider = analyse_file(SPECS / "tcn.yaml", overrides={"kernel": 5})
    assert wider.root.rf_size == (1 + 2 * (5 - 1) * 15,) and wider.output_shape == (1, 256)


def test_tcn_equals_bai_et_al() -> None:
    graph = analyse_file(SPECS / "tcn.yaml")
    x = torch.randn(3, 2, 256, generator=torch.Generator().manual_seed(1))
    # Bai's convs also compute the (kernel - 1) x dilation outputs the chomp throws away, each out x in x kernel
    # MACs: per block conv1 (in: 2, then 32) and conv2 (in: 32), pad 2d each
    chomped = sum(2 * d * 32 * 3 * (cin + 32) for d, cin in ((1, 2), (2, 32), (4, 32), (8, 32)))
    assert chomped == 178_560
    check_against_hand_written(graph, _bai_tcn(), x, hand_extra_macs=chomped)


@pytest.mark.parametrize("t", [0, 100, 255])
def test_tcn_is_causal_and_sees_exactly_its_receptive_field(t: int) -> None:
    """Perturbing the input at time t leaves every output before t unchanged (causal) and every output
    from t + 61 on (the receptive field, 61 steps, ends there), and changes those from t to t + 60."""
    graph = analyse_file(SPECS / "tcn.yaml")
    (rf,) = graph.root.rf_size
    model = _randomise(build_module(graph), seed=2)
    x = torch.randn(1, 2, 256, generator=torch.Generator().manual_seed(3))
    bumped = x.clone()
    bumped[..., t] += 1.0
    with torch.no_grad():
        changed = (model(bumped) != model(x))[0, 0]
    assert not changed[:t].any()
    assert not changed[t + rf:].any()
    assert changed[t:t + rf].float().mean() > 0.9  # ReLUs may zero a few; most outputs in the window move
    assert changed[t]


def _shi_espcn(channels: int = 1, r: int = 3) -> nn.Module:
    """ESPCN as Shi et al. (2016) describe it: (f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3, tanh, and the
    sub-pixel convolution layer (PixelShuffle) last."""
    class ESPCN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, 64, 5, padding=2)
            self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
            self.conv3 = nn.Conv2d(32, channels * r * r, 3, padding=1)
            self.pixel_shuffle = nn.PixelShuffle(r)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.tanh(self.conv1(x))
            x = torch.tanh(self.conv2(x))
            return self.pixel_shuffle(self.conv3(x))

    return ESPCN()


def test_espcn_figures() -> None:
    graph = analyse_file(SPECS / "espcn.yaml")
    assert (graph.input_shape, graph.output_shape) == ((1, 64, 64), (1, 192, 192))
    assert (graph.root.total_params, graph.root.total_macs) == (22_729, 92_667_904)
    # every conv runs at the low resolution: MACs = 64 x 64 x (5*5*1*64 + 3*3*64*32 + 3*3*32*9)
    assert graph.root.total_macs == 64 * 64 * (25 * 64 + 9 * 64 * 32 + 9 * 32 * 9)
    rgb4 = analyse_file(SPECS / "espcn.yaml", overrides={"channels": 3, "upscale": 4})
    assert rgb4.output_shape == (3, 256, 256)


def test_espcn_equals_shi_et_al() -> None:
    graph = analyse_file(SPECS / "espcn.yaml")
    x = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    check_against_hand_written(graph, _shi_espcn(), x)


def test_monai_basicunet_forward_reads_like_monais() -> None:
    """MONAI's BasicUNet.forward, line for line: x0..x3 kept, each UpCat upsamples, concatenates the skip
    first and convolves (its exactness against MONAI is tests/test_zoo.py's)."""
    from cnnspec.compile.torch import render_source

    source = render_source(analyse_file(SPECS / "monai_basicunet_3d.yaml"))
    forward = source.split("    def forward", source.count("    def forward"))[-1]
    assert [line.split("#")[0].strip() for line in forward.splitlines()[1:] if "=" in line][:8] == [
        "x0 = self.conv_0(x)", "x1 = self.down_1(x0)", "x2 = self.down_2(x1)", "x3 = self.down_3(x2)",
        "x = self.down_4(x3)", "x = self.upcat_4['upsample'](x)", "x = torch.cat([x3, x], dim=1)",
        "x = self.upcat_4['convs'](x)"]
    assert "self.N = nn.InstanceNorm3d(in_channels, affine=True)" in source
    assert "self.A = nn.LeakyReLU(negative_slope=0.1)" in source
