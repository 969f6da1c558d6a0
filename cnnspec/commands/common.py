"""Arguments shared by several commands: ``--set k=v`` and ``--input C,H,W``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from cnnspec.errors import SpecError, UsageError
from cnnspec.frontend.read import MAX_INT, load_text


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override a spec parameter, e.g. --set num_classes=10 (repeatable)")
    parser.add_argument("--input", dest="input_shape", metavar="C,H,W",
                        help="analyse at another input shape (no batch axis), e.g. --input 3,160,160")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, got `{item}`")
        out[name.strip()] = _scalar(text)
    return out


def _scalar(text: str) -> Any:
    """A --set value read as a spec file reads a plain scalar (YAML 1.2 numbers: ``010`` is 10, ``1e-6`` a
    float); anything that is not a single scalar stays the text as typed."""
    if not text.strip():
        return ""
    try:
        value = load_text(f"value: {text}\n").data.get("value")
    except SpecError:
        return text
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
        raise UsageError(f"--input takes 1 to 4 positive sizes (C[,L|H,W|D,H,W]), got `{text}`")
    return shape


def require_file(path: str) -> None:
    """A missing spec file is a usage error (exit 2), not a spec error."""
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}" if not Path(path).exists() else f"not a file: {path}")


def spec_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``overrides`` and ``input_shape`` for :func:`cnnspec.frontend.analyse_file`."""
    return {"overrides": parse_overrides(args.overrides) or None, "input_shape": parse_shape(args.input_shape)}
