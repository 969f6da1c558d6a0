"""Whatever ``cnnspec check`` accepts, every backend builds: the torch module is made and runs at the spec's
input, the ONNX model is made and runs in onnxruntime, the diagram is drawn. Over the zoo, the broken-spec
catalogue (the few files that pass without their ``--set``) and a fixed range of the fuzzer's mutated cases
(``tools/fuzzcases.py``: zoo specs and random runnable specs, mutated) that pass ``check``.

Also the residual hint: where an add of a residual suggests ``shortcut: {projection: auto}``, following it
gives a network that check accepts and that runs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cnnspec.compile.dot import render_dot
from cnnspec.compile.onnx.model import to_model_proto
from cnnspec.compile.torch.loader import build_module
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file
from cnnspec.frontend.budgets import check_budgets
from cnnspec.ir import Graph
from tools.fuzzcases import make_case, prepare

ROOT = Path(__file__).parents[1]
ZOO = sorted(p.name for p in (ROOT / "specs").glob("*.yaml"))
BIG = {"alexnet.yaml", "vgg16.yaml", "resnet50.yaml", "resnet34.yaml", "convnext_tiny.yaml", "resnet18.yaml",
       "monai_basicunet_3d.yaml", "fcn_resnet50.yaml", "deeplabv3_resnet50.yaml", "googlenet.yaml",
       "efficientnet_v2_s.yaml", "inception_v3.yaml"}
FUZZ_SEEDS = range(800)


def build_every_backend(graph: Graph) -> None:
    """Each backend builds ``graph`` and the two runnable ones run it on zeros of its input shape."""
    x = np.zeros((1, *graph.input_shape), dtype=np.float32)
    with torch.no_grad():
        out = build_module(graph).eval()(torch.from_numpy(x))
    inference = graph.inference_outputs()  # several outputs: a dict or a tuple (one left in eval: the tensor)
    outs = out.values() if isinstance(out, dict) else out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == [(1, *graph.shapes[v]) for _, v in inference]
    model = to_model_proto(graph, seed=1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ys = session.run(None, {session.get_inputs()[0].name: x})
    assert [y.shape for y in ys] == [(1, *graph.shapes[v]) for _, v in inference]
    assert render_dot(graph).startswith("digraph")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in ZOO])
def test_every_zoo_spec_builds_in_every_backend(name: str) -> None:
    build_every_backend(analyse_file(ROOT / "specs" / name))


def test_catalogue_specs_that_check_accepts_build() -> None:
    accepted = []
    for path in sorted((ROOT / "tests" / "broken").rglob("*.yaml")):
        try:
            graph = analyse_file(path)
        except SpecError:
            continue
        if check_budgets(graph):  # check refuses it for its budgets
            continue
        accepted.append(path.name)
        build_every_backend(graph)
    assert accepted == ["set_unknown_param.yaml", "set_wrong_type.yaml"]  # they fail only with their --set


@pytest.mark.slow
def test_fuzz_cases_that_check_accepts_build(tmp_path: Path) -> None:
    tree = prepare(tmp_path)
    accepted = 0
    for seed in FUZZ_SEEDS:
        rng = random.Random(seed)
        spec = tree / "case.yaml"
        spec.write_bytes(make_case(rng))
        try:
            graph = analyse_file(spec)
        except SpecError:
            continue
        if check_budgets(graph):
            continue
        if graph.root.total_params > 2_000_000 or graph.activation_bytes > 50_000_000:
            continue  # a zoo spec kept whole: the zoo test builds those
        accepted += 1
        try:
            build_every_backend(graph)
        except Exception as exc:  # name the seed that reproduces it
            raise AssertionError(f"seed {seed}: check accepts it, a backend fails: {exc!r}") from exc
    # 53 of the 800 pass check (the cases depend on the zoo's files, so the count moves when the zoo grows):
    # enough to mean something
    assert accepted >= 40, accepted


RESIDUAL = """\
name: r
input: [3, {side}, {side}]
layers:
  - conv: {{out: 8, kernel: 3, padding: 1}}
  - residual: {{body: [{body}]{shortcut}}}
"""
BODIES = {
    "wider": "{conv: {out: 16, kernel: 3, padding: 1}}",
    "stride 2": "{conv: {out: 16, kernel: 3, stride: 2, padding: 1}}",
    "stride 3": "{conv: {out: 8, kernel: 3, stride: 3}}",
    "squeeze-and-excitation": "global_avgpool, {conv: {out: 2, kernel: 1}}, relu, {conv: {out: 8, kernel: 1}}, sigmoid",
    "no padding": "{conv: {out: 8, kernel: 3}}",
}


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("side", [17, 32])
def test_following_the_projection_hint_gives_a_working_network(body: str, side: int, tmp_path: Path) -> None:
    spec = tmp_path / "r.yaml"
    spec.write_text(RESIDUAL.format(side=side, body=BODIES[body], shortcut=""))
    with pytest.raises(SpecError) as refused:
        analyse_file(spec)
    if not refused.value.message.endswith("add `shortcut: {projection: auto}` to project the input"):
        # no 1x1 conv stride maps the input onto the body's output (32 -> 10 by a stride-3 kernel-3 conv),
        # or the body pools every position into one (a squeeze-and-excitation gate): no hint
        assert (body, side) in {("squeeze-and-excitation", 17), ("squeeze-and-excitation", 32), ("no padding", 17),
                                ("no padding", 32), ("stride 3", 32)}, refused.value.message
        return
    spec.write_text(RESIDUAL.format(side=side, body=BODIES[body], shortcut=", shortcut: {projection: auto}"))
    build_every_backend(analyse_file(spec))


def test_an_empty_sequential_is_the_identity_in_every_backend(tmp_path: Path) -> None:
    """`sequential: {layers: []}` passes check; the torch backend refused it ("reads 0 tensors made outside
    it"): now it is the identity there too, and the state_dict is the conv's alone."""
    spec = tmp_path / "empty.yaml"
    spec.write_text("name: e\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n"
                    "  - sequential: {name: deep, layers: []}\n  - relu\n")
    graph = analyse_file(spec)
    build_every_backend(graph)
    assert list(build_module(graph).state_dict()) == ["0.weight", "0.bias"]
