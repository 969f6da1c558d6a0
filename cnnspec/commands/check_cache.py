"""``check``'s result cache: a file that passed stays passed until it, a file it imports, its options or
cnnspec itself changes, as ruff and mypy remember theirs.

Only passing results are kept (a file's kind, params and MACs): a file with errors is analysed on every
run, so its messages always come from the code that runs. An entry lists every file the analysis read
(the spec and each ``use:`` import: the path it was reached by, where that path led after symbolic links,
and the SHA-256 of the bytes read); a lookup resolves each path and reads each file again and compares,
so nothing is trusted from modification times and a retargeted link is seen. Entries are keyed by the
spec's path (as given and real), ``--set`` and ``--input``, and live in a directory per *fingerprint*:
cnnspec's version, Python's, the size and modification time of every module of the installed package
(an edited checkout starts afresh) and of PyYAML's ``__init__`` (so does an upgrade); the directories of other
fingerprints are removed when a new one is made.

Where: ``$CNNSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnspec``, else ``~/.cache/cnnspec``; off with
``--no-cache`` or ``CNNSPEC_NO_CACHE=1``. A cache that cannot be read or written is skipped silently: it
never changes a result or an exit status. A hit needs neither the op registry nor the settings models, which
are most of a cold start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec._version import __version__

if TYPE_CHECKING:
    from cnnspec.frontend.read import Doc, DocMemo

VERSION = 1  # of the entry format
PACKAGE = Path(__file__).resolve().parent.parent  # the installed cnnspec
LIBRARIES = ("yaml",)  # what else decides whether a spec passes
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Passed:
    """What ``check`` reports for a file that passed."""

    kind: str  # "spec" or "blocks"
    params: int | None
    macs: int | None


@dataclass
class Recorder:
    """Every file an analysis reads: the absolute path it was reached by (the front end's display name,
    relative to the working directory) -> (the real path read, the SHA-256 of its bytes). Pass :meth:`load`
    as the front end's ``read`` so that what is hashed is exactly what was analysed; files are loaded
    through ``memo``."""

    memo: DocMemo
    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def load(self, path: str, display: str) -> Doc:
        from cnnspec.frontend.read import read_bytes

        raw = read_bytes(path, display)
        self.hashes[os.path.abspath(display)] = (os.path.realpath(path), hashlib.sha256(raw).hexdigest())
        return self.memo.load(raw, display)


def cache_root(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The cache's directory, or None when caching is off or there is no home to keep it in."""
    if environ.get("CNNSPEC_NO_CACHE", "") not in ("", "0"):
        return None
    if environ.get("CNNSPEC_CACHE_DIR"):
        return Path(environ["CNNSPEC_CACHE_DIR"])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "cnnspec"
    home = environ.get("HOME")
    return Path(home) / ".cache" / "cnnspec" if home else None


def fingerprint(package: Path = PACKAGE) -> str:
    """A digest of the code that computes results: versions, each module's path, size and mtime, and where
    the libraries the front end validates with are installed, with the size and mtime of their
    ``__init__`` (an upgrade rewrites it; asking for their versions would import them)."""
    digest = hashlib.sha256(f"{VERSION} {__version__} {sys.version}".encode())
    for library in LIBRARIES:
        found = importlib.util.find_spec(library)
        origin = found.origin if found is not None else None
        info = os.stat(origin) if origin else None
        digest.update(f"{library} {origin} {info and info.st_size} {info and info.st_mtime_ns}\n".encode())
    for directory, subdirectories, files in sorted(os.walk(package)):
        subdirectories.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            info = os.stat(os.path.join(directory, name))
            digest.update(f"{os.path.relpath(directory, package)}/{name} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class CheckCache:
    """Passing results under :func:`cache_root`/``check``/:func:`fingerprint`."""

    def __init__(self, root: Path, options: Mapping[str, Any]) -> None:
        self.directory = root / "check" / fingerprint()
        self.options = json.dumps(options, sort_keys=True, default=repr)

    def _entry(self, spec: Path) -> Path:
        key = json.dumps([os.path.abspath(spec), os.path.realpath(spec), self.options])
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def lookup(self, spec: Path) -> Passed | None:
        """The remembered result of ``spec`` when every file its analysis read is unchanged."""
        try:
            entry = json.loads(self._entry(spec).read_bytes())
            files = entry["files"]
            if entry.get("version") != VERSION or not files or not all(
                    os.path.realpath(reached) == real and _sha256(real) == digest
                    for reached, (real, digest) in files.items()):
                return None
            return Passed(entry["kind"], entry["params"], entry["macs"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # absent, unreadable, or not ours
            return None

    def store(self, spec: Path, hashes: Mapping[str, tuple[str, str]], passed: Passed) -> None:
        """Remember that ``spec`` passed, having read the files in ``hashes``; silent when it cannot."""
        from cnnspec.fsutil import write_atomic

        entry = {"version": VERSION, "files": dict(hashes), "kind": passed.kind, "params": passed.params,
                 "macs": passed.macs}
        try:
            if not self.directory.is_dir():
                self._make_directory()
            write_atomic(self._entry(spec), json.dumps(entry, sort_keys=True))
        except OSError:  # PathError too: the cache is read-only, full, or not a directory
            pass

    def _make_directory(self) -> None:
        """This fingerprint's directory (and those above it, private to the user); the first process to make
        it (``check -j`` runs several) removes the entries of other fingerprints."""
        for directory in (self.directory.parent.parent, self.directory.parent):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=0o700)
        except FileExistsError:
            return
        self._remove_other_fingerprints()

    def _remove_other_fingerprints(self) -> None:
        for other in self.directory.parent.iterdir():
            if other != self.directory and _FINGERPRINT.fullmatch(other.name) and not other.is_symlink():
                shutil.rmtree(other, ignore_errors=True)


def _sha256(path: str) -> str | None:
    from cnnspec.frontend.read import MAX_BYTES
    from cnnspec.fsutil import read_regular

    try:
        raw, _ = read_regular(path, MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    return hashlib.sha256(raw).hexdigest()
