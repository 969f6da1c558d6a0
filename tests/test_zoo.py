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
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf",
    "monai_basicunet_3d",
    "densenet121",
    "regnet_x_400mf",
    "r3d_18", "mc3_18", "r2plus1d_18",
    "squeezenet1_1", "squeezenet1_0",
    "mnasnet1_0",
    "shufflenet_v2_x1_0",
    "fcn_resnet50", "deeplabv3_resnet50", "googlenet",
    "efficientnet_v2_s",
    "inception_v3",
    "lraspp_mobilenet_v3_large",
)
OWN_INPUT = {"lenet5": (1, 28, 28)}
# family members a `--set` away from a zoo spec (issue 12): reference model -> spec, its --set, its --input
# (torchvision's efficientnet_b1/b4/b7: b0's table scaled by width_mult/depth_mult, each at its resolution)
SCALED: dict[str, tuple[str, dict[str, float], tuple[int, ...]]] = {
    "efficientnet_b1": ("efficientnet_b0", {"width_mult": 1.0, "depth_mult": 1.1, "dropout": 0.2}, (3, 240, 240)),
    "efficientnet_b4": ("efficientnet_b0", {"width_mult": 1.4, "depth_mult": 1.8, "dropout": 0.4}, (3, 380, 380)),
    "efficientnet_b7": ("efficientnet_b0", {"width_mult": 2.0, "depth_mult": 3.1, "dropout": 0.5, "bn_eps": 0.001,
                                            "bn_momentum": 0.01}, (3, 600, 600)),
}
NOT_MIRRORED = ("sobel_edges",
                "unet",  # checked against hand-written torch modules: tests/test_references.py
                "espcn",  # tests/test_smallnets.py
                "tcn",  # tests/test_smallnets.py
                "dcgan_generator",  # tests/test_smallnets.py
                )
# Our leaves that torchvision does not have as modules: torch.flatten in forward(), ConvNeXt's
# layer_scale parameter (an nn.Parameter multiplied in forward()).
EXTRA_LEAF_OPS = {"flatten", "layer_scale"}
# Per model: torchvision's MobileNetV2 pools with F.adaptive_avg_pool2d in forward(), not a module.
MODEL_EXTRA_LEAF_OPS = {"mobilenet_v2": {"global_avgpool"}}
MODEL_EXTRA_LEAF_OPS["mnasnet1_0"] = {"global_avgpool"}  # x.mean([2, 3]) in forward()
# x.mean([2, 3]) in forward(); torchvision's channel_shuffle and x.chunk are functions, not modules
MODEL_EXTRA_LEAF_OPS["shufflenet_v2_x1_0"] = {"global_avgpool", "channel_shuffle", "channel_split"}
MODEL_EXTRA_LEAF_OPS["densenet121"] = {"relu", "global_avgpool"}  # F.relu, F.adaptive_avg_pool2d in forward()
# torchvision's segmentation models upsample with F.interpolate in forward() (and in ASPPPooling.forward)
MODEL_EXTRA_LEAF_OPS |= {name: {"upsample"} for name in ("fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large")}
# torchvision's GoogLeNet applies F.relu in BasicConv2d.forward()
MODEL_EXTRA_LEAF_OPS["googlenet"] = {"relu"}
# torchvision's Inception3: F.relu in BasicConv2d.forward(); the Inception modules' pool branches call
# F.avg_pool2d(3, stride 1, padding 1) and F.max_pool2d(3, stride 2) in forward()
MODEL_EXTRA_LEAF_OPS["inception_v3"] = {"relu", "avgpool", "maxpool"}


@functools.cache
def _graph(name: str) -> Graph:
    if name in SCALED:
        spec, overrides, shape = SCALED[name]
        return analyse_file(SPECS / f"{spec}.yaml", overrides=overrides, input_shape=shape)
    return analyse_file(SPECS / f"{name}.yaml")


def _unbatched(shape: list[int]) -> tuple[int, ...]:
    assert shape[0] == 1, shape
    return tuple(shape[1:])


def test_every_zoo_spec_is_covered() -> None:
    specs = {p.stem for p in SPECS.glob("*.yaml")}
    assert specs == set(MIRRORS) | set(NOT_MIRRORED)


@pytest.mark.parametrize("name", MIRRORS + tuple(SCALED))
def test_totals_match_reference(name: str) -> None:
    ref, graph = reference_data.model(name), _graph(name)
    expected_input = OWN_INPUT.get(name) or _unbatched(ref["input_shape"])
    assert graph.input_shape == expected_input
    if name == "googlenet":  # eval mode returns the logits; training also aux2 and aux1 (training_only)
        assert graph.output_shapes == {"logits": (1000,), "aux2": (1000,), "aux1": (1000,)}
        assert graph.inference_outputs() == graph.outputs[:1]
    if name == "inception_v3":  # eval returns the logits; training InceptionOutputs(logits, aux_logits)
        assert graph.output_shapes == {"logits": (1000,), "aux_logits": (1000,)}
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


