"""``cnnspec diff``: exact text, Markdown and JSON for a known change, layer matching, and ``--git REV``.

Figures by hand. Old: stem conv 3->16 3x3 448 params, 16*27*32*32 = 442,368 MACs; down conv 16->32 3x3/2
4,640 params, 32*144*16*16 = 1,179,648 MACs; fc 32->10 330 params, 320 MACs. New: + batchnorm(16) 32
params and 33 buffers; down 16->64 9,280 params, 2,359,296 MACs; fc 64->10 650 params, 640 MACs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.report.spec_diff import align

OLD = """\
name: small
input: [3, 32, 32]
layers:
  - conv: {out: 16, kernel: 3, padding: 1, name: stem}
  - relu: {name: act}
  - conv: {out: 32, kernel: 3, stride: 2, padding: 1, name: down}
  - relu: {name: act}
  - global_avgpool: {name: pool}
  - flatten: {name: flat}
  - linear: {out: 10, name: fc}
"""
NEW = (OLD.replace("  - relu: {name: act}\n  - conv: {out: 32", "  - batchnorm: {name: bn}\n  - relu: {name: act}\n"
                   "  - conv: {out: 64")
       .replace("  - relu: {name: act}\n  - global", "  - global"))

TEXT = """\
cnnspec diff: old.yaml (small) => new.yaml (small)

                        old        new                change
input               3x32x32    3x32x32
output                   10         10
params                5,418     10,410      +4,992 (+92.14%)
trainable params      5,418     10,410      +4,992 (+92.14%)
buffers                   0         33                   +33
MACs              1,622,336  2,802,304  +1,179,968 (+72.73%)
activation bytes    196,904    262,696     +65,792 (+33.41%)

layers: 4 changed, 1 added, 1 removed, 2 unchanged
   layer  op                                                output                                 params                                 MACs
+  bn     batchnorm                                         16x32x32                                   32                                    0
~  down   conv 3x3, 32, stride 2 => conv 3x3, 64, stride 2  32x16x16 => 64x16x16  4,640 => 9,280 (+4,640)  1,179,648 => 2,359,296 (+1,179,648)
      out: 32 => 64
-  act#2  relu                                              32x16x16                                    0                                    0
~  pool   global avgpool                                    32x1x1 => 64x1x1                            0                                    0
~  flat   flatten                                           32 => 64                                    0                                    0
~  fc     linear 32 -> 10 => linear 64 -> 10                10                          330 => 650 (+320)                    320 => 640 (+320)
"""

MARKDOWN = """\
#### cnnspec diff: `small`

`old.yaml` → `new.yaml`

| | old | new | change |
|---|---:|---:|---:|
| input | 3x32x32 | 3x32x32 |  |
| output | 10 | 10 |  |
| params | 5,418 | 10,410 | +4,992 (+92.14%) |
| trainable params | 5,418 | 10,410 | +4,992 (+92.14%) |
| buffers | 0 | 33 | +33 |
| MACs | 1,622,336 | 2,802,304 | +1,179,968 (+72.73%) |
| activation bytes | 196,904 | 262,696 | +65,792 (+33.41%) |

**Layers:** 4 changed, 1 added, 1 removed, 2 unchanged

