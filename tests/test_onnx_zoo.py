"""Every zoo spec compiled to ONNX: a valid model whose every value has cnnspec's static shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from cnnspec.compile.onnx.check import declared_shapes, inferred_shapes, run_model, static_shape_mismatches
from cnnspec.compile.onnx.model import compile_graph
from cnnspec.frontend import analyse_file

SPECS = sorted(p.stem for p in Path("specs").glob("*.yaml"))


def test_zoo_is_there() -> None:
    assert {"resnet18", "resnet50", "convnext_tiny", "vgg16", "lenet5", "cnn1d_example"} <= set(SPECS)


@pytest.mark.parametrize("spec", SPECS)
def test_zoo_model_is_valid_and_shapes_match(spec: str) -> None:
    graph = analyse_file(f"specs/{spec}.yaml")
    compiled = compile_graph(graph)
    model = compiled.model
    onnx.checker.check_model(model, full_check=True)
    # a Resize inside the graph (lraspp's head) loses the batch symbol in ONNX's inference, and only that
    assert static_shape_mismatches(compiled, batch_through_resize=True) == []
    assert inferred_shapes(model, batch_through_resize=True) == declared_shapes(model)
    if graph.output_form == "one":
        assert declared_shapes(model)["output"] == ("N", *graph.output_shape)
    else:  # `outputs:` one graph output per name (googlenet's aux heads run in training only)
        assert [o.name for o in model.graph.output] == [name for name, _ in graph.inference_outputs()]
        for name, value in graph.inference_outputs():
            assert declared_shapes(model)[name] == ("N", *graph.shapes[value])
    used = {i.name for i in model.graph.initializer if not i.name.startswith(tuple("/#"))}
    training = {n.tensor_key(t) for n in graph.leaves() if n.training_only for t in (*n.params, *n.buffers)}
    state = {k for k, _, _ in graph.state_dict_keys() if not k.endswith("num_batches_tracked")} - training
    assert used & state == state  # every state_dict tensor is an initializer, under its own name


def test_convnext_mlp_runs_channel_first() -> None:
    """The permutes around ConvNeXt's channels-last MLP are not emitted (its linears become 1x1 Convs; the
    only Transposes left are the pair around each LayerNormalization), and the output is unchanged."""
    graph = analyse_file("specs/convnext_tiny.yaml", input_shape=(3, 64, 64))
    deferred = compile_graph(graph).model
    ops = [n.op_type for n in deferred.graph.node]
    assert (ops.count("Transpose"), ops.count("LayerNormalization"), ops.count("MatMul")) == (46, 23, 0)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    literal = compile_graph(graph, defer_permutes=False).model
    assert [n.op_type for n in literal.graph.node].count("MatMul") == 36
    np.testing.assert_allclose(run_model(deferred, x), run_model(literal, x), rtol=1e-4, atol=1e-5)