@pytest.mark.parametrize("name", MIRRORS + tuple(SCALED))
def test_state_dict_matches_reference(name: str) -> None:
    ref, graph = reference_data.model(name), _graph(name)
    expected = [(t["key"], tuple(t["shape"]), t["dtype"]) for t in ref["state_dict"]]
    assert graph.state_dict_keys() == expected


@pytest.mark.parametrize("name", MIRRORS + tuple(SCALED))
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


def test_efficientnet_stochastic_depth_schedule() -> None:
    """torchvision's 0.2 * block / 16 over the stages' instances, computed in the same order (so the same
    floats); the first instance of a stage has no shortcut and so no stochastic depth."""
    depth = {n.path: n.attrs.p for n in _graph("efficientnet_b0").leaves() if n.op == "stochastic_depth"}
    blocks = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (4, 0), (4, 1), (4, 2), (5, 0), (5, 1), (5, 2),
              (6, 0), (6, 1), (6, 2), (6, 3), (7, 0)]
    expected = {f"features.{s}.{i}.stochastic_depth": 0.2 * float(k) / 16 for k, (s, i) in enumerate(blocks) if i}
    assert depth == expected


@pytest.mark.parametrize(("name", "depths"), [
    ("efficientnet_b1", (2, 3, 3, 4, 4, 5, 2)),  # ceil(n * 1.1) of b0's (1, 2, 2, 3, 3, 4, 1)
    ("efficientnet_b7", (4, 7, 7, 10, 10, 13, 4)),  # ceil(n * 3.1)
])
def test_scaled_efficientnet_depths_and_schedule(name: str, depths: tuple[int, ...]) -> None:
    """torchvision's 0.2 * block / total over the scaled depths (b1: 23 blocks, b7: 55); every instance but a
    stage's first has the shortcut, stage 1's second (mbconv1_res) too; b7's BatchNorm is eps 0.001,
    momentum 0.01 throughout."""
    graph = _graph(name)
    depth = {n.path: n.attrs.p for n in graph.leaves() if n.op == "stochastic_depth"}
    blocks = [(s, i) for s, repeat in enumerate(depths, start=1) for i in range(repeat)]
    expected = {f"features.{s}.{i}.stochastic_depth": 0.2 * float(k) / len(blocks) for k, (s, i) in enumerate(blocks)
                if i}
    assert depth == expected and len(depth) == len(blocks) - 7
    norms = {(n.attrs.eps, n.attrs.momentum) for n in graph.leaves() if n.op == "batchnorm"}
    assert norms == ({(0.001, 0.01)} if name == "efficientnet_b7" else {(1e-5, 0.1)})


def test_efficientnet_v2_s_stochastic_depth_schedule() -> None:
    """0.2 * block / 40 over the 40 instances; every instance of stage 1 (24 -> 24, stride 1) has the
    shortcut, the other stages' first instances do not."""
    depth = {n.path: n.attrs.p for n in _graph("efficientnet_v2_s").leaves() if n.op == "stochastic_depth"}
    blocks = [(s, i) for s, repeat in enumerate((2, 4, 4, 6, 9, 15), start=1) for i in range(repeat)]
    expected = {f"features.{s}.{i}.stochastic_depth": 0.2 * float(k) / 40
                for k, (s, i) in enumerate(blocks) if i or s == 1}
    assert len(expected) == 35 and depth == expected


def test_squeeze_excitation_gates_are_muls_of_the_block_input() -> None:
    graph = _graph("mobilenet_v3_large")
    muls = [n for n in graph.leaves() if n.op == "mul"]
    assert len(muls) == 8 and all(not n.name for n in muls)
    first = muls[0]
    assert first.path == "features.4.block.2" and first.input_shapes == ((72, 1, 1), (72, 28, 28))
    assert first.output_shape == (72, 28, 28) and first.macs == 0


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


@pytest.mark.parametrize(("overrides", "params", "gmacs"), [
    ({"depth3": 32, "depth4": 32}, 14_149_480, 3.36),  # densenet169
    ({"depth3": 48, "depth4": 32}, 20_013_928, 4.291),  # densenet201
    ({"growth_rate": 48, "init_features": 96, "depth3": 36, "depth4": 24}, 28_681_000, 7.728),  # densenet161
])
def test_densenet_family_by_set(overrides: dict[str, int], params: int, gmacs: float) -> None:
    """torchvision's meta figures (num_params, _ops = FlopCounter GFLOPs / 2 rounded to 3 places)."""
    graph = analyse_file(SPECS / "densenet121.yaml", overrides=overrides)
    assert graph.root.total_params == params
    assert round(graph.root.total_macs / 1e9, 3) == gmacs


