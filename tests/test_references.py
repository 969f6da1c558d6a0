"""Named tensors (``as:``, ``from:``, ``input``) and merges of them (``add``/``mul``/``concat`` with ``of``,
``gate``): a U-Net checked against a hand-written torch module (state_dict, parity), ONNX parity, a
squeeze-and-excitation gate against its formula, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file

UNET = Path(__file__).parents[1] / "specs" / "unet.yaml"


def _hand_unet(width: int = 16):  # type: ignore[no-untyped-def]
    from torch import cat, nn

    class Double(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.conv2(self.conv1(x).relu()).relu()

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.enc1, self.pool = Double(1, w), nn.MaxPool2d(2)
            self.enc2, self.enc3, self.bottleneck = Double(w, 2 * w), Double(2 * w, 4 * w), Double(4 * w, 8 * w)
            self.up3, self.dec3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2), Double(8 * w, 4 * w)
            self.up2, self.dec2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2), Double(4 * w, 2 * w)
            self.up1, self.dec1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2), Double(2 * w, w)
            self.head = nn.Conv2d(w, 2, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            e3 = self.enc3(self.pool(e2))
            x = self.up3(self.bottleneck(self.pool(e3)))
            x = self.up2(self.dec3(cat([e3, x], 1)))
            x = self.up1(self.dec2(cat([e2, x], 1)))
            return self.head(self.dec1(cat([e1, x], 1)))

    return UNet()


def test_unet_figures() -> None:
    graph = analyse_file(UNET)
    assert graph.output_shape == (2, 64, 64)
    assert graph.root.total_params == 481_762
    assert [n.output_shape for n in graph.leaves() if n.op == "concat"] == [(128, 16, 16), (64, 32, 32), (32, 64, 64)]


@pytest.mark.slow
def test_unet_matches_hand_written_torch_and_onnx() -> None:
    import torch

    from cnnspec.compile.onnx import to_model_proto
    from cnnspec.compile.onnx.check import run_model
    from cnnspec.compile.torch.loader import build_module

    torch.manual_seed(0)
    graph = analyse_file(UNET)
    hand = _hand_unet().eval()
    ours = build_module(graph).eval()
    theirs = hand.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.items()]
    assert [(k, s) for k, s, _ in graph.state_dict_keys()] == [(k, tuple(v.shape)) for k, v in theirs.items()]
    ours.load_state_dict(theirs, strict=True)
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        want = hand(x)
        got = ours(x)
    assert torch.equal(got, want)
    weights = {k: v.numpy() for k, v in theirs.items()}
    onnx_out = run_model(to_model_proto(graph, weights), x.numpy())
    np.testing.assert_allclose(onnx_out, want.numpy(), rtol=1e-4, atol=1e-5)


def test_generated_forward_reads_like_hand_written() -> None:
    from cnnspec.compile.torch import render_source as generate

    source = generate(analyse_file(UNET))
    assert "e1 = self.enc1(x)" in source and "x = self.pool(e1)" in source and "get_submodule" not in source
    assert "x = torch.cat([e3, x], dim=1)" in source
    assert "x = torch.cat([e1, x], dim=1)" in source


def _error(tmp_path: Path, layers: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninput: [4, 8, 8]\n" + layers)
    with pytest.raises(SpecError) as info:
        analyse_file(path)
    return str(info.value)


def test_refusals(tmp_path: Path) -> None:
    assert _error(tmp_path, "layers:\n  - relu: {as: a}\n  - add: {of: [a, b]}\n") == (
        f"{tmp_path}/s.yaml:5:19: error: no tensor is named `b` in the spec's layers; name one with `as: b` on an "
        "earlier layer (named so far: a)")
    assert _error(tmp_path, "layers:\n  - add: {of: [previous, a]}\n  - relu: {as: a}\n") == (
        f"{tmp_path}/s.yaml:4:26: error: `a` is the output of a later layer (line 5); a layer can only take tensors "
        "made before it")
    assert _error(tmp_path, "layers:\n  - relu: {as: a}\n  - conv: {out: 2, kernel: 1}\n"
                            "  - add: {of: [a, previous]}\n") == (
        f"{tmp_path}/s.yaml:6:5: error: add of a, previous: `a` gives 4x8x8 but `previous` gives 2x8x8, which do not "
        "broadcast: channels 4 against 2 (each axis must be equal or 1)")
    assert _error(tmp_path, "blocks:\n  b:\n    layers: [{conv: {out: 4, kernel: 1, from: a}}]\n"
                            "layers:\n  - relu: {as: a}\n  - b\n") == (
        f"{tmp_path}/s.yaml:5:47: error: `a` is a tensor of the spec's layers, outside block `b`; a block sees "
        "only its own tensors (merge it outside the block)")
    assert _error(tmp_path, "layers:\n  - relu: {as: a}\n  - relu: {as: a}\n") == (
        f"{tmp_path}/s.yaml:5:16: error: tensor name `a` is already given at line 4; each `as:` name must be new "
        "in its block")
    assert _error(tmp_path, "layers:\n  - relu: {as: 1x}\n") == (
        f"{tmp_path}/s.yaml:4:16: error: tensor name `1x` must be a Python identifier (letters, digits, `_`; not "
        "starting with a digit), as it names a variable of the generated forward")


def test_from_takes_a_named_tensor(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninput: [4, 8, 8]\nlayers:\n  - relu: {as: a}\n  - conv: {out: 2, kernel: 1}\n"
                    "  - conv: {out: 4, kernel: 1, from: a, as: b}\n  - add: {of: [a, b]}\n")
    graph = analyse_file(path)
    convs = [n for n in graph.leaves() if n.op == "conv"]
    assert convs[1].inputs == graph.leaves()[0].outputs
    assert graph.output_shape == (4, 8, 8)


def test_readme_example_is_a_valid_unet(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("#### Named tensors", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "s.yaml"
    path.write_text("name: readme_unet\ninput: [1, 64, 64]\n" + example)
    graph = analyse_file(path)
    assert graph.output_shape == (2, 64, 64)
    assert [n.output_shape for n in graph.leaves() if n.op == "concat"] == [(64, 32, 32), (32, 64, 64)]


def test_a_scope_that_reads_a_named_tensor_is_emitted_open(tmp_path: Path) -> None:
    """A sequential taking a tensor from outside (MONAI's UpCat: upsample, concat the skip, convs) becomes an
    empty nn.Module holding its members, called one by one, so its state_dict keys stay those of the spec."""
    import torch

    from cnnspec.compile.onnx import to_model_proto
    from cnnspec.compile.onnx.check import run_model
    from cnnspec.compile.torch import render_source
    from cnnspec.compile.torch.loader import build_module

    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninput: [4, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1, as: skip}\n"
                    "  - maxpool: {kernel: 2}\n  - sequential:\n      name: up\n      layers:\n"
                    "        - conv_transpose: {out: 4, kernel: 2, stride: 2, name: deconv}\n"
                    "        - concat: {of: [skip, previous]}\n        - conv: {out: 2, kernel: 1, name: conv}\n")
    graph = analyse_file(path)
    source = render_source(graph)
    for line in ("self.up = nn.ModuleDict()", "self.up['deconv'] = nn.ConvTranspose2d(4, 4, kernel_size=2, stride=2)",
                 "self.up['conv'] = nn.Conv2d(8, 2, kernel_size=1)", "x = self.up['deconv'](x)",
                 "x = torch.cat([skip, x], dim=1)", "x = self.up['conv'](x)"):
        assert line in source, line
    torch.manual_seed(0)
    module = build_module(graph).eval()
    assert [k for k, _ in module.state_dict().items()] == [k for k, _, _ in graph.state_dict_keys()] == [
        "0.weight", "0.bias", "up.deconv.weight", "up.deconv.bias", "up.conv.weight", "up.conv.bias"]
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        want = module(x)
    weights = {k: v.numpy() for k, v in module.state_dict().items()}
    np.testing.assert_allclose(run_model(to_model_proto(graph, weights), x.numpy()), want.numpy(), rtol=1e-4,
                               atol=1e-5)
def test_a_chain_whose_inner_tensor_is_read_outside_returns_it(tmp_path: Path) -> None:
    """A sequential of 0..n-1 members whose inner `as:` tensor is read after it (LR-ASPP's low features,
    inside the backbone) is not an nn.Sequential, which returns one tensor (`a, x = seq(x)` would unpack
    the batch axis): a class returning both, equal to the spec's formula on a batch of 2."""
    import torch

    from cnnspec.compile.torch import render_source
    from cnnspec.compile.torch.loader import build_module

    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninput: [3, 8, 8]\nlayers:\n  - sequential:\n      layers:\n"
                    "        - conv: {out: 4, kernel: 1, as: a}\n        - relu\n  - add: {of: [a, previous]}\n")
    graph = analyse_file(path)
    source = render_source(graph)
    assert "self.add_module('0', nn.Sequential(" not in source
    for line in ("a = self.get_submodule('0')(x)", "x = torch.relu(a)", "return a, x",
                 "a, x = self.get_submodule('0')(x)", "x = a + x"):
        assert line in source, line
    torch.manual_seed(0)
    module = build_module(graph).eval()
    conv = module.get_submodule("0").get_submodule("0")
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        got, a = module(x), conv(x)
    torch.testing.assert_close(got, a + torch.relu(a))


