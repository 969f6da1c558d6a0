"""Budgets (`constraints`) in `cnnspec check`, and its text, GitHub-annotation and JSON outputs, exactly.

Figures of the spec below, by hand: conv 1->6 5x5: 156 params, 6*25*28*28 = 117,600 MACs; conv 6->16 5x5
on 14x14: 2,416 params, 16*150*10*10 = 240,000 MACs; linear 1600->10: 16,010 params, 16,000 MACs. Total
18,582 params, 373,600 MACs; activations 4,704 + 4,704 + 1,176 + 3 * 1,600 + 10 = 15,394 floats = 61,576
bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file

SPEC = """\
name: tiny
input: [1, 28, 28]
constraints:
  max_params: {max_params}
  max_macs: 300000
  max_activation_bytes: 40000
  input_sizes:
    - [1, 32, 32]
    - [1, 4, 4]
    - [3, 28, 28]
    - [1, 28]
layers:
  - conv: {{out: 6, kernel: 5, padding: 2}}
  - relu
  - maxpool: {{kernel: 2}}
  - conv: {{out: 16, kernel: 5}}
  - relu
  - flatten
  - linear: {{out: 10}}
"""
MESSAGES = [
    (4, 15, "max_params: the network has 18,582 parameters, over the budget of 5,000 by 13,582 (3.72x)"),
    (5, 13, "max_macs: the network has 373,600 MACs, over the budget of 300,000 by 73,600 (1.25x)"),
    (6, 25, ("max_activation_bytes: the network has 61,576 activation bytes (batch 1), over the budget of 40,000 "
     "by 21,576 (1.54x)")),
    (8, 7, ("input_sizes[0]: at input 1x32x32, `6.weight` would be 10x2304 instead of 10x1600 (its size follows "
     "the input; a global or adaptive pool before `flatten` makes it independent)")),
    (9, 7, "input_sizes[1]: at input 1x4x4: {refusal} (at spec.yaml:16:29)"),
    (10, 7, "input_sizes[2]: 3x28x28 has 3 channels but the network takes 1 (input 1x28x28)"),
    (11, 7, "input_sizes[3]: 1x28 has 2 sizes but the network's input (1x28x28) has 3"),
]

WITHIN = """\
name: pooled
input: [3, 64, 64]
constraints: {max_params: 1000, max_macs: 1000000, max_activation_bytes: 300000, input_sizes: [[3, 32, 32], [3, 96, 80]]}
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - relu
  - global_avgpool
  - flatten
  - linear: {out: 10}
"""


@pytest.fixture()
def over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    Path("spec.yaml").write_text(SPEC.format(max_params=5000))
    return "spec.yaml"


def expected() -> list[tuple[int, int, str]]:
    """MESSAGES, with the shape rule's own words for the 1x4x4 input (they belong to the rules, not here)."""
    with pytest.raises(SpecError) as refused:
        analyse_file("spec.yaml", None, (1, 4, 4))
    assert str(refused.value.pos) == "spec.yaml:16:29"
    assert refused.value.message.startswith("layer 3 (conv): kernel 5x5")
    return [(line, col, message.format(refusal=refused.value.message)) for line, col, message in MESSAGES]


def test_every_budget_failure_is_located_at_its_constraint(over: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", over]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"spec.yaml:{line}:{col}: error: {message}" for line, col, message in expected()]


def test_github_annotations(over: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "github", over]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    ends = {4: 18, 5: 18, 6: 29, 8: 17, 9: 15, 10: 17, 11: 13}  # the last column of each value
    assert out.splitlines() == [f"::error file=spec.yaml,line={line},col={col},endLine={line},endColumn={ends[line]},"
                                f"title=cnnspec (budget)::{message}" for line, col, message in expected()]


def test_json_report(over: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "json", over]) == 1
    assert json.loads(capsys.readouterr().out) == [{
        "file": "spec.yaml", "ok": False, "kind": "spec", "params": 18582, "macs": 373600,
        "errors": [{"file": "spec.yaml", "line": line, "col": col, "code": "budget", "message": message}
                   for line, col, message in expected()],
    }]


def test_the_exact_budget_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lines = SPEC.format(max_params=18582).splitlines(keepends=True)
    Path("spec.yaml").write_text("".join(lines[:4] + lines[11:]))  # max_params only
    assert main(["check", "spec.yaml"]) == 0
    assert capsys.readouterr().out == "spec.yaml: ok (18,582 params, 373,600 MACs)\n"