# torchvision's RegNetX stage widths, depths and group width (BlockParams.from_init_params) -> num_params, _ops
REGNET_X = [
    ((64, 128, 288, 672), (1, 3, 7, 5), 16, 7_259_656, 0.8),  # regnet_x_800mf
    ((72, 168, 408, 912), (2, 4, 10, 2), 24, 9_190_136, 1.603),  # regnet_x_1_6gf
    ((96, 192, 432, 1008), (2, 6, 15, 2), 48, 15_296_552, 3.177),  # regnet_x_3_2gf
    ((80, 240, 720, 1920), (2, 5, 15, 1), 120, 39_572_648, 7.995),  # regnet_x_8gf: stage 1 groups by 80
    ((256, 512, 896, 2048), (2, 6, 13, 1), 128, 54_278_536, 15.941),  # regnet_x_16gf
    ((336, 672, 1344, 2520), (2, 7, 13, 1), 168, 107_811_560, 31.736),  # regnet_x_32gf
]


@pytest.mark.parametrize(("widths", "depths", "group_width", "params", "gmacs"), REGNET_X)
def test_regnet_x_family_by_set(widths: tuple[int, ...], depths: tuple[int, ...], group_width: int, params: int,
                                gmacs: float) -> None:
    overrides = {f"width{i}": w for i, w in enumerate(widths, 1)} | {f"depth{i}": d for i, d in enumerate(depths, 1)}
    graph = analyse_file(SPECS / "regnet_x_400mf.yaml", overrides={**overrides, "group_width": group_width})
    assert graph.root.total_params == params
    assert round(graph.root.total_macs / 1e9, 3) == gmacs


@pytest.mark.parametrize(("widths", "params", "gmacs"), [
    ((16, 8, 16, 24, 40, 48, 96, 160), 2_218_512, 0.104),  # mnasnet0_5
    ((24, 16, 24, 32, 64, 72, 144, 240), 3_170_208, 0.215),  # mnasnet0_75
    ((40, 24, 32, 56, 104, 128, 248, 416), 6_282_256, 0.526),  # mnasnet1_3
])
def test_mnasnet_family_by_set(widths: tuple[int, ...], params: int, gmacs: float) -> None:
    """torchvision's _get_depths(alpha) widths -> its meta num_params and _ops."""
    graph = analyse_file(SPECS / "mnasnet1_0.yaml", overrides={f"w{i}": w for i, w in enumerate(widths)})
    assert graph.root.total_params == params
    assert round(graph.root.total_macs / 1e9, 3) == gmacs


@pytest.mark.parametrize(("overrides", "params", "gmacs"), [
    ({"width1": 48, "width2": 96, "width3": 192}, 1_366_792, 0.04),  # shufflenet_v2_x0_5
    ({"width1": 176, "width2": 352, "width3": 704}, 3_503_624, 0.296),  # shufflenet_v2_x1_5
    ({"width1": 244, "width2": 488, "width3": 976, "last": 2048}, 7_393_996, 0.583),  # shufflenet_v2_x2_0
])
def test_shufflenet_family_by_set(overrides: dict[str, int], params: int, gmacs: float) -> None:
    """torchvision's stages_out_channels -> its meta num_params and _ops."""
    graph = analyse_file(SPECS / "shufflenet_v2_x1_0.yaml", overrides=overrides)
    assert graph.root.total_params == params
    assert round(graph.root.total_macs / 1e9, 3) == gmacs


def test_lraspp_last_stage_is_dilated_not_strided() -> None:
    """torchvision's dilated=True: blocks 13-15's depthwise convs have dilation 2, stride 1 (block 13's
    configured stride 2 is dropped), padding (5 - 1) // 2 * 2 = 4; the shapes alone cannot tell (padding 2,
    dilation 1 gives the same 14x14), the receptive field can."""
    graph = _graph("lraspp_mobilenet_v3_large")
    depthwise = {n.path: (n.attrs.stride, n.attrs.dilation, n.attrs.padding) for n in graph.leaves()
                 if n.op == "conv" and n.attrs.groups > 1}
    assert [p for p, (_, dilation, _) in depthwise.items() if dilation != (1, 1)] == [
        "backbone.13.block.1.0", "backbone.14.block.1.0", "backbone.15.block.1.0"]
    assert {depthwise[f"backbone.{i}.block.1.0"] for i in (13, 14, 15)} == {((1, 1), (2, 2), (4, 4))}
    assert [n.output_shape for n in graph.leaves() if n.op == "upsample"] == [(128, 28, 28), (21, 224, 224)]
    plain = _graph("mobilenet_v3_large")  # the same blocks, undilated: unchanged
    assert all(n.attrs.dilation == (1, 1) for n in plain.leaves() if n.op == "conv")
