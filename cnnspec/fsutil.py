"""Atomic file output: every file cnnspec writes goes to a temporary file in the same directory and is
renamed into place, so an error, Ctrl-C or SIGKILL mid-write leaves the previous file intact.

The temporary file is ``.<name>.<pid>.<random>.tmp``. An error or Ctrl-C removes it; SIGKILL cannot, so the
next write of the same file removes the temporary files of writers that are no longer running (their pid
is gone), and leaves alone those of a build still running beside it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (same-directory temp file, fsync, ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove ``target``'s temporary files left by writers that were killed; returns them."""
    removed = []
    prefix = f".{target.name}."
    for temp in target.parent.glob(f"{_glob_escape(prefix)}*.tmp"):
        pid = temp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
