"""Bounded work for hostile specs (attack findings M1, M2, M4): limits checked before the work, with
messages that name them. Times are measured by ``tools/hostile_corpus.py``, not asserted here; the
subprocess timeouts only guard against hangs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.frontend import budgets, read

link = importlib.import_module("cnnspec.frontend.link")

ROOT = Path(__file__).resolve().parents[1]


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cnnspec", "check", str(path)], capture_output=True, text=True, check=False,
                          timeout=60, cwd=ROOT)


def test_M1_diamond_imports_read_each_file_once(tmp_path: Path, monkeypatch) -> None:
    for level in range(16):
        (tmp_path / f"l{level}.yaml").write_text(f"use: [l{level + 1}.yaml, l{level + 1}.yaml]\nblocks: {{}}\n")
    (tmp_path / "l16.yaml").write_text("blocks: {}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nuse: [l0.yaml]\ninput: [1, 8, 8]\nlayers: [relu]\n")
    reads: list[str] = []
    original = read.load_file

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(link, "load_file", counting)
    result = _check(spec)
    assert (result.returncode, result.stdout.strip()) == (0, f"{spec}: ok (0 params, 0 MACs)")
    from cnnspec.frontend import analyse_file
    analyse_file(spec)
    assert sorted(Path(p).name for p in reads) == sorted(f"l{i}.yaml" for i in range(17))


def test_M1_the_number_of_imported_files_is_limited(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(link, "MAX_FILES", 3)
    for i in range(5):
        (tmp_path / f"l{i}.yaml").write_text(f"use: [l{i + 1}.yaml]\nblocks: {{}}\n" if i < 4 else "blocks: {}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nuse: [l0.yaml]\ninput: [1, 8, 8]\nlayers: [relu]\n")
    from cnnspec.frontend import analyse
    analysis = analyse(read.load_file(spec), spec)
    assert [e.message for e in analysis.errors] == ["the spec imports more than 3 files"]


def test_M2_a_repeated_fixed_kernel_is_not_copied_per_channel(tmp_path: Path) -> None:
    spec = tmp_path / "m2.yaml"
    spec.write_text("name: fk\ninput: [3162, 4, 4]\n"
                    "blocks: {f: {layers: [conv: {weights: [[1]], out: 3162, trainable: false}]}}\n"
                    "layers: [stage: {name: s, block: f, repeat: 40}]\n")
    result = _check(spec)
    assert (result.returncode, result.stdout.strip()) == (0, f"{spec}: ok (399,929,760 params, 6,398,876,160 MACs)")


def test_M2_a_broadcast_kernel_builds_the_same_weights(tmp_path: Path) -> None:
    import numpy as np

    from cnnspec.compile.onnx.weights import init_weights
    from cnnspec.frontend import analyse_file
    spec = tmp_path / "k.yaml"
    spec.write_text("name: k\ninput: [2, 4, 4]\nlayers: [conv: {weights: [[1, 2], [3, 4]], out: 3, trainable: false}]\n")
    weights = init_weights(analyse_file(spec))
    expected = np.broadcast_to(np.array([[1, 2], [3, 4]], dtype=np.float32), (3, 2, 2, 2))
    assert np.array_equal(weights["0.weight"], expected)


def _sizes_spec(tmp_path: Path, sizes: list[str]) -> Path:
    spec = tmp_path / "s.yaml"
    items = "".join(f"    - {s}\n" for s in sizes)
    spec.write_text("name: s\ninput: [1, 8, 8]\nlayers: [conv: {out: 2, kernel: 3}, relu]\n"
                    f"constraints:\n  input_sizes:\n{items}")
    return spec


def test_M4_input_sizes_are_limited_with_a_message_naming_the_limit(tmp_path: Path) -> None:
    spec = _sizes_spec(tmp_path, [f"[1, {8 + i}, 8]" for i in range(budgets.MAX_INPUT_SIZES + 1)])
    result = _check(spec)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"{spec}:6:5: error: input_sizes lists 101 sizes; at most 100 (each is a "
                                     "whole analysis of the network): keep the sizes that matter")


def test_M4_a_repeated_input_size_is_analysed_and_reported_once(tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []
    original = budgets._input_size
    monkeypatch.setattr(budgets, "_input_size", lambda g, s: calls.append(s) or original(g, s))
    spec = _sizes_spec(tmp_path, ["[1, 2, 2]"] * 50 + ["[1, 9, 9]"] * 50)
    from cnnspec.frontend import analyse
    errors = budgets.check_budgets(analyse(read.load_file(spec), spec).graph)
    assert calls == [(1, 2, 2), (1, 9, 9)]
    assert len(errors) == 1 and errors[0].message.startswith("input_sizes[0]: at input 1x2x2:")


def test_C5_max_and_min_results_are_held_to_the_expression_limit(tmp_path: Path) -> None:
    spec = tmp_path / "c5.yaml"
    spec.write_text("name: c\nparams: {w: 4}\ninput: [1, 8, 8]\n"
                    "layers: [conv: {out: 1, kernel: 1, padding: \"max($w, 999999999999999999)\"}]\n")
    result = _check(spec)
    assert (result.returncode, result.stderr.strip()) == (
        1, (f"{spec}:4:45: error: `max($w, 999999999999999999)` gives 999999999999999999, beyond the 1e+15 "
           "cnnspec accepts"))


def test_an_output_size_beyond_int64_is_refused_at_the_layer(tmp_path: Path) -> None:
    spec = tmp_path / "pad.yaml"
    spec.write_text("name: p\ninput: [1, 8, 8]\nlayers: [conv: {out: 1, kernel: 1, padding: 9223372036854775807}]\n")
    result = _check(spec)
    assert (result.returncode, result.stderr.strip()) == (
        1, (f"{spec}:3:10: error: layer 0 (conv): the output would be 1x18446744073709551622x18446744073709551622, and "
           "sizes are at most 2^63 - 1 (int64 in PyTorch and ONNX)"))


def test_C10_params_named_like_generated_helpers_are_mangled(tmp_path: Path) -> None:
    """`params: {assign: 4}` shadowed the `assign` helper (a TypeError on construction); the constructor
    parameter is `assign_` now and the fixed kernel is intact."""
    spec = tmp_path / "c10.yaml"
    spec.write_text("name: sc\nparams: {assign: 4}\ninput: [1, 8, 8]\nlayers: [conv: {weights: [[1, 0, -1], "
                    "[2, 0, -2], [1, 0, -1]], padding: 1, trainable: false, name: sobel}, conv: {out: $assign, kernel: 1}]\n")
    result = subprocess.run([sys.executable, "-m", "cnnspec", "build", str(spec), "--target", "torch", "-o",
                             str(tmp_path / "c10.py"), "-q"], capture_output=True, text=True, check=False, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    source = (tmp_path / "c10.py").read_text()
    assert "def __init__(self, assign_: int = 4) -> None:" in source
    assert "assign(self.sobel.weight, SOBEL_WEIGHT, trainable=False)" in source
    assert "nn.Conv2d(1, assign_, kernel_size=1)" in source


def test_C10_every_helper_the_ops_emit_is_reserved() -> None:
    import re

    from cnnspec.compile.torch import names
    emitted = set()
    for source in (ROOT / "cnnspec").rglob("*.py"):
        emitted |= set(re.findall(r'helper\("([A-Za-z0-9_]+)"', source.read_text()))
    emitted |= {p.name.split(".")[0] for p in (ROOT / "cnnspec/compile/torch/templates/helpers").iterdir()}
    assert emitted and emitted <= names.HELPERS, emitted - names.HELPERS


def test_D3_a_param_named_like_a_constant_leaves_the_fixed_kernel_alone(tmp_path: Path) -> None:
    import cnnspec
    spec = tmp_path / "d3.yaml"
    spec.write_text("name: sc\nparams: {SOBEL_WEIGHT: 4}\ninput: [1, 8, 8]\nlayers: [conv: {weights: [[1, 0, -1], "
                    "[2, 0, -2], [1, 0, -1]], padding: 1, trainable: false, name: sobel}]\n")
    weight = cnnspec.load(spec).to_torch().sobel.weight
    assert weight.flatten().tolist() == [1.0, 0.0, -1.0, 2.0, 0.0, -2.0, 1.0, 0.0, -1.0]


@pytest.mark.parametrize(("spec", "smallest"), [
    # 396 layers x 63 probes = 24,948 node analyses; one layer more is 25,011
    ("input: [1, 4611686018427387904]\nblocks: {b: {layers: [relu]}}\nlayers: [stage: {name: s, block: b, repeat: 396}]",
     (1, 1)),
    ("input: [1, 4611686018427387904]\nblocks: {b: {layers: [relu]}}\nlayers: [stage: {name: s, block: b, repeat: 397}]",
     None),
    # a fixed kernel counts one analysis per 256 values: (1 + 50,625 // 256) x 126 probes = 24,948; out 226: 25,074
    ("input: [1, 4611686018427387904, 4611686018427387904]\nlayers: [conv: {weights: [KERNEL], out: 225, trainable: false}]",
     (1, 15, 15)),
    ("input: [1, 4611686018427387904, 4611686018427387904]\nlayers: [conv: {weights: [KERNEL], out: 226, trainable: false}]",
     None),
])
def test_the_smallest_input_search_stays_within_its_budget(tmp_path: Path, spec: str, smallest: tuple[int, ...] | None
                                                          ) -> None:
    """summary's bisection re-analyses the network per probe: 200,000 analyses took 8-25 s, so the budget is
    25,000, a fixed kernel's values counted too (its analysis walks them)."""
    from cnnspec.frontend import SMALLEST_INPUT_BUDGET, analyse_file, smallest_input

    assert SMALLEST_INPUT_BUDGET == 25_000
    path = tmp_path / "s.yaml"
    path.write_text("name: s\n" + spec.replace("KERNEL", ", ".join(["[" + ", ".join(["1"] * 15) + "]"] * 15)) + "\n")
    assert smallest_input(analyse_file(path)) == smallest


