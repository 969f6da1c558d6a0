"""Standard output and error when they misbehave: a reader that went away (``cnnspec check specs/ | head
-1``), a full device (``> /dev/full``), a strict encoding that cannot print a file name's undecodable bytes.
Each ends in one line on stderr and the command's own exit status, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from cnnspec.errors import os_error_line

_WRITE_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT}


def never_unencodable() -> None:
    """Make stdout and stderr escape what their encoding cannot write (``\\udc80``), instead of raising
    ``UnicodeEncodeError``. Streams that already escape (``surrogateescape``, the C.UTF-8 default) are kept."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="backslashreplace")


def discard_stdout() -> None:
    """Point file descriptor 1 at ``/dev/null``: what is still buffered (and Python's flush at exit) goes
    nowhere, instead of raising again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def os_error(command: str, exc: OSError) -> int:
    """Print ``cnnspec COMMAND: error: PATH: reason`` for an ``OSError`` and return exit status 1. The files
    cnnspec reads and writes carry their names; a write error without one is standard output's (``print``
    to a full device), which is then discarded so that Python's flush at exit does not fail again."""
    line = os_error_line(exc)
    if exc.filename is None and exc.errno in _WRITE_ERRORS:
        line = f"standard output: {line}"
        discard_stdout()
    print(f"cnnspec {command}: error: {line}", file=sys.stderr)
    return 1


class _DropWhenClosed:
    """``sys.stdout`` that drops its text once the reader has gone, so a command goes on to its end (and
    its exit status) while its errors still reach stderr."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._went()

    def _went(self) -> None:
        self.gone = True
        discard_stdout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Within: writes to stdout after its reader closed the pipe are dropped instead of raising."""
    real = sys.stdout
    proxy = _DropWhenClosed(real)
    sys.stdout = proxy  # type: ignore[assignment]
    try:
        yield
        proxy.flush()
    finally:
        sys.stdout = real
