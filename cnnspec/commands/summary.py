"""``cnnspec summary SPEC``: the per-layer table and totals (text, markdown or JSON)."""

from __future__ import annotations

import argparse

from cnnspec.commands.common import add_spec_options, load_spec, require_file, spec_kwargs
from cnnspec.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer shapes, params, MACs and receptive field of a spec",
                       description="Print every layer's output shape, parameters, MACs and receptive field, "
                       "and the totals. Nothing is built and torch is not imported.")
    p.add_argument("spec", help="the spec file; `-` reads it from standard input (named <stdin>, imports relative "
                   "to the working directory)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="show N levels, folding deeper blocks into one row (totals unchanged)")
    add_spec_options(p)


def run(args: argparse.Namespace) -> int:
    from cnnspec.frontend import analyse_doc, is_library, size_fixed_by, smallest_input
    from cnnspec.report import render

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be at least 1")
    require_file(args.spec)
    kwargs = spec_kwargs(args)
    doc, path = load_spec(args.spec)
    if is_library(doc.data):
        raise UsageError(f"{doc.file} holds only `blocks` (a block library); summarise a spec that uses them")
    graph = analyse_doc(doc, path, **kwargs)
    smallest = smallest_input(graph)
    print(render(graph, args.format, args.depth, smallest, size_fixed_by(graph, smallest)), end="")
    return 0
