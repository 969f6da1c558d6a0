"""The catalogue of broken specs (``tests/broken``): every one gives exactly one error line, exit code 1,
and no traceback.

Each file says what it expects on its first line, ``# expect: LINE:COL: error: MESSAGE`` (the file's own
path is prepended, as the CLI prints it when run from the repository root), or the full line when the error
is located in another file (``# expect: tests/broken/import_cycle/b.yaml:2:7: error: ...``). An optional
second line ``# args: --set name=value`` gives extra command-line arguments.
"""

from __future__ import annotations

import gc
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file
from cnnspec.frontend import read as yaml_loader

ROOT = Path(__file__).parents[1]
BROKEN = ROOT / "tests" / "broken"
CASES = sorted(p.relative_to(ROOT).as_posix() for p in BROKEN.rglob("*.yaml"))
# run as real processes too: the loader's, the resolver's and the analyser's errors, and a --set error
SUBPROCESS_CASES = ("tests/broken/yaml_syntax_error.yaml", "tests/broken/undefined_param.yaml",
                    "tests/broken/residual_channel_mismatch.yaml", "tests/broken/set_unknown_param.yaml")


def expectation(rel: str) -> tuple[str, list[str]]:
    """The expected error lines (joined by newlines) and the extra arguments written at the top of ``rel``:
    ``# expect: ...``, then one ``# also: ...`` line per further error, then ``# args: ...``."""
    head = [line.decode(errors="replace") for line in (ROOT / rel).read_bytes().split(b"\n")[:6]]
    assert head[0].startswith("# expect: "), f"{rel} must start with `# expect: LINE:COL: error: ...`"
    lines = [head[0].removeprefix("# expect: ")]
    lines += [line.removeprefix("# also: ") for line in head[1:] if line.startswith("# also: ")]
    lines = [f"{rel}:{line}" if re.match(r"\d+:\d+: error: ", line) else line for line in lines]
    args = next((shlex.split(line.removeprefix("# args:")) for line in head[1:] if line.startswith("# args:")), [])
    return "\n".join(lines), args


def test_catalogue_is_large_and_every_file_has_an_expectation() -> None:
    assert len(CASES) >= 40
    for rel in CASES:
        expected, _ = expectation(rel)
        for line in expected.split("\n"):
            assert re.fullmatch(r"[\w/.-]+\.yaml:\d+:\d+: error: .+", line), rel


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize("rel", CASES)
def test_broken_spec_in_process(rel: str, parser: str, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with libyaml's parser and with PyYAML's pure-Python one (a machine without libyaml)."""
    expected, args = expectation(rel)
    monkeypatch.chdir(ROOT)
    if parser == "python":
        monkeypatch.setattr(yaml_loader, "_CSafeLoader", None)
    code = main(["check", rel, *args])
    out, err = capsys.readouterr()
    assert (code, out, err) == (1, "", expected + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("rel", SUBPROCESS_CASES)
def test_broken_spec_as_a_process(rel: str) -> None:
    expected, args = expectation(rel)
    proc = subprocess.run([sys.executable, "-m", "cnnspec", "check", rel, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", expected + "\n")


@pytest.mark.slow
def test_directory_of_broken_specs_reports_every_file_and_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "cnnspec", "check", "tests/broken"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    # every file without extra arguments fails with its own line; the --set cases pass without --set
    expected = [line for rel in CASES if not expectation(rel)[1] for line in expectation(rel)[0].split("\n")]
    assert lines == expected
    assert proc.stdout.splitlines() == [f"{rel}: ok (80 params, 48,672 MACs)" for rel in CASES
                                        if expectation(rel)[1]]


@pytest.mark.parametrize("enabled", [True, False])
def test_analysis_restores_the_garbage_collector(enabled: bool) -> None:
    """analyse_file pauses the cyclic collector while it runs and leaves it as it found it, errors included."""
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        analyse_file(ROOT / "specs" / "lenet5.yaml")
        assert gc.isenabled() is enabled
        with pytest.raises(SpecError):
            analyse_file(BROKEN / "wrong_type.yaml")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
