"""The generated PyTorch module of every zoo spec runs exactly the analysed network.

Per spec, at the spec's own input size: parameter / trainable / buffer counts, the output shape of a batch
of 2, the output shape of every leaf module call (forward hooks), FlopCounterMode FLOPs = 2 x the static
MACs, and for the torchvision mirrors the state_dict against torchvision's (from the reference data).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import reference_data
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnspec.compile.torch import build_module, render_source
from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph

ROOT = Path(__file__).parents[1]
SPECS = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
MIRRORS = ("alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "convnext_tiny",
           "lenet5", "cnn1d_example", "cnn3d_example", "mobilenet_v2", "monai_basicunet_3d", "mobilenet_v3_large",
           "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "fcn_resnet50", "deeplabv3_resnet50", "googlenet")
MIRRORS += ("densenet121",)
MIRRORS += ("regnet_x_400mf",)
MIRRORS += ("r3d_18", "mc3_18", "r2plus1d_18")
MIRRORS += ("squeezenet1_1", "squeezenet1_0")
MIRRORS += ("mnasnet1_0",)
MIRRORS += ("shufflenet_v2_x1_0",)
MIRRORS += ("efficientnet_v2_s",)
MIRRORS += ("inception_v3",)
MIRRORS += ("lraspp_mobilenet_v3_large",)
# 28-43 GMACs a sample: seconds per forward on one thread, so only with the slow tests
HEAVY = {"monai_basicunet_3d", "r3d_18", "mc3_18", "r2plus1d_18", "fcn_resnet50", "deeplabv3_resnet50"}


def _marked(names: Any) -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]

torch.set_num_threads(2)


@functools.cache
def _graph(name: str) -> Graph:
    return analyse_file(ROOT / "specs" / f"{name}.yaml")


# ops written as plain calls (torch.flatten(x, 1)) where unnamed: they are not modules, so they make no leaf call
FUNCTIONAL = {"flatten", "relu", "sigmoid", "tanh", "silu", "gelu", "mish"}
FUNCTIONAL |= {"channel_split"}  # x.chunk(2, dim=1)[0]


def _leaf_calls(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[tuple[int, ...]]]]:
    """The model's output and the output shape of every call of every leaf module, by module path."""
    calls: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            def hook(_m: Any, _i: Any, out: torch.Tensor, name: str = name) -> None:
                calls.setdefault(name, []).append(tuple(out.shape[1:]))
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        out = model(x)
    for h in handles:
        h.remove()
    return out, calls


def test_zoo_is_covered() -> None:
    assert set(MIRRORS) <= set(SPECS) and len(SPECS) >= 10


@pytest.mark.parametrize("name", _marked(SPECS))
def test_counts_shapes_flops_and_every_leaf(name: str) -> None:
    check_model(_graph(name))


def check_model(graph: Graph) -> torch.nn.Module:
    """The generated module of ``graph`` against the analysis: counts, output, FLOPs, every leaf call."""
    torch.manual_seed(0)
    model = build_module(graph).eval()
    assert sum(p.numel() for p in model.parameters()) == graph.root.total_params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == graph.root.total_trainable
    assert sum(b.numel() for b in model.buffers()) == graph.root.total_buffers
    keys = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert keys == graph.state_dict_keys()

    with FlopCounterMode(display=False) as counter:
        out, actual = _leaf_calls(model, torch.randn(2, *graph.input_shape))
    if graph.output_form == "one" or len(graph.inference_outputs()) == 1 < len(graph.outputs):
        # one tensor (googlenet in eval: its aux heads run in training only)
        assert tuple(out.shape) == (2, *graph.shapes[graph.inference_outputs()[0][1]])
    elif graph.output_form == "dict":  # torchvision's segmentation models: {"out": ..., "aux": ...}
        assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, *s) for k, s in graph.output_shapes.items()}
    else:
        assert tuple(out.shape) == (2, *graph.output_shape)
    assert counter.get_total_flops() == 2 * 2 * graph.root.total_macs  # batch 2, FLOPs = 2 x MACs

    modules = dict(model.named_modules())
    expected: dict[str, list[tuple[int, ...]]] = {}
    for leaf in graph.leaves():
        if leaf.training_only:  # an auxiliary classifier: not called in eval mode
            continue
        if not leaf.name:  # a residual\x27s add, a gate\x27s mul or a concat: `out += identity`, `torch.cat`
            assert leaf.op in ("add", "mul", "concat"), leaf.path
        elif leaf.path in modules:
            expected.setdefault(leaf.path, []).append(leaf.output_shape)
        else:  # a parameter (layer_scale) or an unnamed stateless op written as a plain call
            assert leaf.op == "layer_scale" or (leaf.op in FUNCTIONAL and leaf.name.isdigit()) or \
                (leaf.op == "upsample" and leaf.attrs.size_of is not None), leaf.path  # F.interpolate
    assert actual == expected  # every module call, in order, shared modules once per call
    assert sum(len(v) for v in actual.values()) >= len(graph.leaves()) // 2
    return model


