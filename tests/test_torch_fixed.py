"""Fixed-kernel layers compute their filters exactly (hand-computed expected outputs), stay frozen, and
load from checkpoints like any other parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnspec.api import load

ROOT = Path(__file__).parents[1]
SOBEL = """\
name: sobel_only
input: [1, 4, 4]
layers:
  - conv:
      name: sobel
      trainable: false
      weights: [[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]], [[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]]]
"""


def _model(tmp_path: Path, text: str) -> torch.nn.Module:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return load(spec).to_torch().eval()


def test_sobel_gradients_of_a_vertical_edge(tmp_path: Path) -> None:
    model = _model(tmp_path, SOBEL)
    image = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 4).reshape(1, 1, 4, 4)
    with torch.no_grad():
        out = model(image)
    # d/dx: every 3x3 window spans the step once: (1 + 2 + 1) * 1 = 4; d/dy: rows are equal, 0
    assert torch.equal(out, torch.tensor([[[[4.0, 4.0], [4.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]]))


def test_sobel_gradients_of_a_ramp(tmp_path: Path) -> None:
    model = _model(tmp_path, SOBEL)
    image = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # +1 per column, +4 per row
    with torch.no_grad():
        out = model(image)
    # d/dx: (1 + 2 + 1) * (2 columns * 1) = 8; d/dy: (1 + 2 + 1) * (2 rows * 4) = 32
    assert torch.equal(out, torch.tensor([[[[8.0, 8.0], [8.0, 8.0]], [[32.0, 32.0], [32.0, 32.0]]]]))


def test_zoo_blur_then_sobel_on_a_dot(tmp_path: Path) -> None:
    model = load(ROOT / "specs" / "sobel_edges.yaml", input_shape=(1, 3, 3)).to_torch().eval()
    dot = torch.zeros(1, 1, 3, 3)
    dot[0, 0, 1, 1] = 16.0
    with torch.no_grad():
        blurred = model.blur(dot)
        out = model(dot)
    # blur of a centred dot of 16 is the binomial kernel x 16
    assert torch.equal(blurred, torch.tensor([[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]))
    # Sobel x of that (zero padding): right minus left columns, weighted (1, 2, 1) down the rows
    gx = [[8.0, 0.0, -8.0], [12.0, 0.0, -12.0], [8.0, 0.0, -8.0]]
    gy = [[8.0, 12.0, 8.0], [0.0, 0.0, 0.0], [-8.0, -12.0, -8.0]]
    assert torch.equal(out, torch.tensor([[gx, gy]]))


def test_fixed_kernels_are_frozen_parameters(tmp_path: Path) -> None:
    model = load(ROOT / "specs" / "sobel_edges.yaml").to_torch()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        ("blur.weight", (1, 1, 3, 3)), ("sobel.weight", (2, 1, 3, 3))]
    assert all(not p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 27


@pytest.mark.parametrize(("settings", "expected"), [
    ("{kernel: 2}", [[3.0, 7.0]]),
    ("{kernel: 2, ceil_mode: true}", [[3.0, 7.0, 5.0]]),
    ("{kernel: 3, stride: 2, padding: 1}", [[3.0, 9.0, 9.0]]),
])
def test_sumpool_1d_sums_windows(tmp_path: Path, settings: str, expected: list[list[float]]) -> None:
    model = _model(tmp_path, f"name: s\ninput: [1, 5]\nlayers:\n  - sumpool: {settings}\n")
    with torch.no_grad():
        out = model(torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]]))
    assert torch.equal(out, torch.tensor([expected]))


def test_sumpool_2d_sums_windows(tmp_path: Path) -> None:
    model = _model(tmp_path, "name: s\ninput: [1, 3, 3]\nlayers:\n  - sumpool: {kernel: 2, stride: 1}\n")
    with torch.no_grad():
        out = model(torch.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    assert torch.equal(out, torch.tensor([[[[12.0, 16.0], [24.0, 28.0]]]]))


def test_fixed_kernel_with_bias_starts_at_zero_and_is_frozen(tmp_path: Path) -> None:
    model = _model(tmp_path, "name: f\ninput: [1, 3, 3]\nlayers:\n"
                             "  - conv: {weights: [[[[1, 0], [0, 1]]]], bias: true, trainable: false, name: diag}\n")
    assert torch.equal(model.diag.bias, torch.zeros(1)) and not model.diag.bias.requires_grad
    with torch.no_grad():
        out = model(torch.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    assert torch.equal(out, torch.tensor([[[[6.0, 8.0], [12.0, 14.0]]]]))  # x[i, j] + x[i+1, j+1]
