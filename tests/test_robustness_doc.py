"""docs/robustness.md states every limit with the value the code holds: each row naming a constant must
show that constant's current value (change one, and this fails until the table says so too)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _size(v: int) -> str:
    for unit, power in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if v % 2**power == 0:
            return f"{v >> power} {unit}"
    return f"{v:,} bytes"


LIMITS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("cnnspec.frontend.read", "MAX_BYTES", lambda v: f"| {_size(v)}; at most that + 1 byte is read"),
    ("cnnspec.compile.manifest", "MAX_BYTES", lambda v: f"| {_size(v)} |"),
    ("cnnspec.frontend.read", "MAX_DEPTH", lambda v: f"| {v} levels |"),
    ("cnnspec.frontend.read", "MAX_VALUES", lambda v: f"| {v:,} scalars (keys included)"),
    ("cnnspec.frontend.expr", "MAX_LENGTH", lambda v: f"| {v} characters;"),
    ("cnnspec.frontend.expr", "MAX_MAGNITUDE", lambda v: f"up to 10^{len(str(v)) - 1} in magnitude"),
    ("cnnspec.frontend.link", "MAX_FILES", lambda v: f"| {v:,} per spec;"),
    ("cnnspec.frontend.budgets", "MAX_INPUT_SIZES", lambda v: f"| {v} sizes,"),
    ("cnnspec.ops.conv", "MAX_FIXED_WEIGHTS", lambda v: f"| {v:,} weights once"),
    ("cnnspec.frontend.syntax", "MAX_FIXED_VALUES", lambda v: f"| {v:,} numbers written in `weights:` per file"),
    ("cnnspec.frontend.elaborate", "MAX_NODES", lambda v: f"| {v:,} after expanding"),
    ("cnnspec.frontend", "SMALLEST_INPUT_BUDGET", lambda v: f"| {v:,} node analyses of the bisection"),
    ("cnnspec.errors", "MAX_SHOWN", lambda v: f"| {v}, then one line"),
    ("cnnspec.compile.limits", "DEFAULTS",
     lambda v: f"up to {_size(v['torch'])} for torch (`build --target torch`, `Model.to_torch()`), {_size(v['onnx'])} for ONNX"),
    ("cnnspec.compile.limits", "INPUT_DEFAULT", lambda v: f"| {_size(v)} in all"),
    ("cnnspec.commands.bench", "THREADS_PER_CORE", lambda v: f"| {v} per core |"),
    ("cnnspec.compile.onnx.safetensors_file", "MAX_HEADER", lambda v: f"header of at most {_size(v)};"),
    ("cnnspec.compile.onnx.torch_file", "MAX_RECORD", lambda v: f"records at most {_size(v)} each"),
    ("cnnspec.compile.onnx.npy", "MAX_HEADER", lambda v: f"| {_size(v)} |"),
    ("cnnspec.compile.onnx.errors", "MAX_NAME", lambda v: f"a name cut at {v} characters"),
    ("cnnspec.errors", "VALUE_LIMIT", lambda v: f"cut at {v} characters"),
    ("cnnspec.errors", "LINE_LIMIT", lambda v: f"a whole message at {v:,}"),
]


def _limit_rows() -> list[str]:
    text = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    section = text.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize(("module", "constant", "shown"), LIMITS, ids=[f"{m}.{c}" for m, c, _ in LIMITS])
def test_each_limit_row_shows_the_value_the_code_holds(module: str, constant: str, shown: Callable[[Any], str]
                                                       ) -> None:
    value = getattr(importlib.import_module(module), constant)
    file = module.removeprefix("cnnspec.").replace(".", "/").split("/")[-1] + ".py"
    rows = [r for r in _limit_rows() if f"`{constant}`" in r and (file in r or module == "cnnspec.frontend")]
    assert len(rows) == 1, (constant, file)
    assert shown(value) in rows[0], (constant, value)


def test_every_limit_row_says_how_to_raise_it_and_the_dot_timeout_matches() -> None:
    from cnnspec.compile.dot.render import render

    rows = _limit_rows()[1:]  # after the header (the rule starts with "|-")
    assert len(rows) == 23 and all(len(r.split(" | ")) == 5 and r.split(" | ")[3].strip() for r in rows)
    timeout = inspect.signature(render).parameters["timeout"].default
    assert any(r.startswith("| `dot` rendering | ") and f"| {timeout:g} s |" in r for r in rows)