@pytest.mark.parametrize("name", _marked(MIRRORS))
def test_state_dict_equals_reference(name: str) -> None:
    ref = reference_data.model(name)
    graph = _graph(name)
    model = build_module(graph)
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    theirs = [(e["key"], e["shape"], e["dtype"]) for e in ref["state_dict"]]
    assert ours == theirs
    checkpoint = {e["key"]: torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"])) for e in ref["state_dict"]}
    result = model.load_state_dict(checkpoint, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in model.parameters()) == ref["params_total"]


@pytest.mark.parametrize("name", ["efficientnet_b1", "efficientnet_b4", "efficientnet_b7"])
def test_scaled_family_member_loads_the_reference_state_dict(name: str) -> None:
    """efficientnet_b0's module generated with b1/b4/b7's --set takes torchvision's state_dict (keys, order,
    shapes) with strict=True; b7's BatchNorms have its eps and momentum."""
    from test_zoo import SCALED

    spec, overrides, shape = SCALED[name]
    graph = analyse_file(ROOT / "specs" / f"{spec}.yaml", overrides=overrides, input_shape=shape)
    ref = reference_data.model(name)
    model = build_module(graph)
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["dtype"]) for e in ref["state_dict"]]
    checkpoint = {e["key"]: torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"])) for e in ref["state_dict"]}
    result = model.load_state_dict(checkpoint, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in model.parameters()) == ref["params_total"]
    norms = {(m.eps, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert norms == {(overrides.get("bn_eps", 1e-5), overrides.get("bn_momentum", 0.1))}


def test_scaled_efficientnet_b1_runs_as_analysed() -> None:
    """The forward of b0's module generated for b1 at 240x240: every leaf call's shape, FLOPs = 2 x MACs, and
    the output shape against torchvision's."""
    from test_zoo import SCALED

    spec, overrides, shape = SCALED["efficientnet_b1"]
    graph = analyse_file(ROOT / "specs" / f"{spec}.yaml", overrides=overrides, input_shape=shape)
    check_model(graph)
    assert [1, *graph.output_shape] == reference_data.model("efficientnet_b1")["output_shape"]


@pytest.mark.parametrize("name", SPECS)
def test_generated_file_is_current_and_deterministic(name: str) -> None:
    first, second = render_source(_relative_graph(name)), render_source(_relative_graph(name))
    assert first == second
    assert (ROOT / "generated" / f"{name}.py").read_text() == first


def _relative_graph(name: str) -> Graph:
    graph = analyse_file(ROOT / "specs" / f"{name}.yaml")
    graph.source = f"specs/{name}.yaml"
    return graph


def test_parameters_reach_the_generated_constructor() -> None:
    """Model(num_classes=7, in_channels=1) equals the spec analysed with those params."""
    default = analyse_file(ROOT / "specs" / "resnet18.yaml", input_shape=(3, 64, 64))
    changed = analyse_file(ROOT / "specs" / "resnet18.yaml", {"num_classes": 7, "in_channels": 1}, (1, 64, 64))
    model = build_module(default, num_classes=7, in_channels=1).eval()
    assert sum(p.numel() for p in model.parameters()) == changed.root.total_params
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 1, 64, 64)).shape) == (2, 7)
