"""``cnnspec diff --git REV`` against hostile or damaged repositories (attack findings S1, C7, P11, P2): tree
entries are confined to the temporary directory, odd names and missing objects are one line, and any
revision git accepts works."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from cnnspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
LENET = (ROOT / "specs" / "lenet5.yaml").read_text()


def _git(repo: Path, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo,
                          input=data, capture_output=True, check=True)
    return done.stdout.decode().strip()


def _object(repo: Path, kind: str, data: bytes) -> str:
    return _git(repo, "hash-object", "-t", kind, "--literally", "-w", "--stdin", data=data)


def _tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree object written as given: git's own tools would refuse names such as `..`."""
    body = b"".join(f"{mode} ".encode() + name + b"\0" + bytes.fromhex(sha)
                    for mode, name, sha in sorted(entries, key=lambda e: e[1]))
    return _object(repo, "tree", body)


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "lenet5.yaml").write_text(LENET)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "first lenet")
    scratch = tmp_path / "scratch"  # the diff's temporary directory goes here, so `..` would land in tmp_path
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(root)
    return root


def test_S1_diff_git_refuses_dotdot_tree_entries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lenet = _git(repo, "rev-parse", "HEAD:specs/lenet5.yaml")
    payload = _object(repo, "blob", b"name: pwned\n")
    attack = _tree(repo, [("40000", b"attack", _tree(repo, [("100644", b"pwned.yaml", payload)]))])
    up = _tree(repo, [("40000", b"..", attack)])
    specs = _tree(repo, [("40000", b"..", up), ("100644", b"lenet5.yaml", lenet)])  # specs/../../attack/...
    commit = _git(repo, "commit-tree", _tree(repo, [("40000", b"specs", specs)]), "-p", "HEAD", "-m", "evil")
    _git(repo, "update-ref", "refs/heads/evil", commit)
    assert main(["diff", "--git", "evil", "specs/lenet5.yaml"]) == 1
    assert capsys.readouterr().err == (
        "evil:specs/../../attack/pwned.yaml:1:1: error: the tree at `evil` lists this path, with a `..` component, "
        "which git itself would not check out; nothing was read from that revision (a crafted commit?)\n")
    written = sorted(p.relative_to(repo.parent).as_posix() for p in repo.parent.rglob("pwned.yaml"))
    assert written == [] and list((repo.parent / "scratch").iterdir()) == []


def _odd_commit(repo: Path, name: bytes) -> str:
    lenet = _git(repo, "rev-parse", "HEAD:specs/lenet5.yaml")
    inner = _tree(repo, [("100644", b"x.yaml", lenet)])
    specs = _tree(repo, [("40000", name, inner), ("100644", b"lenet5.yaml", lenet)])
    return _git(repo, "commit-tree", _tree(repo, [("40000", b"specs", specs)]), "-m", "odd")


def test_S1_a_dot_tree_component_is_refused_and_an_empty_one_by_git(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit = _odd_commit(repo, b".")
    assert main(["diff", "--git", commit, "specs/lenet5.yaml"]) == 1
    assert capsys.readouterr().err == (
        f"{commit}:specs/./x.yaml:1:1: error: the tree at `{commit}` lists this path, with a `.` component, which "
        "git itself would not check out; nothing was read from that revision (a crafted commit?)\n")
    assert main(["diff", "--git", _odd_commit(repo, b""), "specs/lenet5.yaml"]) == 2
    assert capsys.readouterr().err == "cnnspec diff: error: git ls-tree: fatal: empty filename in tree entry\n"
    assert list((repo.parent / "scratch").iterdir()) == []


def test_C7_non_utf8_names_in_the_tree_are_read_as_bytes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "specs" / os.fsdecode(b"caf\xe9.yaml")).write_text("blocks: {b: {layers: [relu]}}\n")
    (repo / "specs" / os.fsdecode(b"notes\xff.txt")).write_text("not a spec\n")
    (repo / "specs" / "lenet5.yaml").write_text(LENET.replace("- sigmoid", "- relu", 1))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "names")
    (repo / "specs" / "lenet5.yaml").write_text(LENET)
    assert main(["diff", "--git", "HEAD", "specs/lenet5.yaml", "--format", "json"]) == 0
    assert '"path": "1"' in capsys.readouterr().out  # the sigmoid that was a relu


def test_C7_a_missing_blob_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "specs" / "other.yaml").write_text("blocks: {b: {layers: [relu]}}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "other")
    sha = _git(repo, "rev-parse", "HEAD:specs/other.yaml")
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()  # a damaged clone
    assert main(["diff", "--git", "HEAD", "specs/lenet5.yaml"]) == 2
    assert capsys.readouterr().err == (
        f"cnnspec diff: error: HEAD:specs/other.yaml: git has no blob {sha} for it (a damaged or partial clone? "
        "run `git fsck`, or fetch the revision again)\n")


def test_P11_a_message_search_revision_works(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "specs" / "lenet5.yaml").write_text(LENET.replace("out: 120", "out: 100"))
    _git(repo, "commit", "-qam", "narrower")
    assert main(["diff", "--git", ":/first lenet", "specs/lenet5.yaml", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"file": ":/first lenet:specs/lenet5.yaml"' in out and '"params": 61706' in out
    for rev in ("HEAD^{tree}", "-p", "--output=/tmp/x", ":/no such message"):
        assert main(["diff", f"--git={rev}", "specs/lenet5.yaml"]) == 2
        assert capsys.readouterr().err == f"cnnspec diff: error: unknown git revision `{rev}`\n"


def test_P2_a_revision_with_a_line_break_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "--git", "HE\nAD\u202e", "specs/lenet5.yaml"]) == 2
    assert capsys.readouterr().err == "cnnspec diff: error: unknown git revision `HE\\nAD\\u202e`\n"
