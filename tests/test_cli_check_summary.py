"""``cnnspec check`` and ``cnnspec summary`` from the command line: exit codes (0 ok, 1 spec error, 2 usage
error), the output formats (text, json, github, markdown), ``--depth``, ``--set`` and ``--input``.

Commands run in-process (``cnnspec.cli.main``) from the repository root, as a user would type them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.report.annotations import escape_data

ROOT = Path(__file__).parents[1]
LENET_OK = "specs/lenet5.yaml: ok (61,706 params, 416,520 MACs)"
BROKEN = "tests/broken/kernel_larger_than_input.yaml"
BROKEN_MESSAGE = "layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the output would be empty"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``cnnspec ARGS`` from the repository root; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --- check -------------------------------------------------------------------------------------------

def test_check_ok_files_exit_0(cli) -> None:
    assert cli("check", "specs/lenet5.yaml", "specs/blocks/resnet.yaml") == (
        0, f"{LENET_OK}\nspecs/blocks/resnet.yaml: ok (blocks)\n", "")


def test_check_directory_checks_every_yaml_file(cli) -> None:
    code, out, err = cli("check", "specs")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").rglob("*.yaml"))
    assert (code, err) == (0, "")
    assert [line.split(": ok (")[0] for line in out.splitlines()] == files
    assert "specs/resnet50.yaml: ok (25,557,032 params, 4,089,184,256 MACs)" in out.splitlines()


def test_check_one_bad_file_exit_1_others_still_reported(cli) -> None:
    assert cli("check", "specs/lenet5.yaml", BROKEN) == (1, f"{LENET_OK}\n", f"{BROKEN}:5:28: error: {BROKEN_MESSAGE}\n")


def test_check_json_is_a_list_of_results(cli) -> None:
    code, out, err = cli("check", "specs/lenet5.yaml", BROKEN, "--format", "json")
    assert (code, err) == (1, "")
    assert json.loads(out) == [
        {"file": "specs/lenet5.yaml", "ok": True, "kind": "spec", "params": 61706, "macs": 416520, "errors": []},
        {"file": BROKEN, "ok": False, "kind": "spec", "params": None, "macs": None,
         "errors": [{"file": BROKEN, "line": 5, "col": 28, "code": "shape", "message": BROKEN_MESSAGE}]},
    ]


def test_check_github_annotations(cli) -> None:
    code, out, err = cli("check", "specs/lenet5.yaml", BROKEN, "tests/broken/undefined_param.yaml",
                         "--format", "github")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"::error file={BROKEN},line=5,col=28,endLine=5,endColumn=28,title=cnnspec (shape)::{BROKEN_MESSAGE}",
        ("::error file=tests/broken/undefined_param.yaml,line=6,col=17,endLine=6,endColumn=22,"
         "title=cnnspec (unknown-name)::`$widht` is not defined; did you mean `$width`?"),
    ]


def test_github_escapes_percent_and_newlines() -> None:
    assert escape_data("50% of a\r\nb") == "50%25 of a%0D%0Ab"


def test_check_error_in_an_imported_file_is_located_there(cli) -> None:
    code, out, _err = cli("check", "tests/broken/import_cycle/spec.yaml", "--format", "json")
    record = json.loads(out)[0]
    assert (code, record["file"], record["errors"][0]["file"], record["errors"][0]["line"]) == (
        1, "tests/broken/import_cycle/spec.yaml", "tests/broken/import_cycle/b.yaml", 2)


@pytest.mark.parametrize(("args", "message"), [
    (("check", "nothere.yaml"), "cnnspec check: error: no such file or directory: nothere.yaml"),
    (("check", "specs/lenet5.yaml", "--input", "1,x"),
     "cnnspec check: error: --input takes sizes like 3,224,224 (or 3x224x224), got `1,x`"),
    (("check", "specs/lenet5.yaml", "--input", "1,2,3,4,5"),
     ("cnnspec check: error: --input takes 1 to 4 positive sizes (C[,L|H,W|D,H,W]), got `1,2,3,4,5` "
     "(no batch axis: leave out the first size)")),
    (("check", "specs/lenet5.yaml", "--input", "1,0,28"),
     "cnnspec check: error: --input takes 1 to 4 positive sizes (C[,L|H,W|D,H,W]), got `1,0,28`"),
    (("check", "specs/lenet5.yaml", "--input", "1,\u00b28,28"),
     "cnnspec check: error: --input takes sizes like 3,224,224 (or 3x224x224), got `1,\u00b28,28`"),
    (("check", "specs/lenet5.yaml", "--set", "num_classes"),
     "cnnspec check: error: --set takes NAME=VALUE, got `num_classes`"),
    (("summary", "nothere.yaml"), "cnnspec summary: error: no such file: nothere.yaml"),
    (("summary", "specs"), "cnnspec summary: error: not a file: specs"),
    (("summary", "specs/lenet5.yaml", "--depth", "0"), "cnnspec summary: error: --depth must be at least 1"),
    (("summary", "specs/blocks/resnet.yaml"), ("cnnspec summary: error: specs/blocks/resnet.yaml holds only "
     "`blocks` (a block library); summarise a spec that uses them")),
])
def test_usage_errors_exit_2_with_one_line(cli, args: tuple[str, ...], message: str) -> None:
    assert cli(*args) == (2, "", message + "\n")


def test_directory_without_specs_is_a_usage_error(cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no specs here\n")
    assert cli("check", str(tmp_path)) == (2, "", f"cnnspec check: error: no spec files (*.yaml, *.yml) under {tmp_path}\n")


def test_unknown_format_is_an_argparse_usage_error(cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "specs/lenet5.yaml", "--format", "xml"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("cnnspec check: error: argument --format: invalid")


def test_check_set_and_input(cli) -> None:
    assert cli("check", "specs/lenet5.yaml", "--set", "num_classes=5", "--input", "1x32x32") == (
        0, "specs/lenet5.yaml: ok (82,401 params, 578,820 MACs)\n", "")


@pytest.mark.parametrize(("value", "classes"), [("010", 10), ("7", 7), ("+3", 3)])
def test_set_values_are_read_as_yaml_1_2_scalars(cli, value: str, classes: int) -> None:
    code, out, _ = cli("summary", "specs/lenet5.yaml", "--set", f"num_classes={value}", "--format", "json")
    assert (code, json.loads(out)["output_shape"]) == (0, [classes])


def test_set_value_of_the_wrong_type(cli) -> None:
    code, out, err = cli("check", "specs/lenet5.yaml", "--set", "num_classes=1e1")
    assert (code, out) == (1, "")
    assert err.endswith("error: --set num_classes=10.0: `num_classes` is a whole number (10 in the spec), got a "
                        "number\n")


def test_check_set_of_unknown_param_is_a_spec_error(cli) -> None:
    """Located at the spec's `params` key (wherever the zoo file has it)."""
    line = next(i for i, text in enumerate((ROOT / "specs/lenet5.yaml").read_text().splitlines(), 1)
                if text.startswith("params:"))
    assert cli("check", "specs/lenet5.yaml", "--set", "classes=5") == (
        1, "", (f"specs/lenet5.yaml:{line}:1: error: --set classes: the spec has no parameter `classes`; did you mean "
        "`num_classes`?\n"))