| | layer | op | output | params | MACs | settings |
|---|---|---|---|---:|---:|---|
| added | `bn` | batchnorm | 16x32x32 | 32 | 0 |  |
| changed | `down` | conv 3x3, 32, stride 2 → conv 3x3, 64, stride 2 | 32x16x16 → 64x16x16 | 4,640 → 9,280 (+4,640) | 1,179,648 → 2,359,296 (+1,179,648) | out: 32 → 64 |
| removed | `act#2` | relu | 32x16x16 | 0 | 0 |  |
| changed | `pool` | global avgpool | 32x1x1 → 64x1x1 | 0 | 0 |  |
| changed | `flat` | flatten | 32 → 64 | 0 | 0 |  |
| changed | `fc` | linear 32 -> 10 → linear 64 -> 10 | 10 | 330 → 650 (+320) | 320 → 640 (+320) |  |
"""


@pytest.fixture()
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.chdir(tmp_path)
    Path("old.yaml").write_text(OLD)
    Path("new.yaml").write_text(NEW)
    Path("lib.yaml").write_text("blocks:\n  unit:\n    layers: [relu]\n")
    return "old.yaml", "new.yaml"


def test_text(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", *pair]) == 0
    assert capsys.readouterr().out == TEXT


def test_markdown(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", *pair, "--format", "markdown"]) == 0
    assert capsys.readouterr().out == MARKDOWN


def test_json(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", *pair, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["change"] == {"params": 4992, "trainable_params": 4992, "buffers": 33, "macs": 1179968,
                                "activation_bytes": 65792}
    assert record["counts"] == {"changed": 4, "added": 1, "removed": 1, "unchanged": 2, "renumbered": 0}
    assert [(r["path"], r["status"]) for r in record["layers"]] == [
        ("bn", "added"), ("down", "changed"), ("act#2", "removed"), ("pool", "changed"), ("flat", "changed"),
        ("fc", "changed")]
    assert record["layers"][1] == {
        "path": "down", "old_path": "down", "status": "changed",
        "old": {"op": "conv 3x3, 32, stride 2", "output_shape": [32, 16, 16], "params": 4640, "macs": 1179648},
        "new": {"op": "conv 3x3, 64, stride 2", "output_shape": [64, 16, 16], "params": 9280, "macs": 2359296},
        "settings": [{"name": "out", "old": "32", "new": "64"}],
    }
    assert record["layers"][0]["old"] is None and record["layers"][2]["new"] is None
    assert (record["old"]["params"], record["new"]["params"]) == (5418, 10410)


def test_identical_specs(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", pair[0], pair[0]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "layers: 0 changed, 0 added, 0 removed, 7 unchanged"
    assert main(["diff", pair[0], pair[0], "--skip-unchanged"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", *pair, "--skip-unchanged"]) == 0
    assert capsys.readouterr().out == TEXT


def test_alignment_pairs_by_op_and_path_without_positions() -> None:
    conv, relu, bn = "conv", "relu", "batchnorm"
    # an unnamed layer inserted: the later ones keep their pairing although their index moved
    assert align([(conv, "0"), (relu, "1"), (conv, "2")], [(conv, "0"), (bn, "1"), (relu, "2"), (conv, "3")]) == [
        (0, 0), (None, 1), (1, 2), (2, 3)]
    # removed layers stay where they were; an op replaced at the same path is paired (a change)
    assert align([(conv, "a"), (relu, "b"), (conv, "c"), (conv, "d")], [(conv, "a"), (bn, "x"), (conv, "d")]) == [
        (0, 0), (1, None), (2, None), (None, 1), (3, 2)]
    assert align([(relu, "act")], [("gelu", "act")]) == [(0, 0)]
    assert align([(conv, "a"), (conv, "b")], [(conv, "c")]) == [(0, None), (1, None), (None, 0)]
    # stage instances and repeated calls
    assert align([(conv, "layer1.0.conv1"), (conv, "layer1.1.conv1")], [(conv, "layer1.0.conv1")]) == [
        (0, 0), (1, None)]
    assert align([(relu, "relu"), (relu, "relu#2")], [(relu, "relu")]) == [(0, 0), (1, None)]
    assert align([], [(conv, "0")]) == [(None, 0)]


UNNAMED = "name: plain\ninput: [3, 32, 32]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in (
    "conv: {out: 8, kernel: 3, padding: 1}", "relu", "conv: {out: 8, kernel: 3, padding: 1}", "relu", "global_avgpool",
    "flatten", "linear: {out: 10}"))


def test_an_inserted_unnamed_layer_is_one_insertion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """batchnorm(8) after the first conv: 16 params and 17 buffers; 8x32x32 floats = 32,768 activation bytes."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(UNNAMED)
    Path("b.yaml").write_text(UNNAMED.replace("  - relu\n", "  - batchnorm\n  - relu\n", 1))
    assert main(["diff", "a.yaml", "b.yaml"]) == 0
    assert capsys.readouterr().out.split("\n\n")[-1] == (
        "layers: 0 changed, 1 added, 0 removed, 7 unchanged (6 renumbered)\n"
        "   layer  op         output   params  MACs\n"
        "+  1      batchnorm  8x32x32      16     0\n")
    assert main(["diff", "b.yaml", "a.yaml", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["layers"] == [{"path": "1", "old_path": "1", "status": "removed",
                                 "old": {"op": "batchnorm", "output_shape": [8, 32, 32], "params": 16, "macs": 0},
                                 "new": None, "settings": []}]
    assert record["counts"] == {"changed": 0, "added": 0, "removed": 1, "unchanged": 7, "renumbered": 6}


def test_a_changed_layer_after_an_insertion_names_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(UNNAMED)
    wider = UNNAMED.replace("  - relu\n", "  - batchnorm\n  - relu\n", 1).replace("linear: {out: 10}", "linear: {out: 12}")
    Path("b.yaml").write_text(wider)
    assert main(["diff", "a.yaml", "b.yaml", "--format", "markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| added", "| changed"))]
    # linear 8->10: 90 params, 80 MACs; 8->12: 108 params, 96 MACs
    assert rows == ["| added | `1` | batchnorm | 8x32x32 | 16 | 0 |  |",
                    ("| changed | `6` → `7` | linear 8 -> 10 → linear 8 -> 12 | 10 → 12 | 90 → 108 (+18) | 80 → 96 (+16) "
                     "| out: 10 → 12 |")]


def test_exit_code(pair: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", *pair, "--exit-code"]) == 1
    assert capsys.readouterr().out == TEXT
    assert main(["diff", pair[0], pair[0], "--exit-code", "--skip-unchanged"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["diff", "old.yaml"], "give OLD and NEW specs (or --git REV SPEC)"),
    (["diff", "--git", "HEAD", "old.yaml", "new.yaml"], "give one SPEC with --git REV"),
    (["diff", "lib.yaml", "new.yaml"], "lib.yaml is a block library; diff the specs that use it"),
])
def test_usage_errors(pair: tuple[str, str], capsys: pytest.CaptureFixture[str], argv: list[str],
                      message: str) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"cnnspec diff: error: {message}\n"


# -- --git REV --------------------------------------------------------------------------------------------
BLOCKS = """\
blocks:
  unit:
    args: {width: int}
    layers:
      - conv: {out: $width, kernel: 3, padding: 1, name: conv}
      - relu: {name: act}
"""
USES = "name: net\ninput: [3, 16, 16]\nuse: [lib/blocks.yaml]\nlayers:\n  - unit: {width: 8, name: u}\n  - flatten\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "specs" / "lib").mkdir(parents=True)
    (tmp_path / "specs" / "lib" / "blocks.yaml").write_text(BLOCKS)
    (tmp_path / "specs" / "net.yaml").write_text(USES)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    monkeypatch.chdir(tmp_path / "specs")
    return tmp_path


@pytest.mark.slow
def test_git_revision_with_an_imported_block_changed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "specs" / "lib" / "blocks.yaml").write_text(BLOCKS.replace("kernel: 3, padding: 1", "kernel: 5, padding: 2"))
    assert main(["diff", "--git", "HEAD", "net.yaml", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["old"]["file"], record["new"]["file"]) == ("HEAD:specs/net.yaml", "net.yaml")
    # conv 3->8: 3x3: 224 params, 8*27*256 = 55,296 MACs; 5x5: 608 params, 8*75*256 = 153,600 MACs
    assert record["layers"] == [{
        "path": "u.conv", "old_path": "u.conv", "status": "changed",
        "old": {"op": "conv 3x3, 8", "output_shape": [8, 16, 16], "params": 224, "macs": 55296},
        "new": {"op": "conv 5x5, 8", "output_shape": [8, 16, 16], "params": 608, "macs": 153600},
        "settings": [{"name": "kernel", "old": "3", "new": "5"}, {"name": "padding", "old": "1", "new": "2"}],
    }]


@pytest.mark.slow
def test_git_errors_name_the_revision(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "specs" / "net.yaml").write_text(USES.replace("width: 8", "width: 0"))
    _git(repo, "commit", "-qam", "broken")
    (repo / "specs" / "net.yaml").write_text(USES)
    assert main(["diff", "--git", "HEAD", "net.yaml"]) == 1
    assert capsys.readouterr().err.startswith("HEAD:specs/lib/blocks.yaml:5:")
    assert main(["diff", "--git", "HEAD~1", "net.yaml"]) == 0
    capsys.readouterr()
    assert main(["diff", "--git", "HEAD~5", "net.yaml"]) == 2
    assert capsys.readouterr().err == "cnnspec diff: error: unknown git revision `HEAD~5`\n"
    (repo / "specs" / "other.yaml").write_text(USES)
    assert main(["diff", "--git", "HEAD", "other.yaml"]) == 2
    assert capsys.readouterr().err == "cnnspec diff: error: specs/other.yaml does not exist at HEAD\n"


HEADS = """\
name: heads
input: [3, 16, 16]
layers:
  - conv: {out: 8, kernel: 3, padding: 1, name: stem, as: feat}
  - conv: {out: 4, kernel: 1, name: head, as: out}
  - conv: {out: 2, kernel: 1, name: side, from: feat, as: aux}
outputs: {out: out, aux: aux}
"""
# stem 3->8 3x3: 224 params, 8*27*256 = 55,296 MACs; head 8->4 1x1: 36, 8,192; side 8->2: 18, 4,096 (8->3: 27, 6,144)


def test_every_output_is_compared_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A renamed output (the same tensor) is one removed and one added: the forward's dict keys change."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(HEADS)
    Path("b.yaml").write_text(HEADS.replace("{out: out, aux: aux}", "{out: out, side: aux}"))
    assert main(["diff", "a.yaml", "b.yaml", "--exit-code"]) == 1
    assert capsys.readouterr().out == (
        "cnnspec diff: a.yaml (heads) => b.yaml (heads)\n\n"
        "                      old      new   change\n"
        "input             3x16x16  3x16x16\n"
        "output out        4x16x16  4x16x16\n"
        "output aux        2x16x16        -  removed\n"
        "output side             -  2x16x16    added\n"
        "params                278      278        0\n"
        "trainable params      278      278        0\n"
        "buffers                 0        0        0\n"
        "MACs               67,584   67,584        0\n"
        "activation bytes   14,336   14,336        0\n\n"
        "layers: 0 changed, 0 added, 0 removed, 3 unchanged\n")
    assert main(["diff", "a.yaml", "b.yaml", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["outputs"] == [
        {"name": "out", "status": "unchanged", "old": [4, 16, 16], "new": [4, 16, 16]},
        {"name": "aux", "status": "removed", "old": [2, 16, 16], "new": None},
        {"name": "side", "status": "added", "old": None, "new": [2, 16, 16]}]
    assert (record["old"]["outputs"], record["new"]["outputs"]) == (
        {"out": [4, 16, 16], "aux": [2, 16, 16]}, {"out": [4, 16, 16], "side": [2, 16, 16]})
    assert main(["diff", "a.yaml", "a.yaml", "--exit-code"]) == 0


def test_a_second_output_whose_shape_changed_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(HEADS)
    Path("c.yaml").write_text(HEADS.replace("{out: 2, kernel: 1, name: side", "{out: 3, kernel: 1, name: side"))
    assert main(["diff", "a.yaml", "c.yaml", "--format", "markdown", "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert out.split("\n\n")[2] == (
        "| | old | new | change |\n|---|---:|---:|---:|\n"
        "| input | 3x16x16 | 3x16x16 |  |\n"
        "| output `out` | 4x16x16 | 4x16x16 |  |\n"
        "| output `aux` | 2x16x16 | 3x16x16 | changed |\n"
        "| params | 278 | 287 | +9 (+3.24%) |\n"
        "| trainable params | 278 | 287 | +9 (+3.24%) |\n"
        "| buffers | 0 | 0 | 0 |\n"
        "| MACs | 67,584 | 69,632 | +2,048 (+3.03%) |\n"
        "| activation bytes | 14,336 | 15,360 | +1,024 (+7.14%) |")


def test_one_output_becoming_named_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """One unnamed output (a tensor) against `outputs:` (a dict): the unnamed one removed, each name added."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(HEADS.replace("outputs: {out: out, aux: aux}\n", ""))
    Path("b.yaml").write_text(HEADS)
    assert main(["diff", "a.yaml", "b.yaml", "--exit-code"]) == 1
    assert capsys.readouterr().out.splitlines()[4:8] == [
        "output            2x16x16        -  removed",
        "output out              -  4x16x16    added",
        "output aux              -  2x16x16    added",
        "params                278      278        0"]
