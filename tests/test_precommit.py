"""The pre-commit hooks of this checkout (``.pre-commit-hooks.yaml``), run by pre-commit itself with
``try-repo`` on temporary git repositories: one good and one bad spec, a generated file that goes stale, a
block library whose change breaks the spec that imports it, and a repository without generated/manifest.
pre-commit installs cnnspec from this checkout into its own virtualenv (pip, from PyPI: needs the
network; about a minute the first time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GOOD = "name: good\ninput: [1, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu\n"
BAD = "name: bad\ninput: [1, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 9}\n"
MANIFEST = "specs/good.yaml --target torch -o generated/good.py\n"
LIBRARY = "blocks:\n  unit:\n    layers:\n      - conv: {out: 4, kernel: 3}\n      - relu\n"
USES = "name: net\ninput: [1, 8, 8]\nuse: [blocks/unit.yaml]\nlayers:\n  - unit\n  - flatten\n"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=540)


def _commit(repo: Path, env: dict[str, str]) -> None:
    for args in (["git", "add", "-A"], ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit",
                                        "-qm", "specs"]):
        assert _run(args, repo, env).returncode == 0


def _env(tmp_path: Path) -> dict[str, str]:
    """pre-commit's cache in the test's directory; cnnspec only from the hooks' own environment."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    return env


def _try_repo(*args: str) -> list[str]:
    return [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), *args, "--color", "never"]


@pytest.mark.slow
def test_hooks_pass_and_fail_as_expected(tmp_path: Path) -> None:
    assert shutil.which("git")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / "good.yaml").write_text(GOOD)
    (repo / "specs" / "bad.yaml").write_text(BAD)
    (repo / "generated").mkdir()
    (repo / "generated" / "manifest").write_text(MANIFEST)
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    assert _run([sys.executable, "-m", "cnnspec", "build"], repo, env).returncode == 0
    (repo / "generated" / "good.py").write_text((repo / "generated" / "good.py").read_text() + "# edited\n")
    _commit(repo, env)
    env.pop("PYTHONPATH")  # from here on, only the hooks' own environment provides cnnspec
    try_repo = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files", "--color", "never"]

    failing = _run(try_repo, repo, env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    direct = _run([sys.executable, "-m", "cnnspec", "check", "specs/bad.yaml"], repo, {**env, "PYTHONPATH": str(ROOT)})
    assert direct.stderr.startswith("specs/bad.yaml:4:28: error: layer 0 (conv): kernel 9x9")
    assert direct.stderr in failing.stdout  # the hook reports exactly what `cnnspec check` says
    assert "specs/good.yaml: ok" not in failing.stdout  # the check hook runs with --quiet: errors only
    assert "generated/good.py: stale: differs from what specs/good.yaml generates now" in failing.stdout
    assert failing.stdout.count("- exit code: 1") == 2

    (repo / "specs" / "bad.yaml").unlink()
    assert _run([sys.executable, "-m", "cnnspec", "build"], repo, {**env, "PYTHONPATH": str(ROOT)}).returncode == 0
    _commit(repo, env)
    passing = _run(try_repo, repo, env)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.stdout.count("Passed") == 2


@pytest.mark.slow
def test_a_changed_block_library_rechecks_the_specs_that_import_it(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = tmp_path / "repo"
    (repo / "specs" / "blocks").mkdir(parents=True)
    (repo / "specs" / "blocks" / "unit.yaml").write_text(LIBRARY)
    (repo / "specs" / "net.yaml").write_text(USES)
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    _commit(repo, env)
    (repo / "specs" / "blocks" / "unit.yaml").write_text(LIBRARY.replace("kernel: 3", "kernel: 9"))
    changed = _run(_try_repo("cnnspec-check", "--files", "specs/blocks/unit.yaml"), repo, env)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert ("specs/blocks/unit.yaml:4:32: error: layer `0.0` (conv): kernel 9x9 is larger than its 8x8 input; the output "
            "would be empty") in changed.stdout
    (repo / "specs" / "blocks" / "unit.yaml").write_text(LIBRARY.replace("kernel: 3", "kernel: 5"))
    assert _run(_try_repo("cnnspec-check", "--files", "specs/blocks/unit.yaml"), repo, env).returncode == 0


@pytest.mark.slow
def test_generated_hook_passes_with_a_note_without_a_manifest(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / "good.yaml").write_text(GOOD)
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    _commit(repo, env)
    done = _run(_try_repo("cnnspec-generated", "--all-files", "--verbose"), repo, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "note: no generated/manifest here, so no generated files to check" in done.stdout
