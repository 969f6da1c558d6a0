"""ONNX lowerings beyond one-to-one parity (tests/test_ops.py): what reaches onnxruntime, and random
windows against PyTorch's own pooling."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnspec.compile.onnx import to_model_proto
from cnnspec.compile.onnx.check import declared_shapes, run_model
from cnnspec.frontend import analyse_text
from cnnspec.ir import Graph

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _graph(layer: str, shape: tuple[int, ...]) -> Graph:
    return analyse_text(f"name: t\ninput: {list(shape)}\nlayers: [{layer}]\n", "t.yaml")


@pytest.mark.parametrize("layer", ["identity", "dropout: {p: 0.3}", "stochastic_depth: {p: 0.1}"])
def test_inference_identities_emit_no_node(layer: str) -> None:
    model = to_model_proto(_graph(layer, (3, 4, 4)))
    assert [n.op_type for n in model.graph.node] == ["Identity"]


def test_ceil_mode_never_reaches_onnxruntime() -> None:
    model = to_model_proto(_graph("maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}", (4, 8, 9)))
    (pool,) = model.graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}
    # 8x9 input, k3 s2 p1, ceil: PyTorch gives 5x5; H's end padding grows to 2 instead of ceil_mode
    assert attrs["pads"] == [1, 1, 2, 1] and "ceil_mode" not in attrs
    assert declared_shapes(model)["output"] == ("N", 4, 5, 5)


def test_sumpool_is_a_window_sum() -> None:
    model = to_model_proto(_graph("sumpool: {kernel: 2}", (2, 4, 4, 6)))
    got = run_model(model, np.ones((1, 2, 4, 4, 6), np.float32))
    assert got.shape == (1, 2, 2, 2, 3)
    assert np.all(got == 8.0)  # 2x2x2 windows of ones


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
    include = op == "sumpool" or draw(st.booleans())
    settings_ = {"kernel": list(k), "stride": list(s), "padding": list(p), "ceil_mode": ceil}
    if op == "maxpool":
        settings_["dilation"] = list(d)
        module: nn.Module = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
    else:
        if op == "avgpool":
            settings_["count_include_pad"] = include
        module = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include,
                              divisor_override=1 if op == "sumpool" else None)
    layer = f"{op}: {{{', '.join(f'{key}: {str(v).lower()}' for key, v in settings_.items())}}}"
    return layer, module, (2, *size)


@settings(max_examples=60, deadline=None)
@given(pool_cases())
def test_random_pools_match_torch(case: tuple[str, nn.Module, tuple[int, ...]]) -> None:
    layer, module, in_shape = case
    x = torch.randn(2, *in_shape, generator=torch.Generator().manual_seed(0))
    want = module(x)
    graph = _graph(layer, in_shape)
    assert graph.output_shape == tuple(want.shape[1:])
    np.testing.assert_allclose(run_model(to_model_proto(graph), x.numpy()), want.numpy(), rtol=1e-5, atol=1e-6)


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
    graph = _graph(f"adaptive_{kind}pool: {{out: {list(outs)}}}", (3, *sizes))
    np.testing.assert_allclose(run_model(to_model_proto(graph), x.numpy()), want.numpy(), rtol=1e-5, atol=1e-6)
