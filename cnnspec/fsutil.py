"""Files in and out. Every file cnnspec writes goes to a temporary file in the same directory and is renamed
into place, so an error, Ctrl-C, SIGTERM or SIGKILL mid-write leaves the previous file intact; every file it
reads is checked to be a regular file before it is opened, and read up to a limit.

Writing (:func:`write_atomic`):

* Only a regular file (or nothing) is replaced: a directory, device node, FIFO or socket at the output path
  is refused with a :class:`~cnnspec.errors.PathError` (as root, ``os.replace`` would swap ``/dev/null`` for a
  regular file). A symbolic link is replaced by the new file, never written through.
* A rebuilt file keeps the previous file's permission bits (set-user/group-ID dropped) and, where the
  process may, its owner and group; a new file gets ``0666 & ~umask``.
* The temporary file is ``.<name>.<pid>.<random>.tmp``, ``<name>`` shortened so that the temporary name is
  no longer than the file system allows (a 240-character output name still works). The writer holds an
  exclusive ``flock`` on it until the rename. An exception, Ctrl-C, SIGTERM or SIGHUP removes it (the
  signals are then re-raised, so the exit status is still the signal's). SIGKILL cannot: the next write of
  the same file removes temporary files that no process holds locked and whose pid is not running here.
  A file locked by a writer in another PID namespace, container or host sharing the directory is kept, as
  is every file whose pid is a running process here; where the file system has no ``flock``, a file is
  removed only once it is an hour old.

Reading (:func:`read_regular`): a FIFO would block and ``/dev/zero`` never ends, so anything but a regular
file is refused before it is opened, and at most ``limit`` bytes are read."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.errors import PathError

if TYPE_CHECKING:
    from mmap import mmap

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temp files are judged by age
    fcntl = None  # type: ignore[assignment]

CHUNK = 16 * 2**20  # bytes per write(2): a signal is handled between chunks
STALE_AFTER = 3600.0  # seconds; only where flock is unavailable
_TEMP_TAIL = len(".4294967295.abcdefgh.tmp")  # pid and mkstemp's eight random characters
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words (for messages)."""
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "not a regular file"


# ---------------------------------------------------------------------------------------------- reading

def read_regular(path: str | os.PathLike[str], limit: int) -> tuple[bytes, int]:
    """At most ``limit`` bytes of the regular file ``path``, and its size. Anything else is refused before
    it is opened (a FIFO would block, ``/dev/zero`` never ends); ``OSError`` as the system says."""
    _refuse_unless_regular(path, os.stat(path).st_mode)
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        _refuse_unless_regular(path, info.st_mode)  # replaced between the two looks
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks), info.st_size


def _refuse_unless_regular(path: str | os.PathLike[str], mode: int) -> None:
    if not stat.S_ISREG(mode):
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise PathError(path, f"it is {file_kind(mode)}, not a regular file", code)


# ---------------------------------------------------------------------------------------------- writing

def check_output(path: str | os.PathLike[str], example: str | None = None) -> os.stat_result | None:
    """Refuse an output path cnnspec must not write; returns the existing file's status (None if new).

    Refused: a directory (``example`` is a file name to suggest inside it), a device node, FIFO or socket
    (followed through symbolic links), a path below a regular file (``-o file/x``), a name longer than the
    file system allows."""
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise PathError(target, f"cannot create it: {_blocking_ancestor(target)} is a file, not a directory",
                        errno.ENOTDIR) from None
    except OSError:
        info = None  # e.g. a dangling symlink loop: the write itself reports it
    if info is not None and stat.S_ISDIR(info.st_mode):
        hint = f" (for example {Path(target, example).as_posix()})" if example else ""
        raise PathError(target, f"it is a directory; give a file name{hint}", errno.EISDIR)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise PathError(target, f"it is {file_kind(info.st_mode)}, not a regular file; cnnspec replaces only "
                        "regular files", errno.EINVAL)
    limit = _name_max(target.parent)
    size = len(os.fsencode(target.name))
    if size > limit:
        raise PathError(target, f"the file name is {size} bytes long; this file system allows {limit}",
                        errno.ENAMETOOLONG)
    return info


def _blocking_ancestor(target: Path) -> str:
    for parent in target.parents:
        if os.path.lexists(parent):
            return str(parent)
    return str(target.parent)


