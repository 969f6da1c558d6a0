"""``build --target onnx --dynamic-spatial`` (issue 10, item 10): symbolic spatial sizes where every op
allows them (each op says so in its own module: ``Op.symbolic_axes``), one file for several input sizes,
equal to PyTorch; a located refusal naming the first layer that needs fixed sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnspec
from cnnspec.cli import main
from cnnspec.ops import REGISTRY

np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

CONES = """\
name: cones
description: a 3D CNN for light-cones and volumes
input: [1, 32, 32, 256]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: {kernel: 2}
  - conv: {out: 16, kernel: 3, stride: 2, padding: 1}
  - relu
  - global_avgpool
  - flatten
  - linear: {out: 2}
"""
SEGMENT = """\
name: segment
input: [3, 24, 32]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - relu
  - maxpool: {kernel: 2}
  - conv: {out: 2, kernel: 1}
"""
HEAD = "name: broken\ninput: [1, 16, 16]\nlayers:\n  - conv: {out: 4, kernel: 3}\n"
REFUSED = {
    "flatten": ("  - flatten\n  - linear: {out: 3}\n", 5, 5, "layer 1 (flatten)",
                ("it makes every position a feature, so the layers after it depend on the input size; pool to a "
                 "fixed size first (global pooling)")),
    "upsample": ("  - upsample: {size: [20, 20]}\n", 5, 5, "layer 1 (upsample)",
                 "its ONNX Resize writes the output sizes as numbers"),
    "ceil_mode": ("  - maxpool: {kernel: 2, ceil_mode: true}\n", 5, 5, "layer 1 (maxpool)",
                  "with `ceil_mode` its ONNX end padding follows the input size"),
    "adaptive": ("  - adaptive_avgpool: {out: 2}\n", 5, 5, "layer 1 (adaptive_avgpool)",
                 "its windows follow the input size; only an output of 1 (global pooling) takes any size"),
    "groupnorm": ("  - groupnorm: {groups: 2}\n", 5, 5, "layer 1 (groupnorm)",
                  "its ONNX lowering writes the input's sizes as numbers"),
    "reshape": ("  - reshape: {shape: [4, 196]}\n", 5, 5, "layer 1 (reshape)",
                "it reshapes to the sizes written in the spec"),
}


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _parity(spec: Path, sizes: list[tuple[int, ...]], tmp_path: Path) -> ort.InferenceSession:
    model = cnnspec.load(spec)
    net = model.to_torch().eval()
    out = tmp_path / "model.onnx"
    model.to_onnx(out, module=net, dynamic_spatial=True)
    session = _session(out)
    for shape in sizes:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            want = net(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    return session


@pytest.mark.slow
def test_a_3d_net_ending_in_global_pooling_runs_on_lightcones_and_volumes(tmp_path: Path) -> None:
    spec = tmp_path / "cones.yaml"
    spec.write_text(CONES)
    session = _parity(spec, [(1, 1, 32, 32, 256), (1, 1, 64, 64, 64), (2, 1, 9, 10, 11)], tmp_path)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", ["N", 1, "D", "H", "W"])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("output", ["N", 2])]


@pytest.mark.slow
def test_a_fully_convolutional_net_keeps_its_output_sizes_symbolic(tmp_path: Path) -> None:
    spec = tmp_path / "segment.yaml"
    spec.write_text(SEGMENT)
    session = _parity(spec, [(1, 3, 24, 32), (2, 3, 64, 48)], tmp_path)
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("output", ["N", 2, "H_out", "W_out"])]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_op_that_needs_fixed_sizes_is_refused_at_its_layer(case: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    tail, line, col, label, why = REFUSED[case]
    spec = tmp_path / "broken.yaml"
    spec.write_text(HEAD + tail)
    out = tmp_path / "broken.onnx"
    assert main(["build", str(spec), "--target", "onnx", "--dynamic-spatial", "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"{spec}:{line}:{col}: error: --dynamic-spatial: {label} needs fixed "
                                       f"spatial sizes: {why}; build without --dynamic-spatial for the spec's "
                                       "input size\n")
    assert not out.exists()
    assert main(["build", str(spec), "--target", "onnx", "-o", str(out)]) == 0  # fixed sizes: fine


def test_every_op_without_the_trait_refuses_symbolic_axes() -> None:
    refusing = sorted(name for name, op in REGISTRY.items() if not op.traits.dynamic_spatial)
    assert refusing == ["channel_shuffle", "crop", "flatten", "groupnorm", "pixel_unshuffle", "reshape", "upsample"]
    for name in refusing:  # these ignore their attributes here
        op = REGISTRY[name]
        assert isinstance(op.symbolic_axes(None, (4, 8, 8), frozenset({1, 2})), str)
        assert op.symbolic_axes(None, (4, 1, 1), frozenset()) == frozenset()


@pytest.mark.slow
def test_a_slice_keeps_its_written_bounds_for_any_input_size(tmp_path: Path) -> None:
    """Python's bounds written into ONNX Slice (negative ones from the end, null to the end): the graph built
    for 12x10 slices a 20x17 input as PyTorch's x[:, 2:, 1:-1, -4:] does."""
    spec = tmp_path / "trim.yaml"
    spec.write_text("name: trim\ninput: [3, 12, 10]\nlayers:\n  - conv: {out: 6, kernel: 1}\n"
                    "  - slice: {channels: [2, null], ranges: [[1, -1], [-4, null]]}\n")
    session = _parity(spec, [(1, 3, 12, 10), (2, 3, 20, 17)], tmp_path)
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("output", ["N", 4, "H_out", "W_out"])]
