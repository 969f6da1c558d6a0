"""``cnnspec check PATH...``: validate specs (files or directories), fast enough for every commit.

Exit 0 when every spec is valid and within its budgets, 1 otherwise, 2 on a usage error. Formats: text
(``path:line:col: error: ...``), json (a list of results), github (Actions annotations)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cnnspec.commands.common import add_spec_options, spec_kwargs
from cnnspec.errors import SpecError, UsageError

SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SHOWN = 50  # errors printed per file; the rest are counted


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
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {text}")
    return files


def check_file(path: Path, kwargs: dict) -> Result:
    """Every problem of one file: its structure and settings, imports, names, then the first shape error of
    each independent branch, then its budgets."""
    from cnnspec.frontend import analyse, load_file
    from cnnspec.frontend.budgets import check_budgets

    try:
        doc = load_file(path)
    except SpecError as exc:
        return Result(str(path), [exc])
    result = analyse(doc, path, kwargs["overrides"], kwargs["input_shape"])
    if result.kind == "blocks":
        return Result(str(path), result.errors, kind="blocks")
    graph = result.graph
    if graph is None or result.errors:
        assert result.errors, "the front end made no graph and gave no reason"
        return Result(str(path), result.errors)
    return Result(str(path), check_budgets(graph), graph.root.total_params, graph.root.total_macs)


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
        for e in r.errors[:MAX_SHOWN]:
            if fmt == "github":
                file, line, col = (e.pos.file, e.pos.line, e.pos.col) if e.pos else (r.file, 1, 1)
                print(f"::error file={_github_property(file)},line={line},col={col}::{_github(e.message)}")
            else:
                print(e, file=sys.stderr)
        if len(r.errors) > MAX_SHOWN:
            more = f"{r.file}: {len(r.errors) - MAX_SHOWN} more error(s) not shown (the first {MAX_SHOWN} are above)"
            print(f"::error file={_github_property(r.file)}::{_github(more)}" if fmt == "github" else more,
                  file=sys.stdout if fmt == "github" else sys.stderr)
        if not r.errors and fmt == "text":
            detail = "blocks" if r.kind == "blocks" else f"{r.params:,} params, {r.macs:,} MACs"
            print(f"{r.file}: ok ({detail})")


def run(args: argparse.Namespace) -> int:
    kwargs = spec_kwargs(args)
    files = spec_files(args.paths)
    if not files:
        raise UsageError(f"no spec files (*.yaml, *.yml) under {' '.join(args.paths)}")
    results = [check_file(f, kwargs) for f in files]
    report(results, args.format)
    return 1 if any(r.errors for r in results) else 0