def test_input_names_the_blocks_input(tmp_path: Path) -> None:
    """`from: input` and `of: [input, ...]`: the block's (or the network's) input, so a shortcut may be made
    before the body (torchvision's RegNet: proj first); `as: input` is refused."""
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ninput: [4, 8, 8]\nblocks:\n  b:\n    layers:\n"
                    "      - conv: {out: 4, kernel: 1, name: proj, as: shortcut}\n"
                    "      - conv: {out: 4, kernel: 3, padding: 1, name: f, from: input}\n"
                    "      - add: {of: [shortcut, previous]}\n"
                    "layers:\n  - relu\n  - b\n  - mul: {of: [input, previous]}\n")
    graph = analyse_file(path)
    relu, proj, f, add, mul = graph.leaves()
    assert proj.inputs == f.inputs == relu.outputs
    assert add.inputs == (proj.outputs[0], f.outputs[0])
    assert mul.inputs == (0, add.outputs[0])  # the network's input
    assert [n.path for n in (proj, f)] == ["1.proj", "1.f"]
    assert graph.output_shape == (4, 8, 8)


def test_mul_and_gate_refusals(tmp_path: Path) -> None:
    assert _error(tmp_path, "layers:\n  - relu: {as: input}\n") == (
        f"{tmp_path}/s.yaml:4:16: error: `as: input` is reserved: `input` is the input of the spec (inside a "
        "block, of the block), which `from: input` takes again")
    assert _error(tmp_path, "layers:\n  - conv: {out: 6, kernel: 1}\n  - mul: {of: [input, previous]}\n") == (
        f"{tmp_path}/s.yaml:5:5: error: mul of input, previous: `input` gives 4x8x8 but `previous` gives 6x8x8, "
        "which do not broadcast: channels 4 against 6 (each axis must be equal or 1)")
    assert _error(tmp_path, "layers:\n  - gate: {body: [maxpool: {kernel: 2}]}\n") == (
        f"{tmp_path}/s.yaml:4:5: error: gate: the gate gives 4x4x4 but its input gives 4x8x8, which do not "
        "broadcast: height 4 against 8 (each axis must be equal or 1); a gate's body must give the input's shape or 1 "
        "along each axis (squeeze-and-excitation: [C, 1, 1] for a [C, H, W] input)")
    assert _error(tmp_path, "layers:\n  - gate: [relu]\n") == (
        f"{tmp_path}/s.yaml:4:11: error: `gate` needs a mapping with `body` (the layers whose output multiplies "
        "the input)")


def test_readme_gate_example_is_torchvisions_squeeze_excitation(tmp_path: Path) -> None:
    """The README's gate block: SqueezeExcitation's keys, and x * hardsigmoid(fc2(relu(fc1(avgpool(x)))))."""
    import torch
    from torch.nn import functional as F

    from cnnspec.compile.torch.loader import build_module

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("#### Gates", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "se.yaml"
    path.write_text("name: se\ninput: [16, 5, 5]\n" + example + "layers:\n  - squeeze_excitation: {width: 16, squeeze: 8}\n")
    graph = analyse_file(path)
    assert [k for k, _, _ in graph.state_dict_keys()] == ["0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias"]
    module = build_module(graph).eval()
    x = torch.randn(2, 16, 5, 5)
    block = module.get_submodule("0")
    with torch.no_grad():
        scale = F.hardsigmoid(block.fc2(F.relu(block.fc1(x.mean((2, 3), keepdim=True)))))
        torch.testing.assert_close(module(x), scale * x)
