"""onnxruntime on cnnspec's ONNX graph against the PyTorch compiler's module, same weights, same input."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import reference_data
import torch
from safetensors.torch import save_file

import cnnspec
from cnnspec.compile.onnx import build, export
from cnnspec.compile.onnx.check import declared_shapes, inferred_shapes, run_model, static_shape_mismatches
from cnnspec.compile.onnx.model import compile_graph
from cnnspec.compile.onnx.weights import state_dict_to_numpy
from cnnspec.compile.torch import build_module
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file, analyse_text
from cnnspec.ir import Graph
from cnnspec.ops import REGISTRY

EVERY_OP = """\
name: every_op
input: [3, 21, 22]
layers:
  - conv: {out: 8, kernel: 3, padding: 1, padding_mode: reflect}
  - batchnorm
  - leaky_relu: {slope: 0.1}
  - conv: {out: 8, kernel: 3, padding: same, groups: 8, padding_mode: circular}
  - groupnorm: {groups: 2}
  - instancenorm: {affine: true}
  - silu
  - maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}
  - residual:
      body:
        - conv: {out: 16, kernel: 3, padding: 1, bias: false}
        - layernorm: {over: channels}
        - gelu: {approximate: tanh}
      shortcut: {projection: auto}
  - concat:
      branches:
        - [avgpool: {kernel: 3, stride: 1, padding: 1, count_include_pad: false}]
        - [sumpool: {kernel: 3, stride: 1, padding: 1}, conv: {out: 4, kernel: 1}]
        - []
  - permute: {dims: [0, 2, 3, 1]}
  - layernorm: {over: last}
  - linear: {out: 12, over: last}
  - sigmoid
  - permute: {dims: [0, 3, 1, 2]}
  - layer_scale: {init: 0.5}
  - relu
  - dropout: {p: 0.2}
  - stochastic_depth: {p: 0.1}
  - linear: {out: 10, over: channels}
  - tanh
  - gate: {body: [global_avgpool, conv: {out: 10, kernel: 1}, sigmoid]}
  - hardswish
  - relu6
  - hardsigmoid
  - hardtanh: {min: -0.5, max: 0.5}
  - pad: {left: 2, top: 1, mode: reflect}
  - conv_transpose: {out: 12, kernel: 3, stride: 2, padding: 1, output_padding: 1}
  - prelu: {per_channel: true}
  - pixel_unshuffle: {factor: 2}
  - channel_shuffle: {groups: 4}
  - concat:
      branches:
        - [channel_split: {parts: 2, part: 1}]
        - [channel_split: {parts: 2, part: 0}]
  - pixel_shuffle: {factor: 2}
  - elu: {alpha: 0.5}
  - upsample: {scale: [2, 1]}
  - crop: {size: [15, 13]}
  - slice: {channels: [1, null], ranges: [[1, -1], [-12, null]]}
  - mish
  - adaptive_maxpool: {out: [3, 4]}
  - adaptive_avgpool: {out: [2, 3]}
  - softmax: {over: channels}
  - reshape: {shape: [-1, 3, 2]}
  - identity
  - concat:
      branches:
        - [global_avgpool]
        - [global_maxpool]
  - flatten
  - linear: {out: 5}
