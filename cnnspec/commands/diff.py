"""``cnnspec diff OLD NEW`` / ``cnnspec diff --git REV SPEC``: what a change to a spec does to shapes,
parameters and MACs, layer by layer, as text, Markdown (a pull-request comment) or JSON."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from cnnspec.commands.common import add_spec_options, spec_kwargs
from cnnspec.errors import SourcePos, SpecError, UsageError
from cnnspec.ir import Graph


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="per-layer and total changes in shapes, params and MACs between two specs",
                       description="Compare two specs (or a spec with itself at a git revision): totals, and every "
                       "layer added, removed or changed, and every output (by name) added, removed or changed in shape. Layers are paired by aligning their sequence of ops and "
                       "paths (as `diff` aligns lines), so an inserted layer is one insertion; settings are named "
                       "as in the spec. Nothing is built. Exit 0, or with --exit-code 1 when anything differs; "
                       "1 on a spec error, 2 on a usage error.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="OLD NEW, or one SPEC with --git")
    p.add_argument("--git", metavar="REV", help="compare SPEC at git revision REV (e.g. HEAD, origin/main) with "
                   "the working tree")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument("--skip-unchanged", action="store_true",
                   help="print nothing when no layer, output or total differs (for looping over every spec in CI)")
    p.add_argument("--exit-code", action="store_true",
                   help="exit 1 when any layer, output or total differs, 0 when none does (as `git diff --exit-code`)")
    add_spec_options(p)


def run(args: argparse.Namespace) -> int:
    from cnnspec.frontend import analyse_file
    from cnnspec.report.diff_format import render_diff
    from cnnspec.report.spec_diff import diff_graphs

    want = 1 if args.git else 2
    if len(args.specs) != want:
        raise UsageError("give one SPEC with --git REV" if args.git else "give OLD and NEW specs (or --git REV SPEC)")
    kwargs = spec_kwargs(args)
    new_path = args.specs[-1]
    for path in args.specs:
        _not_a_library(path)
    if args.git:
        old, old_label = _at_revision(args.git, new_path, kwargs)
    else:
        old, old_label = analyse_file(args.specs[0], **kwargs), args.specs[0]
    new = analyse_file(new_path, **kwargs)
    diff = diff_graphs(old, new, old_label, new_path)
    if not (args.skip_unchanged and diff.identical):
        print(render_diff(diff, args.format), end="")
    return 1 if args.exit_code and not diff.identical else 0


def _not_a_library(path: str) -> None:
    from cnnspec.frontend import is_library, load_file

    if Path(path).is_file() and is_library(load_file(path).data):
        raise UsageError(f"{path} is a block library; diff the specs that use it")


def _at_revision(rev: str, spec: str, kwargs: dict[str, Any]) -> tuple[Graph, str]:
    """Analyse ``spec`` as it was at ``rev``; errors are located as ``REV:path:line:col``."""
    from cnnspec.frontend import analyse_file
    from cnnspec.gitrev import checkout_spec_dir, repo_path

    top, rel = repo_path(spec)
    with tempfile.TemporaryDirectory(prefix="cnnspec-diff-") as tmp:
        checkout_spec_dir(rev, top, rel, Path(tmp))
        with contextlib.chdir(tmp):  # messages then name files by their path in the repository
            try:
                return analyse_file(rel, **kwargs), f"{rev}:{rel}"
            except SpecError as exc:
                pos = exc.pos and SourcePos(f"{rev}:{exc.pos.file}", exc.pos.line, exc.pos.col)
                raise SpecError(exc.message, pos) from None
