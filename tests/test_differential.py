"""The differential fuzz: random runnable specs (``tools/runnable_specs.py``) through the generated PyTorch
module and onnxruntime with the same weights and inputs (``tools/differential.py``).

The slow test runs a fixed range of spec numbers, so a failure names seeds that reproduce
(``python tools/fuzz_differential.py --repro SEED``); ``CNNSPEC_DIFF_SEEDS=FIRST:COUNT`` picks another
range for a long run. The other tests check the generator (valid, deterministic, covering every op and
setting) and that the runner tells each kind of failure apart."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import cnnspec
from cnnspec.errors import SpecError
from tools.differential import DiffWorker, Summary, compare, compare_backends, randomise, run_spec
from tools.runnable_specs import random_spec, spec_text

SEEDS_VARIABLE = "CNNSPEC_DIFF_SEEDS"
DEFAULT_SEEDS = (0, 2000)
EVERY_OP = {"conv", "maxpool", "avgpool", "sumpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool",
            "global_maxpool", "batchnorm", "layernorm", "groupnorm", "relu", "leaky_relu", "gelu", "silu",
            "sigmoid", "tanh", "softmax", "identity", "dropout", "stochastic_depth", "flatten", "linear",
            "layer_scale", "permute"}


def seed_range() -> range:
    """The spec numbers to run: ``$CNNSPEC_DIFF_SEEDS`` (``FIRST:COUNT``), else 0-1999."""
    text = os.environ.get(SEEDS_VARIABLE)
    if not text:
        return range(DEFAULT_SEEDS[0], sum(DEFAULT_SEEDS))
    first, _, count = text.partition(":")
    return range(int(first), int(first) + int(count))


@pytest.fixture(scope="module")
def worker() -> Any:
    w = DiffWorker()
    yield w
    w.close()


@pytest.mark.slow
def test_torch_and_onnxruntime_agree_on_random_specs(worker: DiffWorker) -> None:
    """2,000 specs, batch 1 and 3: no failure of any kind, and check accepts at least 99% of them."""
    seeds = seed_range()
    summary = Summary()
    for seed in seeds:
        summary.add(*worker.run(seed))
    if len(summary.of("rejected")) > len(seeds) // 100:
        pytest.fail(f"check rejects too many generated specs:\n{summary.table()}")
    if summary.failures:
        firsts = {(r.kind, r.cause): r for r in reversed(summary.failures)}
        examples = "\n\n".join(summary.example(r) for r in firsts.values())
        pytest.fail(f"{summary.table()}\n\nfirst failure of each kind:\n\n{examples}", pytrace=False)


# --------------------------------------------------------------------------------------------- generator

def _walk(value: Any) -> Any:
    """Every mapping in a spec's data."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _features(seed: int, tmp_path: Path) -> set[str]:
    """What spec ``seed`` uses, in words: ops, settings, ranks and structures."""
    data = random_spec(seed)
    path = tmp_path / "spec.yaml"
    path.write_text(spec_text(seed))
    graph = cnnspec.load(path).graph
    found = {f"rank {len(graph.input_shape) - 1}"}
    for leaf in graph.leaves():
        found.add(leaf.op)
        found |= {f"{leaf.op} {key}={value}" for key, value in leaf.settings.model_dump().items()
                  if isinstance(value, (str, bool)) and key != "name"}
        if leaf.op == "conv":
            found |= _conv_features(leaf.settings.model_dump())
    for mapping in _walk(data):
        found |= _structure_features(mapping)
    return found


def _conv_features(s: dict[str, Any]) -> set[str]:
    def above_one(value: int | list[int]) -> bool:
        return any(v > 1 for v in (value if isinstance(value, list) else [value]))

    return {name for name, present in (
        ("conv fixed weights", s["weights"] is not None), ("conv dilation", above_one(s["dilation"])),
        ("conv groups", s["groups"] > 1), ("conv explicit padding", isinstance(s["padding"], (int, list))),
        ("conv stride", above_one(s["stride"]))) if present}


