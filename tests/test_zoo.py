"""The model zoo against the reference figures measured on torchvision / hand-written PyTorch models.

Every spec in ``specs/`` that mirrors a reference model must reproduce it exactly: parameter, trainable and
buffer counts, output shape, MACs (= torch FlopCounterMode FLOPs / 2), the ``state_dict`` (keys, shapes,
dtypes, order) and the output shape of every leaf module call. The reference data lives in
``tests/reference/`` (see ``tests/reference_data.py``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import reference_data

from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph, Node

ROOT = Path(__file__).parents[1]
SPECS = ROOT / "specs"

# spec name == reference model name. lenet5 is the lecture's 1x28x28 sigmoid variant, the reference the
# classic 1x32x32 tanh one: padding 2 on 28x28 gives the classic's 28x28 feature maps, so every figure
# below (params, MACs, keys, per-layer shapes) is the same; only the input shape differs.
MIRRORS = (
    "alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "convnext_tiny",
    "lenet5", "cnn1d_example", "cnn3d_example",
    # tests/reference/coverage_models.json (issue 12)
    "mobilenet_v2", "fcn_resnet50", "deeplabv3_resnet50", "googlenet",
)
OWN_INPUT = {"lenet5": (1, 28, 28)}
NOT_MIRRORED = ("sobel_edges",)
# Our leaves that torchvision does not have as modules: torch.flatten in forward(), ConvNeXt's
# layer_scale parameter (an nn.Parameter multiplied in forward()).
EXTRA_LEAF_OPS = {"flatten", "layer_scale"}
# Per model: torchvision's MobileNetV2 pools with F.adaptive_avg_pool2d in forward(), not a module.
MODEL_EXTRA_LEAF_OPS = {"mobilenet_v2": {"global_avgpool"}}
# torchvision's segmentation models upsample with F.interpolate in forward() (and in ASPPPooling.forward)
MODEL_EXTRA_LEAF_OPS |= {name: {"upsample"} for name in ("fcn_resnet50", "deeplabv3_resnet50")}
# torchvision's GoogLeNet applies F.relu in BasicConv2d.forward()
MODEL_EXTRA_LEAF_OPS["googlenet"] = {"relu"}


@functools.cache
def _graph(name: str) -> Graph:
    return analyse_file(SPECS / f"{name}.yaml")


def _unbatched(shape: list[int]) -> tuple[int, ...]:
    assert shape[0] == 1, shape
    return tuple(shape[1:])


def test_every_zoo_spec_is_covered() -> None:
    specs = {p.stem for p in SPECS.glob("*.yaml")}
    assert specs == set(MIRRORS) | set(NOT_MIRRORED)


@pytest.mark.parametrize("name", MIRRORS)
def test_totals_match_reference(name: str) -> None:
    ref, graph = reference_data.model(name), _graph(name)
    expected_input = OWN_INPUT.get(name) or _unbatched(ref["input_shape"])
    assert graph.input_shape == expected_input
    if name == "googlenet":  # eval mode returns the logits; training also aux2 and aux1 (training_only)
        assert graph.output_shapes == {"logits": (1000,), "aux2": (1000,), "aux1": (1000,)}
        assert graph.inference_outputs() == graph.outputs[:1]
    if isinstance(ref["output_shape"], dict):  # several outputs, in torchvision's order
        assert graph.output_shapes == {k: _unbatched(v) for k, v in ref["output_shape"].items()}
        assert [name for name, _ in graph.outputs] == list(ref["output_shape"])
    else:
        assert graph.output_shape == _unbatched(ref["output_shape"])
    assert graph.root.total_params == ref["params_total"]
    assert graph.root.total_trainable == ref["params_trainable"]
    assert graph.root.total_buffers == ref["buffers_numel_total"]
    assert ref["torch_flop_counter_flops"] % 2 == 0
    assert graph.root.total_macs == ref["torch_flop_counter_flops"] // 2


@pytest.mark.parametrize("name", MIRRORS)
def test_state_dict_matches_reference(name: str) -> None:
    ref, graph = reference_data.model(name), _graph(name)
    expected = [(t["key"], tuple(t["shape"]), t["dtype"]) for t in ref["state_dict"]]
    assert graph.state_dict_keys() == expected


@pytest.mark.parametrize("name", MIRRORS)
def test_leaf_output_shapes_match_reference(name: str) -> None:
    ref, graph = reference_data.model(name), _graph(name)
    expected = [(call["name"], _unbatched(call["output_shape"])) for call in ref["leaf_calls"]]
    ref_names = {path for path, _ in expected}
    # not the adds and concats of structures; not the layers that run in training only (eval-mode calls)
    modules = [leaf for leaf in graph.leaves() if leaf.name and not leaf.training_only]
    ours = [(leaf.path, leaf.output_shape) for leaf in modules if leaf.path in ref_names]
    assert ours == expected
    extras = {leaf.op for leaf in modules if leaf.path not in ref_names}
    assert extras <= EXTRA_LEAF_OPS | MODEL_EXTRA_LEAF_OPS.get(name, set()), extras


def test_resnet18_num_classes_override() -> None:
    graph = analyse_file(SPECS / "resnet18.yaml", overrides={"num_classes": 10})
    assert graph.output_shape == (10,)
    # fc shrinks from 512x1000 + 1000 to 512x10 + 10
    assert graph.root.total_params == 11_689_512 - 990 * 513
    assert ("fc.weight", (10, 512), "float32") in graph.state_dict_keys()


def test_convnext_stochastic_depth_per_stage() -> None:
    depth = {n.path: n.attrs.p for n in _graph("convnext_tiny").leaves() if n.op == "stochastic_depth"}
    assert len(depth) == 18
    assert [depth[f"features.{s}.0.stochastic_depth"] for s in (1, 3, 5, 7)] == [0.006, 0.024, 0.059, 0.094]


def _leaf(graph: Graph, path: str) -> Node:
    (node,) = [n for n in graph.leaves() if n.path == path]
    return node


def test_sobel_edges_fixed_kernels() -> None:
    graph = _graph("sobel_edges")
    assert graph.input_shape == (1, 32, 32)
    assert graph.output_shape == (2, 32, 32)
    assert graph.state_dict_keys() == [
        ("blur.weight", (1, 1, 3, 3), "float32"),
        ("sobel.weight", (2, 1, 3, 3), "float32"),
    ]
    assert graph.root.total_params == 9 + 18  # frozen, still parameters (requires_grad=False)
    assert graph.root.total_trainable == 0
    assert graph.root.total_macs == (9 + 18) * 32 * 32
    sobel = _leaf(graph, "sobel")
    assert sobel.attrs.bias is False and sobel.attrs.trainable is False
    assert sobel.attrs.kernel == (3, 3) and sobel.attrs.padding == (1, 1)
    assert sobel.attrs.weights[0][0] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert sobel.attrs.weights[1][0] == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    assert [t.trainable for t in sobel.params] == [False]
