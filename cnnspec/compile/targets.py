"""Build targets: ``cnnspec build SPEC --target NAME`` looks NAME up here and imports the backend only
then, so ``check`` and ``summary`` never load torch, onnx or graphviz.

Adding a target is one line in ``TARGETS``; its suffix also lets ``-o PATH`` pick it. Its module provides:

``def build(graph: Graph, output: Path, options: argparse.Namespace) -> list[Path]``
    Write the target for the analysed ``graph`` to ``output`` (every file through
    ``cnnspec.fsutil.write_atomic``) and return the paths written, ``output`` first. ``options`` is the
    parsed ``cnnspec build`` command line, so a backend reads its own options from it. The same graph
    and options must give the same bytes: ``cnnspec build --check`` compares them with files on disk.
    Raise ``SpecError`` for a spec the backend cannot express, ``UsageError`` for bad options.

``def add_options(parser: argparse.ArgumentParser) -> None`` (optional, named in ``Target.options``)
    Add the target's own options to ``cnnspec build`` (prefix them with the target, ``--onnx-opset``).
    It runs whenever ``cnnspec build`` parses its arguments, so its module must import only the standard
    library and cnnspec at module level. Targets naming the same function share its options. An option
    given while building none of the targets that read it is a usage error (``--fp16`` with ``svg``).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from cnnspec.errors import UsageError

if TYPE_CHECKING:
    from cnnspec.ir import Graph

BuildFn = Callable[["Graph", Path, argparse.Namespace], list[Path]]


@dataclass(frozen=True)
class Target:
    build: str  # "module:function"
    suffix: str  # output suffix: <spec file stem><suffix>; an -o with this suffix picks this target
    help: str
    options: tuple[str, ...] = ()  # "module:function"s adding the options this target reads


_LIMIT = "cnnspec.compile.limits:add_option"
_DIAGRAM = "cnnspec.compile.dot:add_build_options"  # --depth and --rankdir, shared by the four diagram targets
TARGETS: dict[str, Target] = {
    "torch": Target("cnnspec.compile.torch.target:build", ".py", "standalone PyTorch module (imports only torch)",
                    (_LIMIT,)),
    "onnx": Target("cnnspec.compile.onnx:build", ".onnx", "ONNX model for onnxruntime (--weights FILE or seeded)",
                   (_LIMIT, "cnnspec.compile.onnx.options:add_build_options")),
    "dot": Target("cnnspec.compile.dot.target:build", ".dot", "architecture diagram as Graphviz DOT text",
                  (_DIAGRAM,)),
    "svg": Target("cnnspec.compile.dot.target:build", ".svg", "architecture diagram, SVG (needs Graphviz `dot`)",
                  (_DIAGRAM,)),
    "png": Target("cnnspec.compile.dot.target:build", ".png", "architecture diagram, PNG (needs Graphviz `dot`)",
                  (_DIAGRAM,)),
    "pdf": Target("cnnspec.compile.dot.target:build", ".pdf", "architecture diagram, PDF (needs Graphviz `dot`)",
                  (_DIAGRAM,)),
}


@dataclass(frozen=True)
class TargetOption:
    """An option only some targets read (``--fp16``: onnx); given with none of them, it is a usage error."""

    dest: str
    flag: str
    default: object
    targets: tuple[str, ...]


class _Unset:
    def __repr__(self) -> str:
        return "<not given>"


UNSET = _Unset()  # the parsed value of a target option that was not given


def resolve(ref: str) -> Callable:
    module, _, function = ref.partition(":")
    return getattr(importlib.import_module(module), function)


def target(name: str) -> Target:
    if name not in TARGETS:
        raise UsageError(f"unknown target `{name}` (targets: {', '.join(sorted(TARGETS))})")
    return TARGETS[name]


def builder(name: str) -> BuildFn:
    return resolve(target(name).build)


def names(values: list[str] | None) -> list[str]:
    """The targets of ``--target`` values (repeated, or comma-separated), each once, in order."""
    out: list[str] = []
    for value in values or []:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                raise UsageError(f"--target takes names separated by commas, got `{value}`")
            target(name)
            if name not in out:
                out.append(name)
    return out


def by_suffix(path: str) -> str | None:
    """The target whose suffix ``path`` ends with (``x.onnx`` -> onnx), if any; case is ignored."""
    suffix = PurePath(path).suffix.lower()
    return next((name for name, entry in TARGETS.items() if entry.suffix == suffix), None)


def suffixes() -> str:
    return ", ".join(f"{entry.suffix} ({name})" for name, entry in TARGETS.items())


def add_all_options(parser: argparse.ArgumentParser) -> None:
    """Add every target's options; each parses to :data:`UNSET` when not given, and the parsed arguments
    carry ``target_options`` (dest -> :class:`TargetOption`) for :func:`settle_options`."""
    users: dict[str, list[str]] = {}
    for name, entry in TARGETS.items():
        for ref in entry.options:
            users.setdefault(ref, []).append(name)
    options: dict[str, TargetOption] = {}
    for ref, used_by in users.items():
        known = len(parser._actions)  # argparse has no public list of what a call added
        resolve(ref)(parser)
        for action in parser._actions[known:]:
            flag = max(action.option_strings, key=len)
            options[action.dest] = TargetOption(action.dest, flag, action.default, tuple(used_by))
    parser.set_defaults(**{dest: UNSET for dest in options}, target_options=options)


def settle_options(args: argparse.Namespace, building: list[str]) -> None:
    """Give target options that were not given their defaults; refuse one that none of ``building`` reads."""
    for option in getattr(args, "target_options", {}).values():
        if getattr(args, option.dest) is UNSET:
            setattr(args, option.dest, option.default)
        elif not set(option.targets) & set(building):
            raise UsageError(f"{option.flag} applies only to --target {_or(option.targets)}, not "
                             f"{_or(building, 'and')}")


def _or(items: tuple[str, ...] | list[str], word: str = "or") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"
