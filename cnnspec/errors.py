"""User-facing errors: one line, ``path:line:col: error: message``.

Every message passes through :func:`one_line`, which escapes what could break the line or fool the reader
(controls, line separators, bidirectional overrides, undecodable bytes of file names), and
:func:`clip`, which keeps a message readable when it quotes a huge value."""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 and C1 controls and the Unicode line/paragraph separators: each ends a line for str.splitlines or a
# terminal. Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and marks
# (U+200E, U+200F, U+061C) make a terminal or a CI log show text reordered (Trojan-source spoofing).
# Lone surrogates are the undecodable bytes of a file name (os.fsdecode's surrogateescape): shown as the
# byte they stand for, \xNN, so printing never raises UnicodeEncodeError.
_CONTROL = ({c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))}
            | {c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                           *range(0x2066, 0x206A))}
            | {c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)}
            | {c: f"\\u{c:04x}" for c in (*range(0xD800, 0xDC80), *range(0xDD00, 0xE000))}
            | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})

VALUE_LIMIT = 200  # characters of one quoted value, or of a file name, shown in a message
LINE_LIMIT = 2000  # characters of a whole message
_QUOTED = re.compile(f"`[^`]{{{VALUE_LIMIT + 1},}}`")


@dataclass(frozen=True)
class SourcePos:
    """Where a spec element was written: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def one_line(text: str) -> str:
    """``text`` with every character that could break a line, drive a terminal or reorder what it shows
    escaped."""
    return text.translate(_CONTROL)


def clip(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def clip_message(text: str) -> str:
    """A message with every `quoted` value over :data:`VALUE_LIMIT` characters cut, and the whole held to
    :data:`LINE_LIMIT` characters (an unknown op name of 3 MB must not become a 3 MB line)."""
    text = _QUOTED.sub(lambda m: f"`{clip(m.group()[1:-1])}`", text)
    return clip(text, LINE_LIMIT)


def show_path(path: object) -> str:
    """A file name as messages print it: escaped, and cut when it is absurdly long."""
    return clip(one_line(str(path)))


class SpecError(Exception):
    """A problem in a spec (or its command-line overrides), located where it was written."""

    def __init__(self, message: str, pos: SourcePos | None = None, code: str | None = None) -> None:
        message = clip_message(one_line(message))  # a key or value written with a newline must not split it
        super().__init__(message)
        self.message = message
        self.pos = pos
        self._code = code

    @property
    def code(self) -> str:
        """The kind of problem (a key of ``cnnspec.error_codes.KINDS``, e.g. ``shape``): as given where the
        error was raised, else derived from the message (only when asked: analysis raises and catches many)."""
        if self._code is None:
            from cnnspec.error_codes import classify

            self._code = classify(self.message)
        return self._code

    def __str__(self) -> str:
        where = f"{show_path(self.pos.file)}:{self.pos.line}:{self.pos.col}: " if self.pos else ""
        return f"{where}error: {self.message}"


def decode_utf8(raw: bytes, file: str, what: str = "the file") -> str:
    """``raw`` as UTF-8 text, or a :class:`SpecError` at the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise SpecError(f"{what} is not valid UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                        SourcePos(file, line, col)) from None


MAX_SHOWN = 50  # errors reported per file by `check` and the editor; the rest are counted in one more line


def capped(errors: list[SpecError]) -> list[SpecError]:
    """The first :data:`MAX_SHOWN` errors, and one more saying how many were left out."""
    if len(errors) <= MAX_SHOWN:
        return errors
    more = SpecError(f"{len(errors) - MAX_SHOWN} more error(s) in this file are not shown", errors[MAX_SHOWN].pos)
    return [*errors[:MAX_SHOWN], more]


class UsageError(Exception):
    """A problem with how cnnspec was called (exit code 2). Printed on one line, like every error."""

    def __str__(self) -> str:
        return clip_message(one_line(super().__str__()))


class PathError(OSError):
    """A file cnnspec will not read or write, and why: printed as ``cnnspec CMD: error: PATH: why``
    (exit 1). An ``OSError``, so API callers catch it with the errors of the file system."""

    def __init__(self, path: object, why: str, errno: int | None = None) -> None:
        super().__init__(errno, why, str(path))


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` (or ``reason``) of an ``OSError``, on one line."""
    reason = one_line(exc.strerror or str(exc))
    if exc.filename is None:
        return reason
    return f"{show_path(exc.filename)}: {reason}"