def test_within_budgets_and_other_input_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A global pool before `flatten` makes the weights independent of the input size."""
    monkeypatch.chdir(tmp_path)
    Path("pooled.yaml").write_text(WITHIN)
    assert main(["check", "pooled.yaml"]) == 0
    # conv 3->8: 224 params, 8*27*64*64 = 884,736 MACs; linear 8->10: 90 params, 80 MACs
    assert capsys.readouterr().out == "pooled.yaml: ok (314 params, 884,816 MACs)\n"


def test_github_escapes_file_names_and_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a,b:c.yaml").write_text("name: x\ninput: [4]\nconstraints: {max_params: 1}\nlayers: [{linear: {out: 2}}]\n")
    assert main(["check", "--format", "github", "a,b:c.yaml"]) == 1
    assert capsys.readouterr().out == ("::error file=a%2Cb%3Ac.yaml,line=3,col=27,endLine=3,endColumn=27,"
                                       "title=cnnspec (budget)::max_params: the network has 10 "
                                       "parameters, over the budget of 1 by 9 (10.00x)\n")


# budgets as the docs write them: 20_000_000, 2e7; max_flops, min_receptive_field, $params in input_sizes

WRITTEN = """\
name: written
params: {{side: 32}}
input: [3, 64, 64]
constraints: {{max_params: {count}, max_macs: 2e7, max_flops: 2_000_000, min_receptive_field: {rf},
              input_sizes: [[3, $side, $side], [3, $side * 3, $side + 16]]}}
layers:
  - conv: {{out: 8, kernel: 3, padding: 1}}
  - relu
  - maxpool: {{kernel: 2}}
  - conv: {{out: 8, kernel: 3, padding: 1}}
  - global_avgpool
  - flatten
  - linear: {{out: 10}}
"""
# conv 3->8: 224 params, 8*27*64*64 = 884,736 MACs; conv 8->8 on 32x32: 584 params, 8*72*32*32 = 589,824
# MACs; linear 8->10: 90 params, 80 MACs. 898 params, 1,474,640 MACs = 2,949,280 FLOPs. Receptive field:
# 3, then 4 (pool 2, stride 2), then 4 + 2*2 = 8, then the global pool over 32x32 positions of stride 2:
# 8 + 31*2 = 70 input pixels.


@pytest.mark.parametrize("count", ["20_000_000", "2e7", "20000000", "2.0e+7", '"2e7"'])
def test_counts_written_with_underscores_or_exponents_are_accepted(count: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.yaml").write_text(WRITTEN.format(count=count, rf="[70, 70]").replace("max_flops: 2_000_000", "max_flops: 3e6"))
    assert main(["check", "w.yaml"]) == 0
    assert capsys.readouterr().out == "w.yaml: ok (898 params, 1,474,640 MACs)\n"


def test_flops_receptive_field_and_expression_sizes_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.yaml").write_text(WRITTEN.format(count="20_000_000", rf="[71, 70]"))
    assert main(["check", "w.yaml", "--set", "side=1"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        ("w.yaml:4:65: error: max_flops: the network has 2,949,280 FLOPs (2 x MACs), over the budget of 2,000,000 by "
        "949,280 (1.47x)"),
        ("w.yaml:4:97: error: min_receptive_field: the output's receptive field is 70x70 input pixels, smaller than "
        "the 71x70 asked for (deeper layers, larger kernels, strides or dilation widen it)"),
        ("w.yaml:5:29: error: input_sizes[0]: at input 3x1x1: layer 2 (maxpool): window 2x2 is larger than its 1x1 input; "
        "the output would be empty (at w.yaml:9:23)")]  # 3x3x17, the second size, is accepted


@pytest.mark.parametrize(("value", "shown"), [("2.5", "2.5"), ("0", "0"), ("-3", "-3"), ("true", "true"),
                                              ("1e-3", "0.001"), ("lots", "`lots`"), ('"1e999999999"', "`1e999999999`")])
def test_every_rejected_count_says_what_is_accepted(value: str, shown: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.yaml").write_text(f"name: x\ninput: [4]\nconstraints: {{max_params: {value}}}\nlayers: [{{linear: {{out: 2}}}}]\n")
    assert main(["check", "w.yaml"]) == 1
    assert capsys.readouterr().err == ("w.yaml:3:27: error: `max_params` of the spec should be a positive whole "
                                       f"number (20000000, 20_000_000 or 2e7), got {shown}\n")


def test_receptive_field_budget_takes_one_size_per_spatial_axis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.yaml").write_text(WRITTEN.format(count=100000, rf="[3, 70, 70]"))
    assert main(["check", "w.yaml"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "w.yaml:4:93: error: min_receptive_field: give one size per spatial axis of the input (64x64, without "
        "the channels), got 3")


def test_input_size_expression_errors_are_located_at_the_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("w.yaml").write_text(WRITTEN.format(count=100000, rf="[70, 70]").replace("$side + 16", "$sid"))
    assert main(["check", "w.yaml"]) == 1
    assert capsys.readouterr().err == "w.yaml:5:48: error: input_sizes[1]: `$sid` is not defined; did you mean `$side`?\n"
