"""A spec as it was at a git revision, for ``cnnspec diff --git REV``.

Imports (``use:``) must stay inside the spec's directory, so that directory's YAML files at ``REV`` are
all a spec can need: they are listed with ``git ls-tree`` and read with one ``git cat-file --batch``
(not ``git archive``, which applies ``export-ignore`` attributes) into a temporary directory that mirrors
the repository layout. Symbolic links and submodules are not followed.

Tree entries come from whoever made the commit, and git's own checks (``fsck``) are off by default when
fetching, so a crafted tree may list ``specs/../../x.yaml``. Every path is checked before anything is
written: no empty, ``.`` or ``..`` component, not absolute, and inside the temporary directory once
resolved; a path that fails refuses the whole revision. Names need not be UTF-8 (they are file-system
bytes, as git stores them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cnnspec.errors import SourcePos, SpecError, UsageError
from cnnspec.fsutil import write_atomic

SPEC_SUFFIXES = (b".yaml", b".yml")


def _git(args: list[str], cwd: Path, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise UsageError("--git needs the `git` command") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"git {args[0]}: {message[0] if message else f'exit status {done.returncode}'}")
    return done.stdout


def repo_path(spec: str) -> tuple[Path, str]:
    """The repository root holding ``spec`` and the spec's path inside it (``/``-separated)."""
    path = Path(spec).resolve()
    if not path.parent.is_dir():
        raise UsageError(f"no such directory: {Path(spec).parent}")
    top = Path(os.fsdecode(_git(["rev-parse", "--show-toplevel"], path.parent).rstrip(b"\n"))).resolve()
    return top, path.relative_to(top).as_posix()


def commit_of(rev: str, top: Path) -> str:
    """The commit ``rev`` names (any revision git accepts: ``HEAD~2``, a tag, ``:/message``), as a hash."""
    if not rev or rev.startswith("-") or "\0" in rev:  # never an option to git
        raise UsageError(f"unknown git revision `{rev}`")
    try:
        named = _git(["rev-parse", "--verify", "--quiet", rev], top).decode("ascii").strip()
        return _git(["rev-parse", "--verify", "--quiet", f"{named}^{{commit}}"], top).decode("ascii").strip()
    except UsageError:
        raise UsageError(f"unknown git revision `{rev}`") from None


def checkout_spec_dir(rev: str, top: Path, rel: str, dest: Path) -> Path:
    """Write the YAML files of ``rel``'s directory at ``rev`` under ``dest``; returns the spec's copy."""
    commit = commit_of(rev, top)
    listing = _git(["ls-tree", "-r", "-z", "--full-name", commit, "--", f"{Path(rel).parent.as_posix()}/"], top)
    blobs = _yaml_blobs(listing)
    for _, name in blobs:
        _confine(name, dest, rev)
    if rel not in {name for _, name in blobs}:
        raise UsageError(f"{rel} does not exist at {rev}")
    contents = _git(["cat-file", "--batch"], top, "".join(f"{sha}\n" for sha, _ in blobs).encode())
    for (_, name), data in zip(blobs, _split_batch(contents, blobs, rev), strict=True):
        write_atomic(dest / name, data)
    return dest / rel


def _yaml_blobs(listing: bytes) -> list[tuple[str, str]]:
    """``(sha, path)`` of the regular files ending in ``.yaml``/``.yml`` in ``git ls-tree -z`` output."""
    blobs = []
    for entry in filter(None, listing.split(b"\0")):
        meta, _, name = entry.partition(b"\t")
        mode, kind, sha = meta.decode("ascii").split()
        if kind == "blob" and mode != "120000" and name.endswith(SPEC_SUFFIXES):
            blobs.append((sha, os.fsdecode(name)))
    return blobs


def _confine(name: str, dest: Path, rev: str) -> None:
    """Refuse a tree path that would leave ``dest`` (a crafted commit)."""
    parts = name.split("/")
    bad = next((p for p in parts if p in ("", ".", "..")), None)
    where = SourcePos(f"{rev}:{name}", 1, 1)
    if bad is not None or name.startswith("/"):
        what = f"a `{bad}` component" if bad else "an absolute path"
        raise SpecError(f"the tree at `{rev}` lists this path, with {what}, which git itself would not check "
                        "out; nothing was read from that revision (a crafted commit?)", where)
    real = Path(os.path.realpath(dest / name))
    if Path(os.path.realpath(dest)) not in real.parents:
        raise SpecError(f"the tree at `{rev}` lists this path, which leaves the directory it is read into; "
                        "nothing was read from that revision", where)


def _split_batch(out: bytes, blobs: list[tuple[str, str]], rev: str) -> list[bytes]:
    """The contents in ``git cat-file --batch`` output: ``<sha> <type> <size>\\n<content>\\n`` each, or
    ``<sha> missing\\n`` for an object the repository does not have."""
    parts: list[bytes] = []
    at = 0
    for sha, name in blobs:
        header_end = out.find(b"\n", at)
        fields = out[at:header_end].split() if header_end >= 0 else []
        if len(fields) != 3 or not fields[2].isdigit():
            raise UsageError(f"{rev}:{name}: git has no blob {sha} for it (a damaged or partial clone? "
                             "run `git fsck`, or fetch the revision again)")
        size = int(fields[2])
        parts.append(out[header_end + 1:header_end + 1 + size])
        at = header_end + 1 + size + 1
    return parts