"""

SPECS = sorted(p.stem for p in Path("specs").glob("*.yaml"))
HEAVY = {"monai_basicunet_3d", "r3d_18", "mc3_18", "r2plus1d_18", "fcn_resnet50", "deeplabv3_resnet50"}  # 28-43 GMACs a sample: slow tier
ROOT = Path(__file__).resolve().parent.parent
NORMS = ("batchnorm", "instancenorm", "layernorm", "groupnorm")


def randomised_module(graph: Graph, seed: int = 0) -> torch.nn.Module:
    """The torch module with every statistic and affine/scale tensor made non-trivial (default running
    statistics, norm weights and ConvNeXt's 1e-6 layer scales would hide whole branches)."""
    torch.manual_seed(seed)
    module = build_module(graph).eval()
    state = module.state_dict()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for leaf in graph.leaves():
            if leaf.op not in (*NORMS, "layer_scale"):
                continue
            for t in (*leaf.params, *leaf.buffers):
                key = leaf.tensor_key(t)
                if t.key in ("running_var", "weight", "") and state[key].is_floating_point():
                    state[key].copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
                elif t.key in ("running_mean", "bias"):
                    state[key].copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return module


@pytest.mark.parametrize("spec", [pytest.param(s, marks=pytest.mark.slow) if s in HEAVY else s for s in SPECS])
def test_onnxruntime_matches_torch(spec: str, tmp_path: Path) -> None:
    graph = analyse_file(f"specs/{spec}.yaml")
    module = randomised_module(graph)
    (path,) = export(graph, tmp_path / f"{spec}.onnx", module=module)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, *graph.input_shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            out = module(x)  # a tensor, or every output by name (a dict) as the spec's `outputs:` says
        wants = [v.numpy() for v in out.values()] if isinstance(out, dict) else [out.numpy()]
        gots = session.run(None, {"input": x.numpy()})
        shapes = [(batch, *graph.shapes[v]) for _, v in graph.inference_outputs()]
        assert [g.shape for g in gots] == [w.shape for w in wants] == shapes
        for got, want in zip(gots, wants, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def torchvision_resnet18_state() -> dict[str, torch.Tensor]:
    """A state_dict in torchvision's resnet18 layout (keys, shapes, order from the reference figures),
    filled with seeded random values."""
    entry = reference_data.model("resnet18")
    gen = torch.Generator().manual_seed(3)
    state = {}
    for t in entry["state_dict"]:
        if t["dtype"] == "int64":
            state[t["key"]] = torch.tensor(0)
        elif t["key"].endswith("running_var"):
            state[t["key"]] = torch.rand(t["shape"], generator=gen) + 0.5
        else:
            state[t["key"]] = torch.randn(t["shape"], generator=gen) * 0.05
    return state


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_torchvision_checkpoint_loads(fmt: str, tmp_path: Path) -> None:
    state = torchvision_resnet18_state()
    graph = analyse_file("specs/resnet18.yaml")
    module = build_module(graph).eval()
    module.load_state_dict(state, strict=True)
    # torchvision's original checkpoints predate num_batches_tracked: the .pt one goes without
    saved = {k: v for k, v in state.items() if fmt != "pt" or not k.endswith("num_batches_tracked")}
    checkpoint = tmp_path / f"resnet18.{fmt}"
    torch.save(saved, checkpoint) if fmt == "pt" else save_file(saved, str(checkpoint))
    options = argparse.Namespace(weights=str(checkpoint), seed=0, opset=20, batch=None, fp16=False)
    (path,) = build(graph, tmp_path / "resnet18.onnx", options)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(run_model(path, x.numpy(), threads=2), want, rtol=1e-4, atol=1e-5)


def test_model_to_onnx_copies_the_module(tmp_path: Path) -> None:
    model = cnnspec.load("specs/cnn1d_example.yaml")
    module = randomised_module(model.graph, seed=5)
    (path,) = model.to_onnx(tmp_path / "m.onnx", module=module, batch=2)
    x = torch.randn(2, *model.graph.input_shape)
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(run_model(path, x.numpy()), want, rtol=1e-4, atol=1e-5)


def test_every_op_through_the_front_end(tmp_path: Path) -> None:
    """One spec using every op of the analysis (odd sizes, ceil mode, non-divisible adaptive pools,
    reflect/circular padding, a channels-last region) against the torch module."""
    spec = tmp_path / "every_op.yaml"
    spec.write_text(EVERY_OP)
    graph = analyse_file(spec)
    assert {leaf.op for leaf in graph.leaves()} == set(REGISTRY)
    compiled = compile_graph(graph, state_dict_to_numpy(randomised_module(graph).state_dict()))
    assert static_shape_mismatches(compiled) == []
    module = randomised_module(graph)
    x = torch.randn(3, *graph.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(run_model(compiled.model, x.numpy()), want, rtol=1e-4, atol=1e-5)
    assert np.abs(want).min() > 1e-3  # no op zeroes the comparison
    with pytest.raises(SpecError, match=r"every_op.yaml:7:5: error: layer `3`: circular padding needs ONNX opset 19 or later"):
        compile_graph(graph, opset=18)


def test_resize_loses_only_the_batch_symbol_in_onnx_inference() -> None:
    """Linear (and non-integer nearest) upsampling is a Resize, whose output ONNX's shape inference gives an
    unknown batch axis; the declared value_info keeps `N`, and every other axis agrees."""
    graph = analyse_text("name: up\ninput: [2, 4, 6]\nlayers:\n  - upsample: {scale: 1.5, mode: linear}\n"
                         "  - conv: {out: 3, kernel: 3}\n", "up.yaml")
    model = compile_graph(graph).model
    assert inferred_shapes(model) == {"0": ("unk__0", 2, 6, 9), "output": ("N", 3, 4, 7)}
    assert declared_shapes(model) == {"0": ("N", 2, 6, 9), "output": ("N", 3, 4, 7)}
    assert inferred_shapes(model, batch_through_resize=True) == declared_shapes(model)


def test_batch_through_resize_restores_only_an_unknown_batch_after_a_resize() -> None:
    """The values computed from a Resize get the batch symbol back, every other axis as inferred."""
    graph = analyse_text("name: up\ninput: [2, 4, 6]\nlayers:\n  - upsample: {scale: 1.5, mode: linear}\n"
                         "  - conv: {out: 3, kernel: 3}\n  - relu\n", "up.yaml")
    compiled = compile_graph(graph)
    assert static_shape_mismatches(compiled) == [
        "0 (upsample): ONNX ('unk__0', 2, 6, 9), cnnspec ('N', 2, 6, 9)",
        "1 (conv): ONNX ('unk__0', 3, 4, 7), cnnspec ('N', 3, 4, 7)"]
    assert static_shape_mismatches(compiled, batch_through_resize=True) == []
    assert inferred_shapes(compiled.model, batch_through_resize=True) == {
        "0": ("N", 2, 6, 9), "1": ("N", 3, 4, 7), "output": ("N", 3, 4, 7)}
