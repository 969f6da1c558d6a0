"""Arguments shared by several commands: ``--set k=v``, ``--input C,H,W``, and ``-`` as a spec path (the
spec on standard input, named ``<stdin>`` in messages, importing relative to the working directory)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from cnnspec.errors import SourcePos, SpecError, UsageError
from cnnspec.frontend.read import MAX_BYTES, MAX_INT, Doc, load_file, load_text

STDIN = "-"  # the spec path that means standard input
STDIN_NAME = "<stdin>"  # its name in messages; imports are relative to the working directory
_COMMENT = re.compile(r"(^|\s)#")  # where YAML starts a comment in a plain scalar


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override a spec parameter, e.g. --set num_classes=10 (repeatable); the value is read "
                        "as YAML reads a plain value, and a ` #` comment is refused: quote the value to keep a `#`")
    parser.add_argument("--input", dest="input_shape", metavar="C,H,W",
                        help="analyse at another input shape (no batch axis), e.g. --input 3,160,160")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, got `{item}`")
        out[name.strip()] = _scalar(text, item)
    return out


def _scalar(text: str, item: str) -> Any:
    """A --set value read as a spec file reads a plain scalar (YAML 1.2 numbers: ``010`` is 10, ``1e-6`` a
    float); anything that is not a single scalar stays the text as typed. A number over the spec limits
    (2^63 - 1, finite) and a YAML comment (`` #``, which would silently cut the value short) are refused."""
    if not text.strip():
        return ""
    try:
        value = load_text(f"value: {text}\n").data.get("value")
    except SpecError as exc:
        if exc.code == "limit":  # too large, not finite: say so rather than read the number as text
            raise UsageError(f"--set {item}: {exc.message}") from None
        return text
    comment = _COMMENT.search(text) if text.lstrip()[:1] not in ("'", '"') else None
    if comment:
        left = text[:comment.start()].strip()
        raise UsageError(f"--set {item}: `#` starts a YAML comment, which would leave "
                         f"{f'`{left}`' if left else 'nothing'}; remove the comment, or quote the value to keep "
                         "the `#` as text")
    return text if isinstance(value, (dict, list)) or value is None else value


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [part.strip() for part in re.split(r"[,x]", text.strip())]
    if not all(re.fullmatch(r"[0-9]+", part) for part in parts):
        raise UsageError(f"--input takes sizes like 3,224,224 (or 3x224x224), got `{text}`")
    shape = tuple(int(part) if len(part) <= 19 else MAX_INT + 1 for part in parts)
    if max(shape) > MAX_INT:
        raise UsageError(f"--input sizes are at most 2^63 - 1, got `{text[:60]}`")
    if not 1 <= len(shape) <= 4 or min(shape) < 1:
        batch = " (no batch axis: leave out the first size)" if len(shape) == 5 else ""
        raise UsageError(f"--input takes 1 to 4 positive sizes (C[,L|H,W|D,H,W]), got `{text}`{batch}")
    return shape


def read_stdin() -> str:
    """The spec text on standard input, refused as the loader refuses a file: over ``MAX_BYTES`` bytes, or
    not UTF-8."""
    raw = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise SpecError(f"standard input holds more than {MAX_BYTES:,} bytes; specs are limited to {MAX_BYTES:,} "
                        "bytes", SourcePos(STDIN_NAME, 1, 1))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise SpecError(f"the text is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); send UTF-8",
                        SourcePos(STDIN_NAME, line, col)) from None


def load_spec(path: str, stdin_text: str | None = None) -> tuple[Doc, str]:
    """The spec at ``path`` (``-``: ``stdin_text``, or standard input) loaded, and the path to analyse it
    with (``<stdin>``: :func:`cnnspec.frontend.analyse_doc` resolves its imports in the working directory)."""
    if path == STDIN:
        return load_text(read_stdin() if stdin_text is None else stdin_text, STDIN_NAME), STDIN_NAME
    return load_file(path), path


def require_file(path: str) -> None:
    """A missing spec file is a usage error (exit 2), not a spec error. ``-`` (standard input) is always there."""
    if path != STDIN and not Path(path).is_file():
        raise UsageError(f"no such file: {path}" if not Path(path).exists() else f"not a file: {path}")


def spec_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``overrides`` and ``input_shape`` for :func:`cnnspec.frontend.analyse_file`."""
    return {"overrides": parse_overrides(args.overrides) or None, "input_shape": parse_shape(args.input_shape)}
