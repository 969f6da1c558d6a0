"""Conventions users know from ruff, mypy and pytest: ``-`` reads the spec from standard input, ``--quiet``,
colour on a terminal only (``NO_COLOR``, ``FORCE_COLOR``), a progress line for long work that disappears
at the end, and ``--set`` values that say what is wrong with them (attack findings P5)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import ClassVar

import pytest

from cnnspec import console
from cnnspec.cli import main

ROOT = Path(__file__).parents[1]
BROKEN = (ROOT / "tests" / "broken" / "kernel_larger_than_input.yaml").read_text()
LENET = (ROOT / "specs" / "lenet5.yaml").read_text()
BOLD, RED, YELLOW, RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``cnnspec ARGS`` in the working directory with ``stdin`` as standard input."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)

    def run(*args: str, stdin: str | bytes = b"") -> tuple[int, str, str]:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- standard input ----------------------------------------------------------------------------------------

def test_check_reads_stdin(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli("check", "-", stdin=BROKEN) == (
        1, "", "<stdin>:5:28: error: layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the output would be empty\n")
    assert cli("check", "specs/lenet5.yaml", "-", stdin=LENET) == (
        0, "specs/lenet5.yaml: ok (61,706 params, 416,520 MACs)\n<stdin>: ok (61,706 params, 416,520 MACs)\n", "")


def test_stdin_imports_are_relative_to_the_working_directory(cli, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "unit.yaml").write_text("blocks:\n  unit:\n    layers: [{conv: {out: 4, kernel: 3}}, relu]\n")
    spec = "name: net\ninput: [1, 8, 8]\nuse: [blocks/unit.yaml]\nlayers:\n  - unit\n  - flatten\n"
    monkeypatch.chdir(tmp_path)
    # conv 1->4 3x3: 40 params, 4*9*6*6 = 1,296 MACs
    assert cli("check", "-", stdin=spec) == (0, "<stdin>: ok (40 params, 1,296 MACs)\n", "")
    code, out, _ = cli("summary", "-", "--format", "json", stdin=spec)
    assert (code, json.loads(out)["params"]) == (0, 40)
    assert cli("summary", "-", stdin=spec)[1].splitlines()[0] == "net  (<stdin>)  input 1x8x8 -> output 144"
    code, _, err = cli("check", "-", stdin=spec.replace("blocks/unit", "blocks/nothing"))
    assert (code, err) == (1, "<stdin>:3:7: error: import `blocks/nothing.yaml`: no such file\n")


def test_stdin_budgets_are_located_in_stdin(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = ("name: net\ninput: [1, 8, 8]\nconstraints:\n  max_params: 10\n  input_sizes:\n    - [1, 2, 2]\n"
            "layers:\n  - conv: {out: 4, kernel: 3}\n")
    assert cli("check", "-", "--format", "github", stdin=spec) == (1, (
        "::error file=<stdin>,line=4,col=15,endLine=4,endColumn=16,title=cnnspec (budget)::max_params: the network "
        "has 40 parameters, over the budget of 10 by 30 (4.00x)\n"
        "::error file=<stdin>,line=6,col=7,endLine=6,endColumn=15,title=cnnspec (budget)::input_sizes[0]: at input "
        "1x2x2: layer 0 (conv): kernel 3x3 is larger than its 2x2 input; the output would be empty (at <stdin>:8:28)\n"), "")
    assert list(tmp_path.iterdir()) == []


def test_stdin_refusals(cli) -> None:
    assert cli("check", "-", stdin=b"name: x\xff\n") == (
        1, "", "<stdin>:1:8: error: the text is not valid UTF-8 (byte 0xff); send UTF-8\n")
    assert cli("summary", "-", stdin="blocks:\n  b:\n    layers: [relu]\n") == (
        2, "", "cnnspec summary: error: <stdin> holds only `blocks` (a block library); summarise a spec that uses them\n")
    code, _, err = cli("check", "-", stdin=b"#" * (4 * 1024 * 1024 + 1))
    assert (code, err) == (1, ("<stdin>:1:1: error: standard input holds more than 4,194,304 bytes; specs are "
                              "limited to 4,194,304 bytes\n"))


# --- --quiet -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_quiet_prints_only_errors(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli("check", "-q", "specs") == (0, "", "")
    assert cli("check", "--quiet", "specs/lenet5.yaml", "-", stdin=BROKEN) == (
        1, "", "<stdin>:5:28: error: layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the output would be empty\n")
    target = tmp_path / "lenet5.py"
    assert cli("build", "specs/lenet5.yaml", "--target", "torch", "-o", str(target), "-q") == (0, "", "")
    assert target.is_file()
    code, _, err = cli("build", "specs/lenet5.yaml", "--target", "torch", "-o", str(tmp_path / "again.py"))
    assert (code, err.startswith(f"wrote {tmp_path / 'again.py'} (")) == (0, True)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "lenet5.yaml").write_text(LENET)
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "lenet5.py").write_bytes((ROOT / "generated" / "lenet5.py").read_bytes())
    (tmp_path / "generated" / "manifest").write_text("specs/lenet5.yaml --target torch -o generated/lenet5.py\n")
    monkeypatch.chdir(tmp_path)
    assert cli("build", "--check", "-q") == (0, "", "")
    assert cli("build", "--check") == (0, "1 generated file(s) up to date\n", "")


@pytest.mark.slow
def test_build_check_without_a_manifest(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("build", "--check", "--if-manifest-exists") == (
        0, "", "note: no generated/manifest here, so no generated files to check\n")
    assert cli("build", "--check", "--if-manifest-exists", "-q") == (0, "", "")
    assert cli("build", "--check") == (
        1, "", "generated/manifest:1:1: error: cannot read the manifest: No such file or directory\n")


# --- colour ------------------------------------------------------------------------------------------------

def test_colour_when_forced_and_never_with_no_color(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plain = "<stdin>:5:28: error: layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the output would be empty\n"
    assert cli("check", "-", stdin=BROKEN)[2] == plain  # captured output is not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert cli("check", "-", stdin=BROKEN)[2] == (
        f"{BOLD}<stdin>:5:28:{RESET} {RED}error:{RESET} layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the "
        "output would be empty\n")
    assert cli("check", "nothere.yaml")[2] == (
        f"{BOLD}cnnspec check:{RESET} {RED}error:{RESET} no such file or directory: nothere.yaml\n")
    assert cli("check", "specs/lenet5.yaml")[1] == "specs/lenet5.yaml: ok (61,706 params, 416,520 MACs)\n"
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli("check", "-", stdin=BROKEN)[2] == plain


def test_colour_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert (console.colour_enabled(Terminal()), console.colour_enabled(io.StringIO())) == (True, False)
    assert console.styled("note: no CUDA provider", Terminal()) == f"{YELLOW}note:{RESET} no CUDA provider"
    assert console.styled("a.yaml:1:2: warning: w", Terminal()) == f"{BOLD}a.yaml:1:2:{RESET} {YELLOW}warning:{RESET} w"
    assert console.styled("a.yaml: ok (40 params)", Terminal()) == "a.yaml: ok (40 params)"
    monkeypatch.setenv("NO_COLOR", "")  # empty: not set, as no-color.org says
    assert console.colour_enabled(Terminal())
    monkeypatch.setenv("TERM", "dumb")
    assert not console.colour_enabled(Terminal())


# --- progress ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_progress_draws_on_a_terminal_after_the_delay_and_clears_its_line() -> None:
    console.configure(quiet=False)
    screen = Terminal()
    with console.Progress("building x.onnx", delay=0.05, interval=0.01, stream=screen) as progress:
        time.sleep(0.3)
        progress.update(3)
    drawn = screen.getvalue()
    assert drawn.startswith("\r\x1b[Kbuilding x.onnx  0 s")
    assert drawn.endswith("\r\x1b[K") and not progress.drawn
    counted = Terminal()
    with console.Progress("", 35, delay=0.0, interval=0.01, stream=counted) as progress:
        progress.update(12, "timing")
        time.sleep(0.1)
    assert "\r\x1b[Ktiming 12/35  0 s" in counted.getvalue()


@pytest.mark.slow
def test_progress_draws_nothing_for_fast_work_pipes_or_quiet() -> None:
    for stream, quiet, work in ((Terminal(), False, 0.0), (io.StringIO(), False, 0.2), (Terminal(), True, 0.2)):
        console.configure(quiet=quiet)
        with console.Progress("building", delay=0.05, interval=0.01, stream=stream):
            time.sleep(work)
        assert stream.getvalue() == ""
    console.configure(quiet=False)


@pytest.mark.slow
def test_an_error_clears_a_running_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    console.configure(quiet=False)
    screen = Terminal()
    progress = console.Progress("timing", delay=0.0, interval=0.01, stream=screen).start()
    time.sleep(0.05)
    console.error("cnnspec bench: error: boom")
    assert screen.getvalue().endswith("\r\x1b[K") and not progress.drawn
    assert capsys.readouterr().err == "cnnspec bench: error: boom\n"


# --- --set values (attack findings P5) -------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "message"), [
    ("num_classes=9223372036854775808", ("--set num_classes=9223372036854775808: `9223372036854775808` is too large: "
     "whole numbers in a spec are at most 2^63 - 1 (9,223,372,036,854,775,807)")),
    ("num_classes=1e400", "--set num_classes=1e400: `1e400` is not a finite number; specs take finite numbers only"),
    ("num_classes=-.inf", "--set num_classes=-.inf: `-.inf` is not a finite number; specs take finite numbers only"),
    ("num_classes=3 # c", ("--set num_classes=3 # c: `#` starts a YAML comment, which would leave `3`; remove the "
     "comment, or quote the value to keep the `#` as text")),
    ("num_classes=#3", ("--set num_classes=#3: `#` starts a YAML comment, which would leave nothing; remove the "
     "comment, or quote the value to keep the `#` as text")),
])
def test_P5_set_values_that_cannot_be_read(cli, monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.chdir(ROOT)
    assert cli("check", "specs/lenet5.yaml", "--set", value) == (2, "", f"cnnspec check: error: {message}\n")


def test_P5_set_values_with_a_hash_that_is_no_comment(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, _, err = cli("check", "specs/lenet5.yaml", "--set", "num_classes='3 # c'")
    assert (code, err.split(": error: ")[1]) == (
        1, "--set num_classes=3 # c: `num_classes` is a whole number (10 in the spec), got a string\n")
    code, _, err = cli("check", "specs/lenet5.yaml", "--set", "num_classes=net#3")
    assert (code, err.split(": error: ")[1]) == (
        1, "--set num_classes=net#3: `num_classes` is a whole number (10 in the spec), got a string\n")


class Recorded(console.Progress):
    """A progress display that remembers how the commands drove it (and draws nothing)."""

    made: ClassVar[list[Recorded]] = []

    def __init__(self, label: str, total: int | None = None, **kwargs: object) -> None:
        super().__init__(label, total, stream=io.StringIO())
        self.steps: list[tuple[int, str]] = []
        Recorded.made.append(self)

    def update(self, done: int, label: str | None = None) -> None:
        self.steps.append((done, label or ""))
        super().update(done, label)


@pytest.mark.slow
def test_builds_and_bench_drive_a_progress_display(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(console, "Progress", Recorded)
    Recorded.made = []
    target = tmp_path / "lenet5.onnx"
    assert cli("build", "specs/lenet5.yaml", "--target", "onnx", "-o", str(target), "-q") == (0, "", "")
    assert [(p.label, p.total, p.steps) for p in Recorded.made] == [(f"building {target}", None, [])]
    Recorded.made = []
    code, out, _ = cli("bench", "specs/lenet5.yaml", "--runs", "2", "--warmup", "1", "--provider", "cpu")
    assert (code, out.splitlines()[0]) == (0, "model:    lenet5 (specs/lenet5.yaml, random weights)")
    [bench] = Recorded.made
    assert (bench.total, bench.steps) == (3, [(1, "warming up"), (2, "timing"), (3, "timing")])
    assert bench._stop.is_set()  # closed at the end


LIBRARY = "blocks:\n  unit:\n    layers:\n      - conv: {out: 4, kernel: 3}\n      - relu\n"
WRAPPER = "use: [unit.yaml]\nblocks:\n  pair:\n    layers: [unit, unit]\n"


def test_with_importers_checks_the_specs_that_use_a_library(cli, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs" / "blocks").mkdir(parents=True)
    (tmp_path / "specs" / "other").mkdir()
    (tmp_path / "specs" / "blocks" / "unit.yaml").write_text(LIBRARY.replace("kernel: 3", "kernel: 9"))
    (tmp_path / "specs" / "blocks" / "pair.yaml").write_text(WRAPPER)
    (tmp_path / "specs" / "direct.yaml").write_text(
        "name: direct\ninput: [1, 8, 8]\nuse: [blocks/unit.yaml]\nlayers: [unit, flatten]\n")
    (tmp_path / "specs" / "through.yaml").write_text(
        "name: through\ninput: [1, 8, 8]\nuse: [blocks/pair.yaml]\nlayers: [pair, flatten]\n")
    (tmp_path / "specs" / "unrelated.yaml").write_text("name: u\ninput: [1, 8, 8]\nlayers: [relu]\n")
    (tmp_path / "specs" / "other" / "far.yaml").write_text("name: far\ninput: [1, 8, 8]\nlayers: [relu]\n")
    monkeypatch.chdir(tmp_path)
    refusal = "layer `0.0` (conv): kernel 9x9 is larger than its 8x8 input; the output would be empty"
    assert cli("check", "specs/blocks/unit.yaml") == (0, "specs/blocks/unit.yaml: ok (blocks)\n", "")
    assert cli("check", "specs/blocks/unit.yaml", "--with-importers") == (
        1, "specs/blocks/unit.yaml: ok (blocks)\nspecs/blocks/pair.yaml: ok (blocks)\n",
        (f"specs/blocks/unit.yaml:4:32: error: {refusal}\n"
         f"specs/blocks/unit.yaml:4:32: error: {refusal.replace('0.0', '0.0.0')}\n"))
    _, out, _ = cli("check", "specs/blocks/unit.yaml", "specs/direct.yaml", "--with-importers", "--format", "json")
    assert [r["file"] for r in json.loads(out)] == [
        "specs/blocks/unit.yaml", "specs/direct.yaml", "specs/blocks/pair.yaml", "specs/through.yaml"]
