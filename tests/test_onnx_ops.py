"""Every ONNX emitter against the PyTorch layer it stands for, one single-layer graph at a time.

Each case builds the torch layer, derives the node's attrs from it (as the analysis would), copies its
state_dict into the ONNX model and compares onnxruntime's output with torch's on random input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnspec.compile.onnx import EMITTERS, to_model_proto
from cnnspec.compile.onnx.check import declared_shapes, inferred_shapes, run_model
from cnnspec.compile.onnx.ops import linear, norm
from cnnspec.graph import Graph, Init, Node, SourcePos, TensorSpec

POS = SourcePos("test.yaml", 1, 1)
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _conv(m: nn.Module) -> tuple[str, dict]:
    k = m.kernel_size
    if m.padding == "same":
        total = [d * (kk - 1) for d, kk in zip(m.dilation, k, strict=True)]
        begin = [t // 2 for t in total]
        pads = (*begin, *(t - b for t, b in zip(total, begin, strict=True)))
    else:
        pads = (*m.padding, *m.padding)
    return "conv", {
        "in_channels": m.in_channels, "out_channels": m.out_channels, "kernel": k, "stride": m.stride,
        "dilation": m.dilation, "padding": m.padding, "pads": pads, "groups": m.groups,
        "bias": m.bias is not None, "padding_mode": m.padding_mode, "trainable": True, "weights": None,
    }


def _tuple(v: int | tuple, rank: int) -> tuple:
    return tuple(v) if isinstance(v, tuple | list) else (v,) * rank


def _pool(op: str, rank: int, **extra: object) -> Callable[[nn.Module], tuple[str, dict]]:
    def attrs(m: nn.Module) -> tuple[str, dict]:
        a = {"kernel": _tuple(m.kernel_size, rank), "stride": _tuple(m.stride, rank),
             "padding": _tuple(m.padding, rank), "ceil_mode": m.ceil_mode, **extra}
        if op == "maxpool":
            a["dilation"] = _tuple(m.dilation, rank)
        if op == "avgpool":
            a["count_include_pad"] = m.count_include_pad
        return op, a

    return attrs


def _fixed(op: str, **attrs: object) -> Callable[[nn.Module], tuple[str, dict]]:
    return lambda m: (op, dict(attrs))


class ChannelLast(nn.Module):
    """ConvNeXt's LayerNorm2d / pointwise linear: the layer applied over the channel axis."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.movedim(1, -1)).movedim(-1, 1)