def _structure_features(mapping: dict[str, Any]) -> set[str]:
    found = set()
    if "residual" in mapping:
        shortcut = mapping["residual"].get("shortcut", "identity")
        if isinstance(shortcut, dict):
            found.add(f"shortcut projection {shortcut['projection']}")
        elif isinstance(shortcut, list):
            first = shortcut[0] if isinstance(shortcut[0], str) else next(iter(shortcut[0]))
            found.add("shortcut list" + (" from an activation" if first in ("relu", "leaky_relu", "silu", "gelu")
                                          else ""))
        else:
            found.add("shortcut identity")
    if "concat" in mapping:
        found.add("concat" + (" with an empty branch" if [] in mapping["concat"]["branches"] else ""))
    if "stage" in mapping:
        found.add("stage with first" if "first" in mapping["stage"] else "stage")
    if "sequential" in mapping:
        found.add("sequential")
    return found


def test_the_generator_covers_every_op_and_setting(tmp_path: Path) -> None:
    """300 specs: check accepts them all, and together they use every op, every padding mode and padding
    kind, every rank, the norms' and pools' options, and every kind of residual shortcut."""
    found: collections.Counter[str] = collections.Counter()
    for seed in range(300):
        found.update(_features(seed, tmp_path))
    assert EVERY_OP <= set(found), EVERY_OP - set(found)
    wanted = {
        "rank 1", "rank 2", "rank 3",
        *(f"conv padding_mode={mode}" for mode in ("zeros", "reflect", "replicate", "circular")),
        "conv padding=same", "conv padding=valid", "conv explicit padding", "conv dilation", "conv groups",
        "conv stride", "conv fixed weights", "conv trainable=False", "conv bias=False", "conv bias=True",
        "maxpool ceil_mode=True", "avgpool ceil_mode=True", "sumpool ceil_mode=True",
        "avgpool count_include_pad=False", "batchnorm affine=False", "batchnorm track_running_stats=False",
        "layernorm over=channels", "layernorm over=last", "softmax over=channels", "softmax over=last",
        "gelu approximate=tanh", "linear over=features", "linear over=channels", "linear over=last",
        "stochastic_depth mode=batch", "groupnorm affine=False",
        "shortcut identity", "shortcut list", "shortcut list from an activation", "shortcut projection auto",
        "shortcut projection always", "concat with an empty branch", "stage with first", "sequential",
    }
    assert wanted <= set(found), sorted(wanted - set(found))


def test_the_generator_is_deterministic_and_rarely_rejected(tmp_path: Path) -> None:
    assert spec_text(12345) == spec_text(12345)
    assert len({spec_text(seed) for seed in range(50)}) == 50
    rejected = []
    for seed in range(1000, 1400):
        path = tmp_path / "spec.yaml"
        path.write_text(spec_text(seed))
        try:
            cnnspec.load(path)
        except SpecError as exc:
            rejected.append(f"{seed}: {exc}")
    assert len(rejected) <= 4, rejected


# ------------------------------------------------------------------------------------------------ runner

def test_equal_infinities_agree_and_differences_are_measured() -> None:
    import numpy as np

    inf = np.array([-np.inf, 1.0, 2.0], dtype=np.float32)
    assert compare(inf, inf.copy()) == (0.0, 0.0)
    diff, ratio = compare(np.array([1.0, 100.0]), np.array([1.0, 100.1]))
    assert diff == pytest.approx(0.1) and ratio == pytest.approx(0.1 / (1e-4 * 100 + 1e-4 * 100))
    assert compare(np.array([np.nan]), np.array([1.0]))[1] == float("inf")


