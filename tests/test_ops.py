"""Every op of the registry against PyTorch, driven by the registry itself.

Each op must have a validating example, a caption, both lowerings and at least one parity case below (the
test fails naming any op without). A case is a tiny spec; for the node of the op under test:

* its PyTorch reference (``op.reference``, written independently of the lowering) gives the analysed output
  shape, parameter and buffer shapes (state_dict order) and MACs (``FlopCounterMode`` / 2);
* the generated PyTorch module computes what the reference computes (same weights);
* the ONNX model computes what the generated module computes, in onnxruntime (same weights).
"""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from cnnspec.compile.onnx.check import run_model
from cnnspec.compile.onnx.model import to_model_proto
from cnnspec.compile.onnx.weights import state_dict_to_numpy
from cnnspec.compile.torch import build_module
from cnnspec.frontend import analyse_text
from cnnspec.ir import Graph, Node
from cnnspec.ops import REGISTRY

torch.set_num_threads(1)

# (op under test, its layer, input shape): a spec of one layer unless the op needs structure around it
CASES: list[tuple[str, str, str]] = [
    ("conv", "conv: {out: 8, kernel: 3, stride: 2, padding: 1}", "[3, 9, 9]"),
    ("conv", "conv: {out: 6, kernel: 4, padding: same, dilation: 2}", "[4, 17]"),
    ("conv", "conv: {out: 4, kernel: 3, padding: 1, bias: false}", "[2, 5, 6, 7]"),
    ("conv", "conv: {out: 8, kernel: 3, padding: 1, groups: 8}", "[8, 7, 7]"),
    ("conv", "conv: {out: 16, kernel: 3, groups: 4, stride: [1, 2]}", "[8, 7, 9]"),
    ("conv", "conv: {out: 4, kernel: 3, padding: 1, padding_mode: reflect}", "[3, 6, 6]"),
    ("conv", "conv: {out: 4, kernel: 5, padding: 2, padding_mode: replicate}", "[3, 11]"),
    ("conv", "conv: {out: 3, kernel: 3, padding: 1, padding_mode: reflect}", "[2, 4, 5, 6]"),
    ("conv", "conv: {out: 4, kernel: 5, padding: 2, padding_mode: circular}", "[3, 8, 8]"),
    ("conv", "conv: {weights: [[1, 0, -1], [2, 0, -2], [1, 0, -1]], padding: 1, trainable: false}", "[1, 6, 6]"),
    ("conv_transpose", "conv_transpose: {out: 6, kernel: 4, stride: 2, padding: 1, bias: false}", "[8, 4, 4]"),
    ("conv_transpose", "conv_transpose: {out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1}", "[3, 5, 7]"),
    ("conv_transpose", "conv_transpose: {out: 6, kernel: 3, stride: 3, groups: 3, dilation: 2}", "[3, 9]"),
    ("conv_transpose", "conv_transpose: {out: 2, kernel: [2, 3, 2], stride: [2, 1, 2], padding: [0, 1, 1]}",
     "[4, 3, 4, 5]"),
    ("conv_transpose", "conv_transpose: {out: 4, kernel: 3, stride: 1, dilation: 2, output_padding: 1, padding: 3}",
     "[2, 6, 6]"),
    ("conv_transpose", "conv_transpose: {out: 3, kernel: 2, dilation: 3, output_padding: [2, 1], padding: [1, 0]}",
     "[2, 4, 5]"),
    ("conv_transpose", "conv_transpose: {out: 2, kernel: 2, dilation: 3, output_padding: 2, bias: false}", "[2, 4]"),
    ("maxpool", "maxpool: {kernel: 3, stride: 2, padding: 1}", "[4, 9, 9]"),
    ("maxpool", "maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}", "[4, 8, 9]"),
    ("maxpool", "maxpool: {kernel: 2, dilation: 2, padding: 1}", "[2, 7, 8]"),
    ("maxpool", "maxpool: {kernel: 3, stride: 2}", "[3, 11]"),
    ("maxpool", "maxpool: {kernel: 2}", "[2, 4, 6, 6]"),
    ("maxpool", "maxpool: {kernel: 3, stride: 2, ceil_mode: true}", "[4, 8, 10]"),
    ("maxpool", "maxpool: {kernel: 2, stride: 3, dilation: 3, ceil_mode: true}", "[2, 8, 8]"),
    ("maxpool", "maxpool: {kernel: 2, stride: 1, padding: 1, dilation: 2}", "[2, 1, 3]"),
    ("maxpool", "maxpool: {kernel: 2, stride: 2, ceil_mode: true}", "[3, 11]"),
    ("avgpool", "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
     "[3, 8, 9]"),
    ("avgpool", "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}", "[3, 8, 9]"),
    ("avgpool", "avgpool: {kernel: 2}", "[2, 4, 6, 6]"),
    ("avgpool", "avgpool: {kernel: 3, stride: 2, padding: 1}", "[3, 9, 8]"),
    ("avgpool", "avgpool: {kernel: 3, stride: 2, padding: 1, count_include_pad: false}", "[3, 9, 8]"),
    ("avgpool", "avgpool: {kernel: 3, stride: 2, ceil_mode: true}", "[3, 10]"),
    ("sumpool", "sumpool: {kernel: 3, stride: 2, padding: 1}", "[3, 10]"),
    ("sumpool", "sumpool: {kernel: 2, ceil_mode: true}", "[3, 7, 7]"),
    ("sumpool", "sumpool: {kernel: 2}", "[2, 4, 4, 6]"),
    ("adaptive_avgpool", "adaptive_avgpool: {out: [3, 4]}", "[3, 7, 10]"),
    ("adaptive_avgpool", "adaptive_avgpool: {out: 2}", "[2, 4, 5, 6]"),
    ("adaptive_maxpool", "adaptive_maxpool: {out: 3}", "[3, 10]"),
    ("adaptive_maxpool", "adaptive_maxpool: {out: [3, 4]}", "[3, 7, 10]"),
    ("adaptive_maxpool", "adaptive_maxpool: {out: [2, 3, 1]}", "[2, 5, 7, 4]"),
    ("adaptive_avgpool", "adaptive_avgpool: {out: 2}", "[2, 8, 6]"),
    ("adaptive_avgpool", "adaptive_avgpool: {out: 5}", "[2, 12]"),
    ("global_avgpool", "global_avgpool", "[3, 5, 6]"),
    ("global_maxpool", "global_maxpool", "[3, 5, 6, 2]"),
    ("upsample", "upsample: {scale: 2}", "[3, 4, 5]"),
    ("upsample", "upsample: {scale: 2, mode: linear}", "[3, 4, 5]"),
    ("upsample", "upsample: {scale: [2, 3], mode: bilinear, align_corners: true}", "[2, 4, 5]"),
    ("upsample", "upsample: {size: 11, mode: linear}", "[2, 5]"),
    ("upsample", "upsample: {scale: 3}", "[2, 7]"),
    ("upsample", "upsample: {size: [6, 8, 7], mode: trilinear}", "[2, 3, 4, 5]"),
    ("upsample", "upsample: {scale: 2, mode: linear, align_corners: false}", "[2, 2, 3, 3]"),
    ("upsample", "upsample: {scale: 1.5}", "[2, 4, 6]"),
    ("upsample", "upsample: {scale: 1.5, mode: linear}", "[2, 4, 6]"),
    ("upsample", "upsample: {size: [9, 4]}", "[2, 6, 9]"),
    ("upsample", "upsample: {size: 1, mode: linear}", "[2, 6]"),
    ("upsample", "maxpool: {kernel: 2}, upsample: {size_of: input, mode: bilinear}", "[2, 4, 5]"),
    ("upsample", "maxpool: {kernel: [1, 2, 2]}, upsample: {size_of: input}", "[2, 3, 6, 5]"),
    ("batchnorm", "batchnorm", "[4, 5, 5]"),
    ("batchnorm", "batchnorm", "[6]"),
    ("batchnorm", "batchnorm: {affine: false, eps: 1.0e-3}", "[3, 9]"),
    ("batchnorm", "batchnorm: {track_running_stats: false}", "[3, 4, 4]"),
    ("instancenorm", "instancenorm: {affine: true}", "[4, 5, 6]"),
    ("instancenorm", "instancenorm", "[3, 9]"),
    ("instancenorm", "instancenorm: {affine: true, eps: 1.0e-3}", "[2, 3, 4, 5]"),
    ("instancenorm", "instancenorm: {affine: true, track_running_stats: true}", "[3, 4, 4]"),
    ("layernorm", "layernorm: {over: channels, eps: 1.0e-6}", "[6, 4, 5]"),
    ("layernorm", "layernorm: {over: last, affine: false}", "[3, 4, 7]"),
    ("groupnorm", "groupnorm: {groups: 2}", "[6, 4, 4]"),
    ("groupnorm", "groupnorm: {groups: 2, affine: false}", "[4, 9]"),
    ("layernorm", "layernorm: {over: channels, affine: false}", "[6, 4, 5]"),
    ("relu", "relu", "[3, 4, 4]"),
    ("leaky_relu", "leaky_relu: {slope: 0.2}", "[3, 4, 4]"),
    ("gelu", "gelu", "[3, 4, 4]"),
    ("gelu", "gelu: {approximate: tanh}", "[5]"),
    ("silu", "silu", "[3, 4, 4]"),
    ("sigmoid", "sigmoid", "[3, 4, 4]"),
    ("tanh", "tanh", "[3, 4, 4]"),
    ("softmax", "softmax", "[3, 4, 4]"),
    ("softmax", "softmax: {over: last}", "[3, 4, 5]"),
    ("identity", "identity", "[3, 4, 4]"),
    ("relu6", "relu6", "[3, 4, 4]"),
    ("hardtanh", "hardtanh: {min: -2, max: 0.5}", "[3, 4, 4]"),
    ("hardswish", "hardswish", "[3, 4, 4]"),
    ("hardsigmoid", "hardsigmoid", "[3, 4, 4]"),
    ("elu", "elu", "[3, 4, 4]"),
    ("elu", "elu: {alpha: 0.5}", "[7]"),
    ("mish", "mish", "[3, 4, 4]"),
    ("mish", "mish", "[2, 3, 4, 5]"),
    ("prelu", "prelu", "[3, 4, 4]"),
    ("prelu", "prelu: {per_channel: true}", "[3, 4, 4]"),
    ("prelu", "prelu: {per_channel: true, init: 0.1}", "[6]"),
    ("prelu", "prelu: {per_channel: true}", "[4, 2, 3, 5]"),
    ("prelu", "prelu: {init: -0.5}", "[4, 9]"),
    ("dropout", "dropout: {p: 0.3}", "[3, 4, 4]"),
    ("stochastic_depth", "stochastic_depth: {p: 0.2}", "[3, 4, 4]"),
    ("flatten", "flatten", "[3, 4, 5]"),
    ("linear", "linear: {out: 7}", "[12]"),
    ("linear", "linear: {out: 7, over: channels}", "[5, 3, 4]"),
    ("linear", "linear: {out: 7, over: last, bias: false}", "[5, 3, 4]"),
    ("linear", "linear: {out: 3, over: channels, bias: false}", "[6, 7]"),
    ("linear", "linear: {out: 5, bias: false}", "[12]"),
    ("layer_scale", "layer_scale: {init: 0.5}", "[6, 3, 3]"),
    ("permute", "permute: {dims: [0, 2, 3, 1]}", "[3, 4, 5]"),
    ("reshape", "reshape: {shape: [8, 2, 3]}", "[48]"),
    ("reshape", "reshape: {shape: [-1, 4, 4]}", "[32]"),
    ("reshape", "reshape: {shape: [6, -1]}", "[3, 4, 5]"),
    ("reshape", "reshape: {shape: [60]}", "[3, 4, 5]"),
    ("reshape", "reshape: {shape: [4, 3, 2, 2]}", "[6, 8]"),
    ("reshape", "reshape: {shape: [2, 2, 2]}", "[8]"),
    ("pad", "pad: {left: 6}", "[2, 5]"),
    ("pad", "pad: {padding: 2, mode: reflect}", "[3, 5, 6]"),
    ("pad", "pad: {padding: [1, [0, 3]], mode: replicate}", "[2, 4, 5]"),
    ("pad", "pad: {top: 1, bottom: 2, left: 3, mode: circular}", "[2, 4, 5]"),
    ("pad", "pad: {padding: [[1, 0], [0, 2], [2, 1]], value: 1.5}", "[2, 3, 4, 5]"),
    ("pad", "pad: {front: 1, right: 2, mode: reflect}", "[2, 3, 4, 5]"),
    ("pad", "pad: {padding: 4, mode: replicate}", "[2, 3]"),
    ("pixel_shuffle", "pixel_shuffle: {factor: 2}", "[12, 3, 4]"),
    ("pixel_shuffle", "pixel_shuffle: {factor: 3}", "[18, 2, 2]"),
    ("pixel_unshuffle", "pixel_unshuffle: {factor: 2}", "[3, 4, 6]"),
    ("pixel_unshuffle", "pixel_unshuffle: {factor: 3}", "[2, 6, 3]"),
    ("channel_shuffle", "channel_shuffle: {groups: 3}", "[12, 4, 4]"),
    ("channel_shuffle", "channel_shuffle: {groups: 2}", "[6, 5]"),
    ("channel_shuffle", "channel_shuffle: {groups: 4}", "[8, 2, 3, 3]"),
    ("channel_split", "channel_split: {parts: 2, part: 1}", "[6, 4, 4]"),
    ("channel_split", "channel_split: {parts: 2, part: 0}", "[5, 7]"),
    ("channel_split", "channel_split: {parts: 4, part: 2}", "[6, 2, 3, 3]"),
    ("crop", "crop: {size: 4}", "[3, 9, 8]"),
    ("crop", "crop: {size: [3]}", "[2, 10]"),
    ("crop", "crop: {size: [2, 5, 3]}", "[2, 4, 7, 3]"),
    ("crop", "maxpool: {kernel: 2, as: half}, crop: {from: input, size_of: half}", "[2, 9, 8]"),
    ("crop", "conv: {out: 3, kernel: 5, as: small}, crop: {from: input, size_of: small}", "[2, 11]"),
    ("crop", "maxpool: {kernel: [1, 2, 3], as: small}, crop: {from: input, size_of: small}", "[2, 3, 7, 9]"),
    ("slice", "slice: {ranges: [[2, -2], [1, 4]]}", "[3, 9, 8]"),
    ("slice", "slice: {channels: [2, null]}", "[5, 7]"),
    ("slice", "slice: {ranges: [[-3, null]], channels: [-4, -1]}", "[6, 10]"),
    ("slice", "slice: {ranges: [null, [-5, 99], [0, 2]]}", "[2, 4, 7, 3]"),
    ("slice", "slice: {ranges: [[1, 3], null, [-9, 2]], channels: [0, 1]}", "[2, 4, 7, 3]"),
    ("add", "residual: {body: [conv: {out: 3, kernel: 3, padding: 1}]}", "[3, 5, 5]"),
    ("concat", "concat: {branches: [[conv: {out: 2, kernel: 1}], [], [relu]]}", "[3, 5, 5]"),
    ("add", "conv: {out: 3, kernel: 1, as: a}, global_avgpool, add: {of: [a, previous]}", "[2, 4, 5]"),
    ("add", "identity: {as: x0}, global_avgpool: {as: g}, conv: {out: 3, kernel: 1, from: x0}, add: {of: [g, previous]}",
     "[3, 6]"),
    ("mul", "gate: {body: [global_avgpool, conv: {out: 4, kernel: 1}, sigmoid]}", "[4, 5, 5]"),
    ("mul", "gate: {body: [global_avgpool, conv: {out: 2, kernel: 1}, relu, conv: {out: 6, kernel: 1}, hardsigmoid]}",
     "[6, 9]"),
    ("mul", "gate: {body: [global_avgpool, conv: {out: 3, kernel: 1}, sigmoid]}", "[3, 2, 3, 4]"),
    ("mul", "identity: {as: x0}, conv: {out: 1, kernel: 3, padding: 1}, mul: {of: [x0, previous]}", "[4, 5, 6]"),
    ("mul", ("identity: {as: x0}, conv: {out: 3, kernel: 1, as: a}, conv: {out: 3, kernel: 1, from: x0}, "
             "mul: {of: [a, previous]}"), "[2, 7]"),
]
# scale output ranges the references compare at (softmax sums to one; sigmoids saturate)
RTOL, ATOL = 1e-4, 1e-5


