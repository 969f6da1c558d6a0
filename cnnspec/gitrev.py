"""A spec as it was at a git revision, for ``cnnspec diff --git REV``.

Imports (``use:``) must stay inside the spec's directory, so that directory's YAML files at ``REV`` are
all a spec can need: they are listed with ``git ls-tree`` and read with one ``git cat-file --batch``
(not ``git archive``, which applies ``export-ignore`` attributes) into a temporary directory that mirrors
the repository layout. Symbolic links are not followed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cnnspec.errors import UsageError
from cnnspec.fsutil import write_atomic

SPEC_SUFFIXES = (".yaml", ".yml")


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
    top = Path(_git(["rev-parse", "--show-toplevel"], path.parent).decode().strip()).resolve()
    return top, path.relative_to(top).as_posix()


def checkout_spec_dir(rev: str, top: Path, rel: str, dest: Path) -> Path:
    """Write the YAML files of ``rel``'s directory at ``rev`` under ``dest``; returns the spec's copy."""
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], top)
    except UsageError:
        raise UsageError(f"unknown git revision `{rev}`") from None
    listing = _git(["ls-tree", "-r", "-z", "--full-name", rev, "--", f"{Path(rel).parent.as_posix()}/"], top)
    blobs: list[tuple[str, str]] = []
    for entry in filter(None, listing.split(b"\0")):
        meta, name = entry.decode().split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000" and name.endswith(SPEC_SUFFIXES):
            blobs.append((sha, name))
    if rel not in {name for _, name in blobs}:
        raise UsageError(f"{rel} does not exist at {rev}")
    contents = _git(["cat-file", "--batch"], top, "".join(f"{sha}\n" for sha, _ in blobs).encode())
    for (_, name), data in zip(blobs, _split_batch(contents), strict=True):
        write_atomic(dest / name, data)
    return dest / rel


def _split_batch(out: bytes) -> list[bytes]:
    """The contents in ``git cat-file --batch`` output: ``<sha> <type> <size>\\n<content>\\n`` each."""
    parts: list[bytes] = []
    at = 0
    while at < len(out):
        header_end = out.index(b"\n", at)
        size = int(out[at:header_end].split()[2])
        parts.append(out[header_end + 1:header_end + 1 + size])
        at = header_end + 1 + size + 1
    return parts
