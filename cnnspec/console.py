"""What cnnspec prints to a terminal, the way ruff, mypy and pytest do it.

- ``--quiet``: notes (``note: ...``), ``wrote ...`` lines and success lines are not printed; errors are.
- Colour: ``error:`` red, ``warning:`` and ``note:`` yellow, the location (``path:line:col:`` or
  ``cnnspec check:``) bold, on a terminal only. ``NO_COLOR`` (set and not empty) turns it off,
  ``FORCE_COLOR`` (set and not empty) turns it on where the output is not a terminal; ``NO_COLOR`` wins.
- :class:`Progress`: a one-line display on stderr for work that lasts over a second, drawn only on a
  terminal and cleared when the work ends.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Self, TypeVar

T = TypeVar("T")

_quiet = False
_active: set[Progress] = set()  # displays being drawn: closed before an error is printed
_BOLD, _RED, _YELLOW, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
_SEVERITY_COLOUR = {"error": _RED, "warning": _YELLOW, "note": _YELLOW}
# `location: severity: message`, the location being `path:line:col` or `cnnspec <command>`
_DIAGNOSTIC = re.compile(r"^(?:(?P<where>.*?): )?(?P<severity>error|warning|note): ")


def configure(quiet: bool = False) -> None:
    global _quiet
    _quiet = quiet


def quiet() -> bool:
    return _quiet


def colour_enabled(stream: IO[str]) -> bool:
    """Whether to colour what goes to ``stream`` (``NO_COLOR``, then ``FORCE_COLOR``, then a terminal)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return _isatty(stream) and os.environ.get("TERM") != "dumb"


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def styled(line: str, stream: IO[str]) -> str:
    """``line`` with its location bold and its severity coloured, if ``stream`` takes colour."""
    match = _DIAGNOSTIC.match(line)
    if match is None or not colour_enabled(stream):
        return line
    where, severity = match["where"], match["severity"]
    head = f"{_BOLD}{where}:{_RESET} " if where else ""
    return f"{head}{_SEVERITY_COLOUR[severity]}{severity}:{_RESET} {line[match.end():]}"


def error(line: str) -> None:
    """An error line (``path:line:col: error: ...``) on stderr; printed even with ``--quiet``. A progress
    display still running (the work was interrupted by this error) is cleared first."""
    for progress in list(_active):
        progress.close()
    print(styled(line, sys.stderr), file=sys.stderr)


def note(line: str) -> None:
    """A ``note: ...`` or ``warning: ...`` line on stderr; not printed with ``--quiet``."""
    if not _quiet:
        print(styled(line, sys.stderr), file=sys.stderr)


def info(line: str, stream: IO[str] | None = None) -> None:
    """A line that reports success or progress (``wrote x.onnx``, ``x.yaml: ok``); not printed with
    ``--quiet``. Goes to stdout unless ``stream`` says otherwise."""
    if not _quiet:
        print(line, file=stream or sys.stdout)


class Progress:
    """``with Progress("building resnet50.onnx") as p: ...`` shows ``building resnet50.onnx  3 s`` on stderr
    (with ``p.update(done, what)``: ``timing 12/35  3 s``), redrawn a few times a second, from ``delay``
    seconds after the start until the end, where the line is cleared. Nothing is drawn when stderr is not
    a terminal, with ``--quiet``, or when the work ends within ``delay``."""

    def __init__(self, label: str, total: int | None = None, *, delay: float = 1.0, interval: float = 0.1,
                 stream: IO[str] | None = None) -> None:
        self.label, self.total, self.delay, self.interval = label, total, delay, interval
        self.stream = stream or sys.stderr
        self.done = 0
        self.drawn = False
        self._start = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Self:
        self._start = time.monotonic()
        if not _quiet and _isatty(self.stream):
            self._thread = threading.Thread(target=self._run, name="cnnspec-progress", daemon=True)
            self._thread.start()
            _active.add(self)
        return self

    def update(self, done: int, label: str | None = None) -> None:
        self.done = done
        if label is not None:
            self.label = label

    def close(self) -> None:
        """Stop drawing and clear the line (idempotent)."""
        self._stop.set()
        _active.discard(self)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.drawn = False

    def line(self) -> str:
        count = f" {self.done}/{self.total}" if self.total else ""
        return f"{self.label}{count}  {time.monotonic() - self._start:.0f} s"

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        shown = ""
        while not self._stop.is_set():
            with self._lock:
                if self.line() != shown:  # redraw only what changed
                    shown = self.line()
                    self.stream.write("\r\x1b[K" + shown)
                    self.stream.flush()
                    self.drawn = True
            self._stop.wait(self.interval)


def with_progress(function: Callable[..., T], label: str) -> Callable[..., T]:
    """``function`` run inside a :class:`Progress` labelled ``label`` (a build: nothing shows if it is fast)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> T:
        with Progress(label):
            return function(*args, **kwargs)

    return run


def counter(total: int) -> Callable[[int, str], None]:
    """A :class:`Progress` driven by calls: ``show(done, "timing")`` updates it, ``show(0, "")`` ends it."""
    bar = Progress("", total).start()

    def show(done: int, label: str) -> None:
        if label:
            bar.update(done, label)
        else:
            bar.close()

    return show
