"""A block's input width is ``$channels_in`` (issue 10, item 8): evaluated once shapes are known, the same
in every backend. A spec parameter named like a block's own quantity (``$in_channels``) is refused inside a
block that has no argument of that name, and only there (the refusals' texts are in tests/broken)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnspec
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


DEPTHWISE = """\
name: sep
params: {in_channels: 3}
input: [$in_channels, 16, 16]
blocks:
  sep:
    args: {width: int}
    layers:
      - conv: {out: $channels_in, kernel: 3, padding: 1, groups: $channels_in}
      - conv: {out: $width, kernel: 1}
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - sep: {width: 16}
  - sep: {width: 32}
"""


def test_channels_in_is_the_block_input_width_in_every_backend(tmp_path: Path) -> None:
    graph = analyse_text(DEPTHWISE)
    convs = [(n.path, n.attrs.in_channels, n.attrs.out_channels, n.attrs.groups) for n in graph.nodes]
    assert convs == [("0", 3, 8, 1), ("1.0", 8, 8, 8), ("1.1", 8, 16, 1), ("2.0", 16, 16, 16), ("2.1", 16, 32, 1)]
    assert analyse_text(DEPTHWISE, input_shape=(3, 5, 5)).root.total_params == graph.root.total_params
    spec = tmp_path / "sep.yaml"
    spec.write_text(DEPTHWISE)
    model = cnnspec.load(spec)
    source = model.to_source()
    assert "nn.Conv2d(\n                in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels\n" in source
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    net = model.to_torch().eval()
    assert sum(p.numel() for p in net.parameters()) == graph.root.total_params == 1_152  # 224 + 80 + 144 + 160 + 544
    model.to_onnx(tmp_path / "sep.onnx", module=net)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = net(x).numpy()
    got = ort.InferenceSession(str(tmp_path / "sep.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})[0]
    assert abs(got - want).max() < 1e-5