SPECS = {
    "agree": "name: a\ninput: [2, 5, 6]\nlayers: [conv: {out: 3, kernel: 3, padding: 1}, batchnorm, relu]\n",
    # C9 (attack report): a 3D pool window larger than the input, made valid by its padding
    "c9": "name: p3\ninput: [1, 2, 5, 3]\nlayers: [avgpool: {kernel: 4, padding: 2}]\n",
    # D4 (attack report): a shortcut starting with relu
    "d4": "name: m\ninput: [2, 4, 4]\nlayers: [residual: {body: [tanh], shortcut: [relu]}]\n",
    # D4 again (seed 1449): dropout in eval returns its input, and the relu after it must not overwrite it
    "d4b": "name: m\ninput: [2, 4, 4]\nlayers: [conv: {out: 2, kernel: 1}, residual: {body: [dropout, relu]}]\n",
    # N1: batch statistics over one value per channel at batch 1; a group norm over groups of one value
    "n1": "name: n\ninput: [3, 1, 1]\nlayers: [batchnorm: {track_running_stats: false}]\n",
    "n1g": "name: n\ninput: [3, 1, 1]\nlayers: [groupnorm: {groups: 3}]\n",
}


@pytest.mark.parametrize(("spec", "kind", "cause"), [
    ("agree", "agree", ""), ("c9", "rejected", ""), ("d4", "agree", ""), ("d4b", "agree", ""), ("n1", "rejected", ""), ("n1g", "rejected", ""),
])
def test_C9_D4_N1_findings_stay_fixed(worker: DiffWorker, spec: str, kind: str, cause: str) -> None:
    """C9 and N1 (PyTorch refused what check accepted) are refused by check now; D4 (an in-place relu on
    the caller's tensor) runs and leaves its input alone."""
    result = run_spec(7, SPECS[spec], worker.workdir)
    assert (result.kind, result.cause) == (kind, cause), result


@pytest.mark.parametrize(("spec", "message"), [
    ("input: [1, 2, 5, 3]\nlayers: [avgpool: {kernel: 4, padding: 2}]",
     ("3:28: error: layer 0 (avgpool): window 4x4x4 is larger than its 2x5x3 input; PyTorch's 3D average pooling needs "
     "every input size at least the window's, even with padding")),
    ("input: [1, 3, 3, 3]\nlayers: [sumpool: {kernel: [3, 3, 4], ceil_mode: true}]",
     ("3:28: error: layer 0 (sumpool): window 3x3x4 is larger than its 3x3x3 input; PyTorch's 3D average pooling needs "
     "every input size at least the window's, even with padding")),
])
def test_C9_a_3d_pool_window_larger_than_its_input_is_refused_by_check(tmp_path: Path, spec: str, message: str
                                                                       ) -> None:
    path = tmp_path / "p3.yaml"
    path.write_text(f"name: p3\n{spec}\n")
    with pytest.raises(SpecError) as exc:
        cnnspec.load(path)
    assert str(exc.value) == f"{path}:{message}"


def test_D4_the_forward_leaves_its_input_alone(tmp_path: Path) -> None:
    """A shortcut starting with relu ran ``nn.ReLU(inplace=True)`` on the caller's tensor."""
    path = tmp_path / "m.yaml"
    path.write_text(SPECS["d4"])
    net = cnnspec.load(path).to_torch().eval()
    x = torch.randn(3, 2, 4, 4, requires_grad=True)  # a leaf that needs grad: in place would raise
    before = x.detach().clone()
    y = net(x)
    y.sum().backward()
    assert torch.equal(x.detach(), before) and (before < 0).any()
    assert torch.allclose(y, torch.tanh(before) + torch.relu(before))


def test_different_weights_are_a_mismatch(tmp_path: Path) -> None:
    """The comparison is not vacuous: one weight of the torch module changed after the ONNX export."""
    import onnxruntime as ort

    path = tmp_path / "a.yaml"
    path.write_text(SPECS["agree"])
    model = cnnspec.load(path)
    torch.manual_seed(0)  # the conv's own init too: with some weights the relu hid the change at batch 1
    net = model.to_torch().eval()
    randomise(net, 0)
    model.to_onnx(tmp_path / "a.onnx", module=net)
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    assert compare_backends(0, model.graph, net, session).items == []
    with torch.no_grad():
        net.get_submodule("0").weight[0, 0, 0, 0] += 0.05
    problems = compare_backends(0, model.graph, net, session)
    assert [kind for kind, _ in problems.items] == ["mismatch", "mismatch"]
