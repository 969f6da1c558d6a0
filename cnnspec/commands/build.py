"""``cnnspec build``: compile a spec to a target (PyTorch source, ONNX, diagrams), or rebuild / check every
file listed in ``generated/manifest``.

    cnnspec build SPEC --target torch [-o PATH] [--set k=v] [--check]
    cnnspec build [--manifest generated/manifest] [--check]

With ``--check`` nothing is written: the command exits 1 and names each file that differs from what its
spec generates now (or is missing)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from cnnspec import console
from cnnspec.commands.common import add_spec_options, spec_kwargs
from cnnspec.compile.manifest import Entry
from cnnspec.errors import SpecError, UsageError
from cnnspec.report.table import human


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="compile a spec: PyTorch source, ONNX, diagrams; or check generated/",
                       description="Compile SPEC to --target. Without SPEC, rebuild every file listed in "
                       "the manifest (generated/manifest); with --check, only report files that differ.")
    configure(p)


def configure(p: argparse.ArgumentParser) -> None:
    from cnnspec.compile import limits, targets

    p.add_argument("spec", nargs="?", help="the spec file (omit to use the manifest)")
    p.add_argument("--target", default="torch", help=f"one of: {', '.join(sorted(targets.TARGETS))} "
                   "(default torch)")
    p.add_argument("-o", "--output", metavar="PATH", help="output file (default: <spec name><suffix> here)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming every output that differs from what the spec generates")
    p.add_argument("--manifest", metavar="PATH", help="manifest of generated files (default generated/manifest)")
    p.add_argument("--if-manifest-exists", action="store_true",
                   help="without SPEC: exit 0 with a note when there is no manifest (for the pre-commit hook)")
    add_spec_options(p)
    limits.add_option(p)
    targets.add_all_options(p)


def run(args: argparse.Namespace) -> int:
    from cnnspec.compile import manifest

    if args.spec is None:
        path = Path(args.manifest) if args.manifest else manifest.DEFAULT
        if args.if_manifest_exists and not path.is_file():
            console.note(f"note: no {path} here, so no generated files to {'check' if args.check else 'build'}")
            return 0
        return run_manifest(path, args.check)
    if args.manifest:
        raise UsageError("--manifest applies only without SPEC")
    stale = build_one(args, Path(args.spec), None, args.check)
    return report(stale, 1) if args.check else 0


def build_one(args: argparse.Namespace, spec: Path, source: str | None, check: bool) -> list[str]:
    """Build (or, with ``check``, compare) one spec; returns the stale outputs' descriptions."""
    from cnnspec.compile import targets
    from cnnspec.frontend import analyse_file

    entry = targets.target(args.target)
    graph = analyse_file(spec, **spec_kwargs(args))
    if source is not None:
        graph.source = source  # the manifest's spelling, so output does not depend on the working directory
    output = Path(args.output) if args.output else Path(f"{graph.name}{entry.suffix}")
    build = console.with_progress(targets.builder(args.target), f"building {output}")
    if not check:
        for path in build(graph, output, args):
            console.info(f"wrote {path} ({human(path.stat().st_size, 'B')})", sys.stderr)
        return []
    with tempfile.TemporaryDirectory(prefix="cnnspec-check-") as tmp:
        fresh = build(graph, Path(tmp) / output.name, args)
        problems = [_compare(path, output.parent / path.name, graph.source) for path in fresh]
    return [p for p in problems if p]


def _compare(fresh: Path, on_disk: Path, spec: str) -> str:
    if not on_disk.is_file():
        return f"{on_disk}: missing (generated from {spec})"
    if on_disk.read_bytes() != fresh.read_bytes():
        return f"{on_disk}: stale: differs from what {spec} generates now"
    return ""


def run_manifest(path: Path, check: bool) -> int:
    from cnnspec.compile import manifest

    entries = manifest.read(path)
    root = manifest.root_of(path)
    parser = argparse.ArgumentParser(prog="cnnspec build", add_help=False)
    configure(parser)
    stale: list[str] = []
    for entry in entries:
        args = _parse(parser, entry)
        spec_text = args.spec
        args.spec = str(root / spec_text)
        args.output = str(root / args.output)
        problems = build_one(args, Path(args.spec), spec_text, check)
        stale.extend(p.replace(str(root) + "/", "", 1) for p in problems)
    if not check:
        return 0
    return report(stale, len(entries))


def _parse(parser: argparse.ArgumentParser, entry: Entry) -> argparse.Namespace:
    try:
        args, extra = parser.parse_known_args(entry.argv)
    except SystemExit:
        raise SpecError("not valid `cnnspec build` arguments", entry.pos) from None
    if extra or args.spec is None or args.output is None or args.check or args.manifest:
        raise SpecError("an entry is SPEC --target NAME -o OUTPUT [options] (no --check, no --manifest)",
                        entry.pos)
    return args


def report(stale: list[str], total: int) -> int:
    for line in stale:
        print(line, file=sys.stderr)
    if stale:
        print(f"{len(stale)} generated file(s) out of date; run `cnnspec build` to regenerate", file=sys.stderr)
        return 1
    console.info(f"{total} generated file(s) up to date")
    return 0