class Lambda(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class LayerScale(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.rand(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


def _bn(m: nn.Module) -> tuple[str, dict]:
    return "batchnorm", {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                         "affine": m.affine, "track_running_stats": m.track_running_stats}


def _ln(over: str) -> Callable[[nn.Module], tuple[str, dict]]:
    def attrs(m: nn.Module) -> tuple[str, dict]:
        ln = m.inner if over == "channels" else m
        return "layernorm", {"over": over, "normalized": ln.normalized_shape[0], "eps": ln.eps,
                             "affine": ln.elementwise_affine}

    return attrs


def _linear(over: str) -> Callable[[nn.Module], tuple[str, dict]]:
    def attrs(m: nn.Module) -> tuple[str, dict]:
        lin = m.inner if over == "channels" else m
        return "linear", {"in_features": lin.in_features, "out_features": lin.out_features,
                          "bias": lin.bias is not None, "over": over}

    return attrs


def _sum_ref(kernel: tuple, stride: int, padding: int, ceil: bool) -> nn.Module:
    pool = nn.AvgPool2d if len(kernel) == 2 else nn.AvgPool3d
    return pool(kernel, stride, padding, ceil_mode=ceil, count_include_pad=True, divisor_override=1)


CASES: dict[str, tuple[Callable[[], nn.Module], Callable, tuple[int, ...]]] = {
    "conv2d": (lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), _conv, (3, 9, 9)),
    "conv1d_same_dilated": (lambda: nn.Conv1d(4, 6, 4, padding="same", dilation=2), _conv, (4, 17)),
    "conv3d_nobias": (lambda: nn.Conv3d(2, 4, 3, padding=1, bias=False), _conv, (2, 5, 6, 7)),
    "conv_depthwise": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), _conv, (8, 7, 7)),
    "conv_grouped": (lambda: nn.Conv2d(8, 16, 3, groups=4, stride=(1, 2)), _conv, (8, 7, 9)),
    "conv_reflect": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), _conv, (3, 6, 6)),
    "conv_replicate": (lambda: nn.Conv1d(3, 4, 5, padding=2, padding_mode="replicate"), _conv, (3, 11)),
    "conv3d_reflect": (lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect"), _conv, (2, 4, 5, 6)),
    "conv_circular": (lambda: nn.Conv2d(3, 4, 5, padding=2, padding_mode="circular"), _conv, (3, 8, 8)),
    "maxpool2d": (lambda: nn.MaxPool2d(3, 2, 1), _pool("maxpool", 2), (4, 9, 9)),
    "maxpool2d_ceil": (lambda: nn.MaxPool2d(3, 2, 0, ceil_mode=True), _pool("maxpool", 2), (4, 8, 10)),
    "maxpool2d_ceil_pad": (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), _pool("maxpool", 2), (4, 8, 9)),
    "maxpool2d_dilated": (lambda: nn.MaxPool2d(2, 1, 0, dilation=2), _pool("maxpool", 2), (2, 7, 7)),
    "maxpool2d_ceil_dilated": (lambda: nn.MaxPool2d(2, 3, 0, dilation=3, ceil_mode=True), _pool("maxpool", 2),
                               (2, 8, 8)),
    "maxpool_window_on_padding_only": (lambda: nn.MaxPool2d(2, 1, 1, dilation=2), _pool("maxpool", 2), (2, 1, 3)),
    "maxpool1d_ceil": (lambda: nn.MaxPool1d(2, 2, ceil_mode=True), _pool("maxpool", 1), (3, 11)),
    "maxpool3d": (lambda: nn.MaxPool3d(2), _pool("maxpool", 3), (2, 4, 6, 5)),
    "avgpool2d": (lambda: nn.AvgPool2d(2), _pool("avgpool", 2), (3, 8, 8)),
    "avgpool2d_pad": (lambda: nn.AvgPool2d(3, 2, 1), _pool("avgpool", 2), (3, 9, 8)),
    "avgpool2d_pad_exclude": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), _pool("avgpool", 2),
                              (3, 9, 8)),
    "avgpool2d_ceil_include": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), _pool("avgpool", 2), (3, 8, 10)),
    "avgpool2d_ceil_exclude": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                               _pool("avgpool", 2), (3, 8, 10)),
    "avgpool1d_ceil_nopad": (lambda: nn.AvgPool1d(3, 2, ceil_mode=True), _pool("avgpool", 1), (3, 10)),
    "sumpool2d_ceil": (lambda: _sum_ref((3, 3), 2, 1, True), _pool("sumpool", 2), (3, 8, 10)),
    "sumpool3d": (lambda: _sum_ref((2, 2, 2), 2, 0, False), _pool("sumpool", 3), (2, 4, 4, 6)),
    "adaptive_avg_nondivisible": (lambda: nn.AdaptiveAvgPool2d((3, 5)), _fixed("adaptive_avgpool", out=(3, 5)),
                                  (3, 7, 10)),
    "adaptive_max_nondivisible": (lambda: nn.AdaptiveMaxPool2d((3, 4)), _fixed("adaptive_maxpool", out=(3, 4)),
                                  (3, 7, 10)),
    "adaptive_avg1d": (lambda: nn.AdaptiveAvgPool1d(5), _fixed("adaptive_avgpool", out=(5,)), (2, 12)),
    "adaptive_avg_divisible": (lambda: nn.AdaptiveAvgPool2d(2), _fixed("adaptive_avgpool", out=(2, 2)), (2, 8, 6)),
    "adaptive_max3d": (lambda: nn.AdaptiveMaxPool3d((2, 3, 1)), _fixed("adaptive_maxpool", out=(2, 3, 1)),
                       (2, 5, 7, 4)),
    "global_avgpool": (lambda: nn.AdaptiveAvgPool2d(1), _fixed("global_avgpool", out=(1, 1)), (4, 5, 6)),
    "global_maxpool3d": (lambda: nn.AdaptiveMaxPool3d(1), _fixed("global_maxpool", out=(1, 1, 1)), (2, 3, 4, 5)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(6), _bn, (6, 5, 5)),
    "batchnorm1d_flat": (lambda: nn.BatchNorm1d(7), _bn, (7,)),
    "batchnorm_noaffine": (lambda: nn.BatchNorm2d(6, affine=False), _bn, (6, 4, 4)),
    "batchnorm_batchstats": (lambda: nn.BatchNorm2d(6, track_running_stats=False), _bn, (6, 4, 4)),
    "layernorm_last": (lambda: nn.LayerNorm(6), _ln("last"), (3, 5, 6)),
    "layernorm_channels": (lambda: ChannelLast(nn.LayerNorm(6, eps=1e-6)), _ln("channels"), (6, 4, 5)),
    "layernorm_channels_noaffine": (lambda: ChannelLast(nn.LayerNorm(6, elementwise_affine=False)),
                                    _ln("channels"), (6, 4, 5)),
    "groupnorm": (lambda: nn.GroupNorm(3, 6), lambda m: ("groupnorm", {"groups": 3, "num_channels": 6,
                                                                       "eps": m.eps, "affine": True}), (6, 4, 5)),
    "groupnorm_1d_noaffine": (lambda: nn.GroupNorm(2, 4, affine=False),
                              lambda m: ("groupnorm", {"groups": 2, "num_channels": 4, "eps": m.eps,
                                                       "affine": False}), (4, 9)),
    "relu": (nn.ReLU, _fixed("relu"), (3, 4, 4)),
    "silu": (nn.SiLU, _fixed("silu"), (3, 4, 4)),
    "sigmoid": (nn.Sigmoid, _fixed("sigmoid"), (3, 4, 4)),
    "tanh": (nn.Tanh, _fixed("tanh"), (3, 4, 4)),
    "identity": (nn.Identity, _fixed("identity"), (3, 4, 4)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), _fixed("leaky_relu", slope=0.2), (3, 4, 4)),
    "gelu": (nn.GELU, _fixed("gelu", approximate="none"), (3, 4, 4)),
    "gelu_tanh": (lambda: nn.GELU("tanh"), _fixed("gelu", approximate="tanh"), (3, 4, 4)),
    "softmax_channels": (lambda: nn.Softmax(1), _fixed("softmax", over="channels", axis=0), (3, 4, 4)),
    "softmax_last": (lambda: nn.Softmax(-1), _fixed("softmax", over="last", axis=2), (3, 4, 4)),
    "dropout": (lambda: nn.Dropout(0.3), _fixed("dropout", p=0.3), (3, 4, 4)),
    "stochastic_depth": (nn.Identity, _fixed("stochastic_depth", p=0.1, mode="row"), (3, 4, 4)),
    "flatten": (nn.Flatten, _fixed("flatten"), (3, 4, 5)),
    "linear": (lambda: nn.Linear(12, 5), _linear("features"), (12,)),
    "linear_nobias": (lambda: nn.Linear(12, 5, bias=False), _linear("features"), (12,)),
    "linear_last": (lambda: nn.Linear(6, 5), _linear("last"), (3, 4, 6)),
    "linear_channels": (lambda: ChannelLast(nn.Linear(6, 10)), _linear("channels"), (6, 4, 5)),
    "linear_channels_1d_nobias": (lambda: ChannelLast(nn.Linear(6, 3, bias=False)), _linear("channels"), (6, 7)),
    "layer_scale": (lambda: LayerScale(4), _fixed("layer_scale", channels=4, init=1e-6), (4, 3, 3)),
    "permute": (lambda: Lambda(lambda x: x.permute(0, 2, 3, 1)), _fixed("permute", dims=(0, 2, 3, 1)), (3, 4, 5)),
}


