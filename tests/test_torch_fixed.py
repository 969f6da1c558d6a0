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


# --- M3 (attack report): fixed weights as source literals ---------------------------------------------------

def test_M3_a_kernel_repeated_over_channels_is_written_once(tmp_path: Path) -> None:
    """10,000,000 fixed weights (one 1x1 kernel over 3,162 x 3,162 channels) wrote a 170 MB literal that
    Python could not compile; the constant is now the one kernel, which ``copy_`` broadcasts."""
    from cnnspec.compile.torch.render import render_source

    spec = tmp_path / "fk.yaml"
    spec.write_text("name: fk\ninput: [3162, 4, 4]\nblocks: {f: {layers: [conv: {weights: [[1]], out: 3162, "
                    "trainable: false}]}}\nlayers: [stage: {name: s, block: f, repeat: 1}]\n")
    source = render_source(load(spec).graph)
    assert len(source) < 2000 and "F2_0_WEIGHT = [[1.0]]\n" in source
    assert "assign(self[0].weight, F2_0_WEIGHT, trainable=False)" in source


def test_M3_a_repeated_kernel_fills_every_channel_pair_and_equals_onnx(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    spec = tmp_path / "rk.yaml"
    spec.write_text("name: rk\ninput: [3, 6, 6]\nlayers: [conv: {weights: [[1, 0, -1], [2, 0, -2], [1, 0, -1]], "
                    "out: 4, trainable: false}, conv: {weights: [[0.5]], out: 6, groups: 2, trainable: false}]\n")
    model = load(spec)
    net = model.to_torch().eval()
    sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    assert torch.equal(net[0].weight, sobel.expand(4, 3, 3, 3)) and torch.equal(net[1].weight, torch.full((6, 2, 1, 1), 0.5))
    model.to_onnx(tmp_path / "rk.onnx")
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(tmp_path / "rk.onnx"), providers=["CPUExecutionProvider"])
    [got] = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _fixed_values_spec(path: Path, first: int, second: int) -> None:
    """Two conv1d layers with ``first`` and ``second`` fixed values (one output channel, one input)."""
    kernel = lambda n: "[[[" + ", ".join(["1"] * n) + "]]]"
    path.write_text(f"name: fv\ninput: [1, 300000]\nlayers:\n  - conv: {{weights: {kernel(first)}, trainable: false}}\n"
                    f"  - conv: {{weights: {kernel(second)}, trainable: false}}\n")


def test_M3_more_fixed_values_than_a_file_holds_is_one_located_line(tmp_path: Path) -> None:
    from cnnspec.errors import SpecError

    spec = tmp_path / "fv.yaml"
    _fixed_values_spec(spec, 60_000, 40_001)
    with pytest.raises(SpecError) as exc:
        load(spec)
    assert str(exc.value) == (
        f"{spec}:5:21: error: `conv` `weights` holds 40,001 values (100,001 in this file); a spec file holds at most "
        "100,000 fixed weight values, which the PyTorch build writes into its source: for bigger fixed weights "
        "leave `weights` out, set `trainable: false` and load the values from a checkpoint (`--weights`)")


@pytest.mark.slow
def test_M3_a_file_at_the_fixed_values_limit_builds(tmp_path: Path) -> None:
    spec = tmp_path / "fv.yaml"
    _fixed_values_spec(spec, 60_000, 40_000)
    net = load(spec).to_torch()
    assert [int(p.sum()) for p in net.parameters()] == [60_000, 40_000]
