"""Several outputs (``outputs:``), ``from: input`` and ``upsample: {size_of: ...}`` through every consumer:
the analysis, summary (text, markdown, JSON), the generated PyTorch (a dict or a tuple, equal to a
hand-written module), ONNX (one named graph output each, equal to torch), ``run``, diagrams; and the
segmentation zoo (fcn_resnet50, deeplabv3_resnet50, lraspp_mobilenet_v3_large) loading torchvision's state_dict, onnxruntime equal to
torch on every output."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import reference_data

from cnnspec.frontend import analyse_file
from cnnspec.report import table
from cnnspec.report.json_report import summary_record

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
TWO_HEADS = """name: two_heads
input: [3, 16, 16]
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1, as: feat}
  - conv: {out: 4, kernel: 1}
  - upsample: {size_of: input, mode: bilinear, as: main}
  - conv: {out: 2, kernel: 1, from: feat}
  - upsample: {size_of: input, mode: bilinear, as: side}
  - conv: {out: 5, kernel: 1, from: input, as: full}
"""


def _spec(tmp_path: Path, outputs: str, text: str = TWO_HEADS) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text + outputs)
    return path


def _hand(width_in: int = 3):  # type: ignore[no-untyped-def]
    """TWO_HEADS written by hand, torchvision-style."""
    from torch import nn
    from torch.nn import functional as F

    class Hand(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module("0", nn.Conv2d(width_in, 8, 3, stride=2, padding=1))
            self.add_module("1", nn.Conv2d(8, 4, 1))
            self.add_module("3", nn.Conv2d(8, 2, 1))
            self.add_module("5", nn.Conv2d(width_in, 5, 1))

        def forward(self, x):  # type: ignore[no-untyped-def]
            size = x.shape[-2:]
            feat = self.get_submodule("0")(x)
            main = F.interpolate(self.get_submodule("1")(feat), size=size, mode="bilinear", align_corners=False)
            side = F.interpolate(self.get_submodule("3")(feat), size=size, mode="bilinear", align_corners=False)
            return {"out": main, "aux": side, "full": self.get_submodule("5")(x)}

    return Hand()


def test_analysis_and_summary(tmp_path: Path) -> None:
    graph = analyse_file(_spec(tmp_path, "outputs: {out: main, aux: side, full: full}\n"))
    assert graph.output_form == "dict"
    assert graph.output_shapes == {"out": (4, 16, 16), "aux": (2, 16, 16), "full": (5, 16, 16)}
    assert graph.output_shape == (4, 16, 16)  # the first
    assert graph.root.total_params == 224 + 36 + 18 + 20
    upsample = [n for n in graph.leaves() if n.op == "upsample"]
    assert [len(n.inputs) for n in upsample] == [2, 2] and upsample[0].inputs[1] == graph.inputs[0]
    assert upsample[0].rf_size == (5, 5)  # the input read for its size adds nothing to the receptive field
    text = table.text(graph)
    assert text.splitlines()[0].endswith("input 3x16x16 -> outputs out 4x16x16, aux 2x16x16, full 5x16x16")
    assert "Output out: 4x16x16 from `2`, receptive field 5x5 (stride 1x1)\n" in text
    assert "Output aux: 2x16x16 from `4`, receptive field 5x5 (stride 1x1)\n" in text
    assert "Output full: 5x16x16 from `5`, receptive field 1x1 (stride 1x1)\n" in text
    assert "2      upsample -> 16x16 (size of input, bilinear)  4x16x16" in text
    assert table.markdown(graph).startswith("### two_heads: input 3x16x16 -> outputs out 4x16x16, aux 2x16x16, "
                                            "full 5x16x16\n")
    record = summary_record(graph)
    assert record["outputs"] == [{"name": "out", "shape": [4, 16, 16]}, {"name": "aux", "shape": [2, 16, 16]},
                                 {"name": "full", "shape": [5, 16, 16]}]
    assert record["output_shape"] == [4, 16, 16]
    one = analyse_file(_spec(tmp_path, ""))
    assert one.output_form == "one" and "outputs" not in summary_record(one)


def test_list_form_and_previous(tmp_path: Path) -> None:
    graph = analyse_file(_spec(tmp_path, "outputs: [main, previous]\n"))
    assert graph.output_form == "tuple"
    assert graph.output_shapes == {"main": (4, 16, 16), "previous": (5, 16, 16)}


@pytest.mark.slow
def test_torch_equals_hand_written_and_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from cnnspec.compile.onnx import to_model_proto
    from cnnspec.compile.torch import render_source
    from cnnspec.compile.torch.loader import build_module

    graph = analyse_file(_spec(tmp_path, "outputs: {out: main, aux: side, full: full}\n"))
    source = render_source(graph)
    assert "def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:" in source
    assert "x_in = x  # the input, read again below" in source
    assert ("main = nn.functional.interpolate(x, size=x_in.shape[-2:], mode='bilinear', align_corners=False)"
            in ast.unparse(ast.parse(source)))  # the call, however long lines are split
    assert "return {'out': main, 'aux': side, 'full': full}" in source
    torch.manual_seed(0)
    hand, ours = _hand().eval(), build_module(graph).eval()
    ours.load_state_dict(hand.state_dict(), strict=True)
    proto = to_model_proto(graph, {k: v.numpy() for k, v in hand.state_dict().items()})
    assert [o.name for o in proto.graph.output] == ["out", "aux", "full"]
    assert json.loads({p.key: p.value for p in proto.metadata_props}["cnnspec.outputs"]) == {
        "out": [4, 16, 16], "aux": [2, 16, 16], "full": [5, 16, 16]}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, 16, 16)
        with torch.no_grad():
            want, got = hand(x), ours(x)
        assert list(got) == ["out", "aux", "full"]
        for name in want:
            assert torch.equal(got[name], want[name])
        for name, array in zip(["out", "aux", "full"], session.run(None, {"input": x.numpy()}), strict=True):
            np.testing.assert_allclose(array, want[name].numpy(), rtol=1e-5, atol=1e-6)
    tupled = build_module(analyse_file(_spec(tmp_path, "outputs: [main, side]\n"))).eval()
    tupled.load_state_dict(hand.state_dict(), strict=True)  # `full` is still computed, just not returned
    with torch.no_grad():
        first, second = tupled(x)
    assert torch.equal(first, want["out"]) and torch.equal(second, want["aux"])


def test_run_prints_and_saves_every_output(tmp_path: Path) -> None:
    import subprocess

    path = _spec(tmp_path, "outputs: {out: main, aux: side}\n")
    saved = tmp_path / "y.npz"
    proc = subprocess.run([sys.executable, "-m", "cnnspec", "run", str(path), "--top", "0", "--output", str(saved)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "output:   out [1, 4, 16, 16] float32\noutput:   aux [1, 2, 16, 16] float32\n" in proc.stdout
    with np.load(saved) as arrays:
        assert {k: arrays[k].shape for k in arrays} == {"out": (1, 4, 16, 16), "aux": (1, 2, 16, 16)}


def test_diagram_draws_each_output_and_size_edges(tmp_path: Path) -> None:
    from cnnspec.compile.dot import render_dot

    dot = render_dot(analyse_file(_spec(tmp_path, "outputs: {out: main, aux: side}\n")))
    assert '"2" -> "@output.out" [label="4x16x16"];' in dot
    assert '"4" -> "@output.aux" [label="2x16x16"];' in dot
    assert dot.count('[label="size 3x16x16", style="dotted", color="#888888", fontcolor="#888888", constraint="false"]') == 2


def test_readme_example(tmp_path: Path) -> None:
    section = README.split("#### Several outputs, and the input again", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    graph = analyse_file(_spec(tmp_path, "", "name: readme_outputs\n" + example))
    assert graph.output_shapes == {"out": (21, 64, 64), "aux": (21, 64, 64)}


# --- the segmentation zoo: torchvision's state_dict loads, onnxruntime equals torch on every output ---------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"])
def test_segmentation_zoo_torch_equals_onnxruntime(name: str) -> None:
    import onnxruntime as ort
    import torch

    from cnnspec.compile.onnx import to_model_proto
    from cnnspec.compile.torch.loader import build_module

    ref = reference_data.model(name)
    graph = analyse_file(ROOT / "specs" / f"{name}.yaml", input_shape=(3, 64, 64))  # 1/12 of the MACs of 224
    keys = list(ref["output_shape"])  # torchvision's outputs in its order: out (and aux)
    assert graph.output_shapes == {k: (21, 64, 64) for k in keys}
    generator = torch.Generator().manual_seed(0)
    state = {}
    for e in ref["state_dict"]:  # the reference keys and shapes, random values (running_var positive)
        if e["dtype"] == "int64":
            state[e["key"]] = torch.zeros(e["shape"], dtype=torch.int64)
        else:
            value = torch.randn(e["shape"], generator=generator) * 0.05
            state[e["key"]] = value.abs() + 1 if e["key"].endswith("running_var") else value
    model = build_module(graph).eval()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        want = model(x)
    assert {k: tuple(v.shape) for k, v in want.items()} == {k: (2, 21, 64, 64) for k in keys}
    proto = to_model_proto(graph, {k: v.numpy() for k, v in state.items()})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x.numpy()}), strict=True))
    assert list(got) == keys
    for key in keys:
        np.testing.assert_allclose(got[key], want[key].numpy(), rtol=1e-4, atol=1e-5)


# --- training_only: googlenet's auxiliary classifiers ------------------------------------------------------

def test_googlenet_aux_heads_run_in_training_only() -> None:
    graph = analyse_file(ROOT / "specs" / "googlenet.yaml")
    aux = [n for n in graph.leaves() if n.path.startswith("aux")]
    assert aux and all(n.training_only for n in aux)
    assert sum(t.numel for n in aux for t in n.params) == 3_188_968 + 3_191_016  # counted in the params
    assert graph.root.total_params == 13_004_888
    assert graph.root.total_macs == 1_498_376_192  # not in the inference MACs
    text = table.text(graph, depth=1)
    assert "aux1 ...         block inception_aux (training only)  1000        3,188,968            -" in text
    assert "Output aux1: 1000 from `aux1.fc2`, receptive field 347x347 (stride 256x256) (training only)" in text


@pytest.mark.slow
def test_googlenet_training_returns_every_output_and_eval_the_logits() -> None:
    import onnxruntime as ort
    import torch

    from cnnspec.compile.onnx import to_model_proto
    from cnnspec.compile.torch.loader import build_module

    graph = analyse_file(ROOT / "specs" / "googlenet.yaml", input_shape=(3, 64, 64))
    torch.manual_seed(0)
    model = build_module(graph)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        trained = model.train()(x)
        logits = model.eval()(x)
    assert {k: tuple(v.shape) for k, v in trained.items()} == {"logits": (2, 1000), "aux2": (2, 1000),
                                                                "aux1": (2, 1000)}
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == (2, 1000)
    state = {k: v.numpy() for k, v in model.state_dict().items()}  # aux keys too: read, checked, not emitted
    proto = to_model_proto(graph, state)
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert not any(node.name.startswith("aux") for node in proto.graph.node)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, logits.numpy(), rtol=1e-4, atol=1e-5)



# --- training_only: inception_v3's AuxLogits, registered between Mixed_6e and Mixed_7a ----------------------

def test_inception_v3_aux_logits_run_in_training_only() -> None:
    graph = analyse_file(ROOT / "specs" / "inception_v3.yaml")
    aux = [n for n in graph.leaves() if n.path.startswith("AuxLogits.")]
    assert aux and all(n.training_only for n in aux)
    # conv0 768*128 + BN 2*128, conv1 128*768*5*5 + BN 2*768, fc 768*1000 + 1000
    assert sum(t.numel for n in aux for t in n.params) == 98_560 + 2_459_136 + 769_000
    assert graph.root.total_params == 27_161_264
    assert graph.root.total_macs == 5_713_216_096  # not in the inference MACs
    keys = [k for k, _, _ in graph.state_dict_keys()]
    tops = list(dict.fromkeys(k.split(".")[0] for k in keys))
    assert tops[tops.index("Mixed_6e") + 1:tops.index("Mixed_7a")] == ["AuxLogits"]
    text = table.text(graph, depth=1)
    assert "AuxLogits ...      block inception_aux (training only)  1000        3,326,696            -" in text
    assert ("Output aux_logits: 1000 from `AuxLogits.fc`, receptive field 1183x1183 (stride 48x48) "
            "(training only)") in text


@pytest.mark.slow
def test_inception_v3_training_returns_logits_and_aux_logits_and_eval_the_logits() -> None:
    import torch

    from cnnspec.compile.torch.loader import build_module

    graph = analyse_file(ROOT / "specs" / "inception_v3.yaml")
    torch.manual_seed(0)
    model = build_module(graph)
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        trained = model.train()(x)
        logits = model.eval()(x)
    assert {k: tuple(v.shape) for k, v in trained.items()} == {"logits": (2, 1000), "aux_logits": (2, 1000)}
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == (2, 1000)

def test_training_only_refusals(tmp_path: Path) -> None:
    from cnnspec.errors import SpecError

    base = "name: s\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 1, as: a}\n"
    path = tmp_path / "s.yaml"
    path.write_text(base + "  - conv: {out: 2, kernel: 1, training_only: true, as: t}\n  - relu: {from: t}\n")
    with pytest.raises(SpecError) as info:
        analyse_file(path)
    assert str(info.value) == (f"{path}:6:5: error: layer 2 (relu) runs at inference but reads the output of layer 1 (conv), "
                               "which runs only in training (`training_only`); take an earlier tensor with `from:`")
    path.write_text(base + "  - conv: {out: 2, kernel: 1, training_only: yes please}\n")
    with pytest.raises(SpecError) as info:
        analyse_file(path)
    assert str(info.value) == f"{path}:5:46: error: `training_only` is true or false, got `yes please`"
