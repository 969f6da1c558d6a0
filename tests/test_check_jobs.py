"""``check -j N``: files analysed by several processes give the same report, in the same order, as one
process; the default forks only where it pays (enough files per process, Linux)."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.commands import check

ROOT = Path(__file__).parents[1]


def test_how_many_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert [check._workers(None, n) for n in (0, 7, 8, 16, 31, 32, 100)] == [1, 1, 1, 2, 3, 4, 4]
    assert [check._workers(3, n) for n in (1, 2, 5)] == [1, 2, 3]
    monkeypatch.setattr("threading.active_count", lambda: 2)  # a thread in the process: no fork
    assert check._workers(4, 100) == 1
    monkeypatch.undo()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert check._workers(4, 100) == 1


def test_jobs_must_be_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["check", "-j", "0", "specs/lenet5.yaml"])
    assert stop.value.code == 2
    assert "argument -j/--jobs: expected a whole number of processes, 1 or more, got '0'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_processes_report_as_one_does(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", work)
    for broken in sorted((ROOT / "tests" / "broken").glob("*.yaml"))[:12]:
        shutil.copy(broken, work / broken.name)
    monkeypatch.chdir(tmp_path)
    reports = []
    for jobs in ("1", "3"):
        code = main(["check", "--no-cache", "-j", jobs, "--format", fmt, "specs"])
        reports.append((code, *capsys.readouterr()))
    assert reports[0] == reports[1]
    assert reports[0][0] == 1 and reports[0][1 if fmt != "text" else 2]


def test_each_file_is_loaded_and_parsed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """specs/ has 35 specs and 6 block libraries, which the specs import 17 times: 41 loads, not 58; a
    library is parsed twice, checked as a file and as an import (its messages name it differently)."""
    from cnnspec.frontend import read, syntax

    loaded: list[str] = []
    parsed: list[str] = []
    load_text, parser = read.load_text, syntax._Parser
    monkeypatch.setattr(read, "load_text", lambda text, file: loaded.append(file) or load_text(text, file))
    monkeypatch.setattr(syntax, "_Parser", lambda doc: parsed.append(doc.file) or parser(doc))
    monkeypatch.chdir(ROOT)
    files = check.spec_files(["specs"])
    results = check.check_files(files, {"overrides": None, "input_shape": None}, None, None, jobs=1)
    assert [r.errors for r in results] == [[]] * len(files)
    assert sorted(loaded) == sorted(str(f) for f in files)
    assert Counter(parsed) == {str(f): 2 if f.parent.name == "blocks" else 1 for f in files}


def test_a_file_that_changes_is_loaded_again(tmp_path: Path) -> None:
    from cnnspec.frontend.read import DocMemo
    from cnnspec.frontend.syntax import parse

    memo = DocMemo()
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [1, 8]\nlayers: [relu, {linear: {out: nope}}]\n")
    first = memo.load_file(str(spec), "net.yaml")
    assert memo.load_file(str(spec), "net.yaml") is first
    assert memo.load_file(str(spec), "other/net.yaml") is not first  # named otherwise in messages
    errors = parse(first)[1]
    errors.clear()  # what a caller does with its list does not reach the next caller
    assert [e.message for e in parse(first)[1]] == [e.message for e in parse(memo.load_file(str(spec), "net.yaml"))[1]]
    assert len(parse(first)[1]) == 1
    spec.write_text("name: net\ninput: [1, 8]\nlayers: [relu]\n")
    changed = memo.load_file(str(spec), "net.yaml")
    assert changed is not first and changed.data["layers"] == ["relu"]