def _name_max(directory: Path) -> int:
    probe = next((p for p in (directory, *directory.parents) if p.is_dir()), Path("."))
    try:
        return os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def write_atomic(path: str | os.PathLike[str], data: bytes | bytearray | mmap | str) -> Path:
    """Write ``data`` to ``path`` atomically (same-directory temp file, fsync, ``os.replace``); see the
    module's docstring. Raises :class:`~cnnspec.errors.PathError` (an ``OSError`` naming ``path``)."""
    target = Path(path)
    previous = check_output(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(target, f"cannot create its directory: {exc.strerror}", exc.errno) from None
    remove_stale_temps(target)
    with _signals_remove_temps():
        try:
            fd, tmp = _locked_temp(target)
        except OSError as exc:
            where = target.parent.as_posix() if str(target.parent) != "." else "the current directory"
            raise PathError(target, f"cannot create a file in {where}: {exc.strerror}", exc.errno) from None
        try:
            _copy_owner_and_mode(fd, previous)
            view = memoryview(payload)
            for start in range(0, len(view), CHUNK):
                _write_all(fd, view[start:start + CHUNK])
            os.fsync(fd)
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, PathError):
                kept = "the previous file is unchanged" if previous else "nothing was written"
                raise PathError(target, f"cannot write it: {exc.strerror or exc} ({kept})", exc.errno) from None
            raise
        finally:
            os.close(fd)
    return target


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _copy_owner_and_mode(fd: int, previous: os.stat_result | None) -> None:
    if previous is None:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; new outputs get the usual permissions
        return
    if (previous.st_uid, previous.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give a file away
            os.fchown(fd, previous.st_uid, previous.st_gid)
    os.fchmod(fd, stat.S_IMODE(previous.st_mode) & 0o1777)  # no set-user/group-ID on rewritten content


def temp_prefix(target: Path) -> str:
    """``.<name>.``, ``<name>`` cut so the whole temporary name fits the file system's name limit."""
    room = _name_max(target.parent) - _TEMP_TAIL - 2
    name = os.fsencode(target.name)
    if len(name) > room:
        name = name[:max(room, 1)]
    return f".{os.fsdecode(name)}."


def _locked_temp(target: Path) -> tuple[int, str]:
    """A new temporary file for ``target``, locked. A cleaner may take and delete a file between its creation
    and the lock: the file is then made again."""
    import tempfile  # only writers need it; `cnnspec check` reads through this module too

    prefix = f"{temp_prefix(target)}{os.getpid()}."
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
        if not _lock(fd, wait=True) or _is_open_file(fd, tmp):
            return fd, tmp
        os.close(fd)
    raise PathError(target, "cannot keep a temporary file beside it: something deletes them", errno.EAGAIN)


def _lock(fd: int, wait: bool) -> bool | None:
    """Take an exclusive flock: True taken, False held by someone else, None where flock is unsupported."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _is_open_file(fd: int, path: str) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove ``target``'s temporary files left by killed writers; returns them. A file is kept while its
    pid is running here or a process (in any PID namespace) holds its lock."""
    removed = []
    prefix = temp_prefix(target)
    for temp in target.parent.glob(f"{_glob_escape(prefix)}*.tmp"):
        pid = temp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)) and _remove_if_abandoned(temp):
            removed.append(temp)
    return removed


def _remove_if_abandoned(temp: Path) -> bool:
    try:
        fd = os.open(temp, _READ_FLAGS | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        taken = _lock(fd, wait=False)
        if taken is False:
            return False  # a live writer, perhaps in another container
        if taken is None and time.time() - os.fstat(fd).st_mtime < STALE_AFTER:
            return False  # no flock here: only age tells
        if not _is_open_file(fd, str(temp)):
            return False
        temp.unlink(missing_ok=True)  # while holding the lock, so a writer that just made it notices
        return True
    finally:
        os.close(fd)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class _Terminated(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_remove_temps() -> Iterator[None]:
    """While a temporary file exists, SIGTERM and SIGHUP (whose default is to end the process at once)
    raise instead, so the temporary file is removed; the signal is then re-raised with its default action."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for signum in _SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            saved[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    except _Terminated as exc:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        saved.clear()
        os.kill(os.getpid(), exc.signum)  # the default action: the process ends with the signal's status
        raise SystemExit(128 + exc.signum) from None
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
