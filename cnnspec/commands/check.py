"""``cnnspec check PATH...``: validate specs (files or directories), fast enough for every commit.

Exit 0 when every spec is valid and within its budgets, 1 otherwise, 2 on a usage error. Formats: text
(``path:line:col: error: ...``), json (a list of results), github (Actions annotations)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cnnspec.commands.common import add_spec_options, spec_kwargs
from cnnspec.errors import SpecError, UsageError, one_line
from cnnspec.fsutil import file_kind
from cnnspec.stdstreams import reader_may_leave

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Result:
    file: str
    errors: list[SpecError]
    params: int | None = None
    macs: int | None = None
    kind: str = "spec"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate specs (files or directories); exit 1 on any error",
                       description="Validate specs: YAML, settings, shapes, and the spec's budgets. Files "
                       "holding only `blocks` are checked as block libraries.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files or directories (searched for *.yaml)")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    add_spec_options(p)


def spec_files(paths: list[str]) -> list[Path]:
    """The files to check: each file named, and the regular ``*.yaml``/``*.yml`` files under each directory
    (symbolic links to directories are not followed; a FIFO or device found there is skipped)."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        elif os.path.lexists(path):
            kind = file_kind(path.stat().st_mode) if path.exists() else "a broken symbolic link"
            raise UsageError(f"{text} is {kind}, not a spec file or a directory")
        else:
            raise UsageError(f"no such file or directory: {text}")
    return files


def check_file(path: Path, kwargs: dict) -> Result:
    from cnnspec.analyse.budgets import check_budgets
    from cnnspec.loader.yaml_loader import load_file
    from cnnspec.pipeline import analyse_doc, check_blocks_file, is_blocks_file

    try:
        doc = load_file(path)
        if is_blocks_file(doc):
            check_blocks_file(doc, path)
            return Result(one_line(str(path)), [], kind="blocks")
        graph = analyse_doc(doc, path, **kwargs)
        errors = check_budgets(path, graph, lambda p, shape: analyse_doc(doc, p, kwargs["overrides"], shape))
        return Result(one_line(str(path)), errors, graph.root.total_params, graph.root.total_macs)
    except SpecError as exc:
        return Result(one_line(str(path)), [exc])


def _github(text: str) -> str:
    """Escape a workflow command's message (GitHub Actions' `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """Escape a workflow command's property value, e.g. a file name (`escapeProperty`)."""
    return _github(text).replace(":", "%3A").replace(",", "%2C")


def report(results: list[Result], fmt: str) -> None:
    if fmt == "json":
        records = [{"file": r.file, "ok": not r.errors, "kind": r.kind, "params": r.params, "macs": r.macs,
                    "errors": [{"file": e.pos.file if e.pos else r.file, "line": e.pos.line if e.pos else None,
                                "col": e.pos.col if e.pos else None, "message": e.message} for e in r.errors]}
                   for r in results]
        print(json.dumps(records, indent=2))
        return
    for r in results:
        for e in r.errors:
            if fmt == "github":
                file, line, col = (e.pos.file, e.pos.line, e.pos.col) if e.pos else (r.file, 1, 1)
                print(f"::error file={_github_property(one_line(file))},line={line},col={col}::{_github(e.message)}")
            else:
                print(e, file=sys.stderr)
        if not r.errors and fmt == "text":
            detail = "blocks" if r.kind == "blocks" else f"{r.params:,} params, {r.macs:,} MACs"
            print(f"{r.file}: ok ({detail})")


def run(args: argparse.Namespace) -> int:
    kwargs = spec_kwargs(args)
    files = spec_files(args.paths)
    if not files:
        raise UsageError(f"no spec files (*.yaml, *.yml) under {' '.join(args.paths)}")
    results = [check_file(f, kwargs) for f in files]
    with reader_may_leave():  # `check specs/ | head -1`: the errors and the exit status still count
        report(results, args.format)
    return 1 if any(r.errors for r in results) else 0