def single_layer_graph(op: str, attrs: dict, module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple,
                       ) -> tuple[Graph, dict[str, np.ndarray]]:
    """A graph holding one leaf ``layer`` whose tensors are ``module``'s, and those tensors as weights."""
    params, buffers, weights = [], [], {}
    for key, value in module.state_dict().items():
        own = "" if op == "layer_scale" else key.removeprefix("inner.")
        spec = TensorSpec(own, tuple(value.shape), Init("uniform", 1.0), dtype=str(value.dtype).split(".")[1])
        (buffers if own in BUFFERS else params).append(spec)
        weights["layer" + (f".{own}" if own else "")] = value.numpy()
    leaf = Node(op, "layer", "layer", POS, attrs=attrs, input_shape=in_shape, output_shape=out_shape,
                params=params, buffers=buffers)
    root = Node("model", "", "", POS, children=[leaf], input_shape=in_shape, output_shape=out_shape)
    return Graph("single", "test.yaml", root, in_shape, {}), weights


def _randomise(module: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so that every tensor matters."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point() and ("running" in name or "norm" in type(module).__name__.lower() or
                                           isinstance(module, ChannelLast | nn.BatchNorm1d | nn.BatchNorm2d)):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)


def compare(case: str, batch: int = 3) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    make, attrs_of, in_shape = CASES[case]
    torch.manual_seed(0)
    module = make().eval()
    _randomise(module)
    x = torch.randn(batch, *in_shape)
    with torch.no_grad():
        ref = module(x)
    op, attrs = attrs_of(module)
    graph, weights = single_layer_graph(op, attrs, module, in_shape, tuple(ref.shape[1:]))
    model = to_model_proto(graph, weights)
    return model, run_model(model, x.numpy()), ref.numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_emitter_matches_torch(case: str) -> None:
    model, got, want = compare(case)
    onnx.checker.check_model(model, full_check=True)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    declared = declared_shapes(model)
    assert inferred_shapes(model) == {k: v for k, v in declared.items()}