# --- summary -----------------------------------------------------------------------------------------

SUMMARY_KEYS = ["name", "input_shape", "output_shape", "params", "trainable_params", "buffers", "macs", "flops",
                "activation_bytes", "smallest_input", "layers"]
LAYER_KEYS = ["path", "op", "output_shape", "params", "macs", "receptive_field"]


def test_summary_json_contract(cli) -> None:
    code, out, err = cli("summary", "specs/lenet5.yaml", "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert list(data) == SUMMARY_KEYS
    assert {k: v for k, v in data.items() if k != "layers"} == {
        "name": "lenet5", "input_shape": [1, 28, 28], "output_shape": [10], "params": 61706,
        "trainable_params": 61706, "buffers": 0, "macs": 416520, "flops": 833040, "activation_bytes": 60008,
        "smallest_input": [1, 28, 28]}
    assert all(list(layer) == LAYER_KEYS for layer in data["layers"])
    assert [layer["path"] for layer in data["layers"]] == [str(i) for i in range(12)]
    assert data["layers"][3] == {"path": "3", "op": "conv", "output_shape": [16, 10, 10], "params": 2416,
                                 "macs": 240000, "receptive_field": {"size": [14, 14], "stride": [2, 2]}}
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]


def test_summary_json_set_and_input(cli) -> None:
    code, out, _ = cli("summary", "specs/resnet18.yaml", "--set", "num_classes=10", "--input", "3,64,64",
                       "--format", "json")
    data = json.loads(out)
    assert (code, data["input_shape"], data["output_shape"], data["params"], data["macs"]) == (
        0, [3, 64, 64], [10], 11_181_642, 148_050_944)
    assert data["layers"][-1] == {"path": "fc", "op": "linear", "output_shape": [10], "params": 5130,
                                  "macs": 5120, "receptive_field": {"size": [467, 467], "stride": [64, 64]}}


def test_summary_text(cli) -> None:
    code, out, err = cli("summary", "specs/lenet5.yaml")
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == "lenet5  (specs/lenet5.yaml)  input 1x28x28 -> output 10"
    assert lines[2].split() == ["Layer", "Op", "Output", "Params", "MACs", "RF"]
    assert lines[11].split() == ["7", "linear", "400", "->", "120", "120", "48,120", "48,000", "32x32"]
    assert lines[-5:] == [
        "Params: 61,706 (trainable 61,706, frozen 0); buffers: 0",
        "MACs: 416,520 (416.52 k); FLOPs = 2 x MACs: 833.04 k",
        "Activation memory (forward, batch 1, float32): 60.01 kB; weights: 246.82 kB",
        "Receptive field of the output: 32x32 (stride 20x20)",
        "Smallest valid input: 1x28x28 (the weights of layer 7 (linear) depend on the input size; `--input` re-sizes them)",
    ]


