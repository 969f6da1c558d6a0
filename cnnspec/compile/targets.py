"""Build targets: ``cnnspec build SPEC --target NAME`` looks NAME up here and imports the backend only
then, so ``check`` and ``summary`` never load torch, onnx or graphviz.

Adding a target is one line in ``TARGETS``. Its module provides:

``def build(graph: Graph, output: Path, options: argparse.Namespace) -> list[Path]``
    Write the target for the analysed ``graph`` to ``output`` (every file through
    ``cnnspec.fsutil.write_atomic``) and return the paths written, ``output`` first. ``options`` is the
    parsed ``cnnspec build`` command line, so a backend reads its own options from it. The same graph
    and options must give the same bytes: ``cnnspec build --check`` compares them with files on disk.
    Raise ``SpecError`` for a spec the backend cannot express, ``UsageError`` for bad options.

``def add_options(parser: argparse.ArgumentParser) -> None`` (optional, named in ``Target.options``)
    Add the target's own options to ``cnnspec build`` (prefix them with the target, ``--onnx-opset``).
    It runs whenever ``cnnspec build`` parses its arguments, so its module must import only the standard
    library and cnnspec at module level.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.errors import UsageError

if TYPE_CHECKING:
    from cnnspec.ir import Graph

BuildFn = Callable[["Graph", Path, argparse.Namespace], list[Path]]


@dataclass(frozen=True)
class Target:
    build: str  # "module:function"
    suffix: str  # default output suffix: <spec name><suffix>
    help: str
    options: str | None = None  # "module:function" adding the target's options to the parser


TARGETS: dict[str, Target] = {
    "torch": Target("cnnspec.compile.torch.target:build", ".py", "standalone PyTorch module (imports only torch)"),
    "onnx": Target("cnnspec.compile.onnx:build", ".onnx", "ONNX model for onnxruntime (--weights FILE or seeded)",
                   "cnnspec.compile.onnx.options:add_build_options"),
    # Diagrams: the DOT text always, rendered by Graphviz's `dot`; --depth/--rankdir are shared by all four,
    # so only the first entry adds them.
    "dot": Target("cnnspec.compile.dot:build", ".dot", "architecture diagram as Graphviz DOT text",
                  "cnnspec.compile.dot:add_build_options"),
    "svg": Target("cnnspec.compile.dot:build", ".svg", "architecture diagram, SVG (needs Graphviz `dot`)"),
    "png": Target("cnnspec.compile.dot:build", ".png", "architecture diagram, PNG (needs Graphviz `dot`)"),
    "pdf": Target("cnnspec.compile.dot:build", ".pdf", "architecture diagram, PDF (needs Graphviz `dot`)"),
}


def resolve(ref: str) -> Callable:
    module, _, function = ref.partition(":")
    return getattr(importlib.import_module(module), function)


def target(name: str) -> Target:
    if name not in TARGETS:
        raise UsageError(f"unknown target `{name}` (targets: {', '.join(sorted(TARGETS))})")
    return TARGETS[name]


def builder(name: str) -> BuildFn:
    return resolve(target(name).build)


def add_all_options(parser: argparse.ArgumentParser) -> None:
    for entry in TARGETS.values():
        if entry.options:
            resolve(entry.options)(parser)