def moved(module: nn.Module) -> nn.Module:
    """``module`` applied over the channel axis of a channel-first tensor, state_dict keys unchanged."""
    class Moved(type(module)):  # type: ignore[misc]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x.movedim(1, -1)).movedim(-1, 1)

    module.__class__ = Moved
    return module


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}:{case[1][:40]}:{case[2]}"


def _graph(layer: str, shape: str) -> Graph:
    return analyse_text(f"name: case\ninput: {shape}\nlayers: [{layer}]\n", "case.yaml")


def _node(graph: Graph, op: str) -> Node:
    return next(n for n in graph.leaves() if n.op == op)


def _randomised(graph: Graph) -> nn.Module:
    """The generated module with random weights and running statistics, in eval mode."""
    module = build_module(graph).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point and not name.endswith("running_var"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.5)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    return module


def test_every_op_declares_everything_and_has_a_case() -> None:
    cased = {op for op, _, _ in CASES}
    assert sorted(set(REGISTRY) - cased) == [], "ops without a parity case in tests/test_ops.py"
    for name, op in REGISTRY.items():
        assert op.name == name and op.family and op.Settings.summary, name
        op.Settings.model_validate({k: 3 if str(v).startswith("$") else v for k, v in op.Settings.example.items()})
        for hook in ("infer", "torch", "onnx", "reference"):
            assert getattr(type(op), hook) is not getattr(type(op).__mro__[-2], hook), f"{name} lacks {hook}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_reference_gives_the_analysed_shapes_tensors_and_macs(case: tuple[str, str, str]) -> None:
    op_name, layer, shape = case
    graph = _graph(layer, shape)
    node = _node(graph, op_name)
    op = REGISTRY[op_name]
    assert op.caption(node.attrs)
    ref = eval(op.reference(node.attrs, node.input_shapes), {"torch": torch, "nn": nn, "F": F, "moved": moved})
    if isinstance(ref, nn.Module):
        ref.eval()
        keys = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
        assert keys == [(t.key, t.shape) for t in (*node.params, *node.buffers) if t.key]
    inputs = [torch.randn(2, *s) for s in node.input_shapes]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = ref(*inputs)
    assert tuple(out.shape) == (2, *node.output_shape)
    assert counter.get_total_flops() // 2 == 2 * node.macs


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_generated_module_and_onnx_compute_the_reference(case: tuple[str, str, str]) -> None:
    op_name, layer, shape = case
    graph = _graph(layer, shape)
    node = _node(graph, op_name)
    op = REGISTRY[op_name]
    ref = eval(op.reference(node.attrs, node.input_shapes), {"torch": torch, "nn": nn, "F": F, "moved": moved})
    # a reference that is a plain function holds the tensors' initial values (layer_scale's init)
    module = _randomised(graph) if isinstance(ref, nn.Module) or not node.params else build_module(graph).eval()
    x = torch.randn(3, *graph.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = module(x)
    if len(graph.leaves()) == 1:  # the reference is the whole network: same weights, same output
        if isinstance(ref, nn.Module):
            prefix = f"{node.path}."
            ref.load_state_dict({k.removeprefix(prefix): v for k, v in module.state_dict().items()})
            ref.eval()
        with torch.no_grad():
            np.testing.assert_allclose(ref(x).numpy(), want.numpy(), rtol=RTOL, atol=ATOL)
    model = to_model_proto(graph, state_dict_to_numpy(module.state_dict()), opset=20)
    np.testing.assert_allclose(run_model(model, x.numpy()), want.numpy(), rtol=RTOL, atol=ATOL)




@pytest.mark.parametrize("module", ["shape", "conv", "pool", "resample", "norm", "activation", "regularise", "linear",
                                    "layout", "merge"])
def test_worked_examples_in_docstrings(module: str) -> None:
    """The shape rules' worked examples (formulas with their numbers) hold."""
    result = doctest.testmod(importlib.import_module(f"cnnspec.ops.{module}"))
    assert result.attempted > 0 and result.failed == 0