def _table_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
    return [line.split() for line in lines[rules[1] + 1:rules[2]]]


def _number(cell: str) -> int:
    return 0 if cell == "-" else int(cell.replace(",", ""))


@pytest.mark.parametrize(("depth", "count"), [("1", 11), ("2", 19), ("4", 84)])
def test_summary_depth_collapses_rows_but_keeps_totals(cli, depth: str, count: int) -> None:
    code, out, _ = cli("summary", "specs/resnet18.yaml", "--depth", depth)
    rows = _table_rows(out)
    top = [row for row in rows if "." not in row[0]]  # deeper rows are dotted paths (layer1.0.conv1)
    assert (code, len(rows), len(top)) == (0, count, 11)
    assert sum(_number(row[-3]) for row in top) == 11_689_512
    assert sum(_number(row[-2]) for row in top) == 1_814_073_344
    assert "Params: 11,689,512 (trainable 11,689,512, frozen 0); buffers: 9,620" in out


def test_summary_depth_1_marks_folded_stages(cli) -> None:
    rows = _table_rows(cli("summary", "specs/resnet18.yaml", "--depth", "1")[1])
    assert [row[0] for row in rows] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                        "avgpool", "9", "fc"]
    assert rows[5] == ["layer2", "...", "stage", "128x28x28", "525,568", "411,041,792", "99x99"]


def test_summary_markdown(cli) -> None:
    code, out, err = cli("summary", "specs/lenet5.yaml", "--format", "markdown")
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[:4] == ["### lenet5: input 1x28x28 -> output 10", "", "| Layer | Op | Output | Params | MACs | RF |",
                         "|---|---|---|---:|---:|---|"]
    assert lines[4] == "| `0` | conv 5x5, 6 | 6x28x28 | 156 | 117,600 | 5x5 |"
    assert len([line for line in lines if line.startswith("| `")]) == 12
    assert lines[-5:] == [
        "- Params: 61,706 (trainable 61,706, frozen 0); buffers: 0",
        "- MACs: 416,520 (416.52 k); FLOPs = 2 x MACs: 833.04 k",
        "- Activation memory (forward, batch 1, float32): 60.01 kB; weights: 246.82 kB",
        "- Receptive field of the output: 32x32 (stride 20x20)",
        "- Smallest valid input: 1x28x28 (the weights of layer 7 (linear) depend on the input size; `--input` re-sizes them)",
    ]


def test_summary_of_a_broken_spec_exit_1(cli) -> None:
    assert cli("summary", BROKEN) == (1, "", f"{BROKEN}:5:28: error: {BROKEN_MESSAGE}\n")


def test_check_reports_three_independent_mistakes_in_one_run(cli, tmp_path: Path) -> None:
    """Issue 11's acceptance: three mistakes in three layers, three located errors from one ``check``."""
    spec = tmp_path / "three.yaml"
    spec.write_text("name: three\ninput: [1, 28, 28]\nlayers:\n  - conv: {out: 6, kernal: 5}\n  - rellu\n"
                    "  - linear: {out: $num_clases}\n", encoding="utf-8")
    code, out, err = cli("check", str(spec))
    assert (code, out) == (1, "")
    assert err == (f"{spec}:4:20: error: unknown option `kernal` for `conv`; did you mean `kernel`?\n"
                   f"{spec}:5:5: error: unknown layer `rellu`; did you mean `relu`?\n"
                   f"{spec}:6:19: error: `$num_clases` is not defined (defined here: none)\n")


@pytest.mark.parametrize(("spec", "given", "message"), [
    ("cnn3d_example", "32,32,256", ("--input 32,32,256: 3 sizes, but the spec's input [1, 32, 32, 32] has 4 "
     "(C,D,H,W, no batch axis); with the channels first that is --input 1,32,32,256")),
    ("lenet5", "1,1,28,28", ("--input 1,1,28,28: 4 sizes, but the spec's input [1, 28, 28] has 3 (C,H,W, no batch "
     "axis); without a batch axis that is --input 1,28,28")),
    ("lenet5", "28", "--input 28: 1 size, but the spec's input [1, 28, 28] has 3 (C,H,W, no batch axis)"),
])
def test_input_of_another_rank_is_refused_with_a_hint(spec: str, given: str, message: str,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another rank is another network (a 2D one for a 3D spec): refused at the spec's `input`."""
    monkeypatch.chdir(ROOT)
    assert main(["check", f"specs/{spec}.yaml", "--input", given]) == 1
    assert capsys.readouterr().err == f"specs/{spec}.yaml:5:8: error: {message}\n"
