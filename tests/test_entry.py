"""The ``cnnspec`` executable (``cli.entry``) against ``cli.main``: the process-wide tuning (collector frozen
after the imports, pydantic's plugins off, no interpreter teardown for the commands without torch) is the
executable's alone, and a process that skips the teardown still delivers all its output and its status."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.cli import COMMANDS, FAST_EXIT, main

ROOT = Path(__file__).parents[1]


def cnnspec(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    return subprocess.run([sys.executable, "-m", "cnnspec", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False, env=env)


def test_main_leaves_the_process_as_it_found_it(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    frozen = gc.get_freeze_count()
    assert main(["check", "--no-cache", "specs/lenet5.yaml"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert "PYDANTIC_DISABLE_PLUGINS" not in os.environ
    assert "specs/lenet5.yaml" in capsys.readouterr().out


def test_fast_exit_commands_import_no_backend() -> None:
    assert {"check", "summary"} <= FAST_EXIT and not {"build", "run", "bench", "lsp"} & FAST_EXIT


def test_every_line_and_the_status_arrive_without_the_teardown() -> None:
    done = cnnspec("check", "--no-cache", "--format", "json", "specs")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert len(records) == len(list((ROOT / "specs").rglob("*.yaml"))) and all(r["ok"] for r in records)
    summary = cnnspec("summary", "specs/resnet50.yaml")
    assert summary.returncode == 0 and "25,557,032" in summary.stdout


def test_errors_and_their_status_arrive_without_the_teardown() -> None:
    broken = (ROOT / "tests" / "broken" / "kernel_larger_than_input.yaml").read_text()
    done = cnnspec("check", "--no-cache", "-", stdin=broken)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("<stdin>:") and ": error: " in done.stderr
    usage = cnnspec("check", "no/such/file.yaml")
    assert usage.returncode == 2 and "no such file or directory: no/such/file.yaml" in usage.stderr


@pytest.mark.parametrize("args", [["check", "specs/lenet5.yaml"], ["summary", "specs/lenet5.yaml"], ["--version"]])
def test_only_the_command_named_is_loaded(args: list[str]) -> None:
    """Importing the other commands and building their parsers cost 12 ms of every start."""
    script = ("import sys\nfrom cnnspec.cli import COMMANDS, main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n"
              "    pass\nprint(sorted(m.rpartition('.')[2] for m in sys.modules if m.startswith('cnnspec.commands.')"
              " and m.rpartition('.')[2] in COMMANDS))")
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == repr([args[0]] if args[0] in COMMANDS else sorted(COMMANDS))  # --version: all, for --help