@pytest.mark.parametrize("variant", ["reduce", "transpose"])
def test_channel_layernorm_variants(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(norm, "CHANNEL_LAYERNORM", variant)
    _, got, want = compare("layernorm_channels")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["conv", "transpose"])
def test_channel_linear_variants(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "CHANNEL_LINEAR", variant)
    model, got, want = compare("linear_channels")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert [n.op_type for n in model.graph.node] == (["Conv"] if variant == "conv" else
                                                     ["Transpose", "MatMul", "Add", "Transpose"])


def test_inference_identities_emit_no_node() -> None:
    for case in ("identity", "dropout", "stochastic_depth"):
        model, _, _ = compare(case)
        assert [n.op_type for n in model.graph.node] == ["Identity"]


def test_ceil_mode_never_reaches_onnxruntime() -> None:
    model, _, _ = compare("maxpool2d_ceil_pad")
    (pool,) = model.graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}
    # 8x9 input, k3 s2 p1, ceil: PyTorch gives 5x5; H's end padding grows to 2 instead of ceil_mode
    assert attrs["pads"] == [1, 1, 2, 1] and "ceil_mode" not in attrs
    assert declared_shapes(model)["output"] == ("N", 4, 5, 5)


def test_sumpool_is_a_window_sum() -> None:
    model, _, _ = compare("sumpool3d")
    got = run_model(model, np.ones((1, 2, 4, 4, 6), np.float32))
    assert got.shape == (1, 2, 2, 2, 3)
    assert np.all(got == 8.0)  # 2x2x2 windows of ones


def test_every_op_has_an_emitter() -> None:
    """The ops of the spec language (README, "The spec language"); the front-end registry check lives in
    test_onnx_zoo.py once the analysis exposes its op set."""
    ops = {"conv", "maxpool", "avgpool", "sumpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool",
           "global_maxpool", "batchnorm", "layernorm", "groupnorm", "relu", "silu", "sigmoid", "tanh",
           "identity", "leaky_relu", "gelu", "softmax", "dropout", "stochastic_depth", "flatten", "linear",
           "layer_scale", "permute"}
    assert ops - set(EMITTERS) == set()
    assert {CASES[c][1](CASES[c][0]())[0] for c in CASES} == ops


@st.composite
def pool_cases(draw: st.DrawFn) -> tuple[str, nn.Module, tuple[int, ...]]:
    """A random PyTorch-valid 2D pool (padding at most half the kernel, non-empty output)."""
    op = draw(st.sampled_from(["maxpool", "avgpool", "sumpool"]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if op == "maxpool" else (1, 1)
    span = [di * (ki - 1) + 1 for di, ki in zip(d, k, strict=True)]
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    size = tuple(draw(st.integers(max(1, sp - 2 * pi), 12)) for sp, pi in zip(span, p, strict=True))
    ceil = draw(st.booleans())
    if op == "maxpool":
        module = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
    else:
        module = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=op == "sumpool" or draw(st.booleans()),
                              divisor_override=1 if op == "sumpool" else None)
    return op, module, (2, *size)


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_random_pools_match_torch(case: tuple[str, nn.Module, tuple[int, ...]]) -> None:
    op, module, in_shape = case
    x = torch.randn(2, *in_shape, generator=torch.Generator().manual_seed(0))
    want = module(x)
    _, attrs = _pool(op, 2)(module)
    graph, weights = single_layer_graph(op, attrs, module, in_shape, tuple(want.shape[1:]))
    got = run_model(to_model_proto(graph, weights), x.numpy())
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["avg", "max"]), st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1,
                                                 max_size=3))
def test_random_adaptive_pools_match_torch(kind: str, dims: list[tuple[int, int]]) -> None:
    """Any input and output sizes, output larger than input included (overlapping windows)."""
    rank = len(dims)
    sizes, outs = tuple(d[0] for d in dims), tuple(d[1] for d in dims)
    module = getattr(nn, f"Adaptive{kind.capitalize()}Pool{rank}d")(outs)
    x = torch.randn(2, 3, *sizes, generator=torch.Generator().manual_seed(0))
    want = module(x)
    graph, weights = single_layer_graph(f"adaptive_{kind}pool", {"out": outs}, module, (3, *sizes), (3, *outs))
    np.testing.assert_allclose(run_model(to_model_proto(graph, weights), x.numpy()), want.numpy(), rtol=1e-5,
                               atol=1e-6)