def test_a_file_of_more_values_than_specs_hold_stops_at_the_first_one_over(tmp_path: Path) -> None:
    """1,900,000 numbers in a 3.8 MB file (under the 4 MiB limit) took 20 s and 500 MB in check: the reader
    counts values and stops at the 120,001st (8 scalars before the list: keys count too)."""
    spec = tmp_path / "many.yaml"
    spec.write_text("name: x\ninput: [1, 8, 8]\nparams: {a: [" + "0," * 130_000 + "]}\nlayers: [relu]\n")
    result = _check(spec)
    assert (result.returncode, result.stderr.strip()) == (
        1, (f"{spec}:3:239998: error: the file holds more than 120,000 values; specs are limited to 120,000 "
            "(big fixed weights belong in a checkpoint: `--weights`)"))
    assert read.MAX_VALUES == 120_000


def test_zoo_specs_hold_a_small_share_of_the_values_a_file_may_hold() -> None:
    counts = {p.name: _scalars(read.load_file(p).data) for p in (ROOT / "specs").glob("*.yaml")}
    assert max(counts.values()) < read.MAX_VALUES // 50, counts


def _scalars(data: object) -> int:
    if isinstance(data, dict):
        return sum(1 + _scalars(v) for v in data.values())
    if isinstance(data, list):
        return sum(_scalars(v) for v in data)
    return 1
