"""``cnnspec build``: compile a spec to one or more targets (PyTorch source, ONNX, diagrams), or rebuild /
check every file listed in ``generated/manifest``.

    cnnspec build SPEC [--target NAME[,NAME...]] [-o PATH] [--set k=v] [--check]
    cnnspec build [--manifest generated/manifest] [--check]

Where outputs go:

* ``-o PATH`` writes exactly PATH (and, for svg/png/pdf, the DOT text beside it: ``x.svg`` -> ``x.dot``).
  Its suffix picks the target when ``--target`` is not given; a ``--target`` whose suffix differs from a
  known suffix of PATH is a usage error (``--target svg -o x.dot``). ``-o`` names one file, so it takes one
  target.
* Without ``-o``, each target goes to the spec file's name with the target's suffix, in the current
  directory: ``specs/resnet18.yaml`` -> ``resnet18.onnx``. The spec's ``name:`` never makes a path.
* Neither ``--target`` nor ``-o``: ``torch``.

Refused before anything is built: an output that is a directory, device, FIFO or socket, below a regular
file, or a file the build reads (the spec, a file it imports, the manifest); an option of a target that is
not being built (``--fp16`` with ``svg``). With ``--check`` nothing is written: the command exits 1 and names
each file that differs from what its spec generates now (or is missing)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path, PurePath

from cnnspec import console
from cnnspec.commands.common import add_spec_options, spec_kwargs
from cnnspec.compile.manifest import Entry
from cnnspec.errors import PathError, SpecError, UsageError, one_line

Plan = list[tuple[str, Path]]  # (target, output) pairs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="compile a spec: PyTorch source, ONNX, diagrams; or check generated/",
                       description="Compile SPEC to each --target. Without SPEC, rebuild every file listed in "
                       "the manifest (generated/manifest); with --check, only report files that differ.",
                       epilog="examples: `cnnspec build specs/resnet18.yaml --target onnx` writes resnet18.onnx "
                       "here; `-o out/net.svg` builds svg (svg, png and pdf also write the DOT text beside the "
                       "image: out/net.dot); `--target onnx,svg` writes resnet18.onnx and resnet18.svg. Refused "
                       "before building: an output that is a directory, device, FIFO or socket, or the spec or a "
                       "file it imports; an option of a target that is not built (--fp16 with svg).")
    configure(p)


def configure(p: argparse.ArgumentParser) -> None:
    from cnnspec.compile import targets

    p.add_argument("spec", nargs="?", help="the spec file (omit to use the manifest)")
    p.add_argument("--target", action="append", metavar="NAME[,NAME]",
                   help=f"one or more of: {', '.join(targets.TARGETS)} (repeat it, or separate names with "
                   "commas); default: the target of -o's suffix, else torch")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="the output file, for one target; its suffix picks the target when --target is not "
                   f"given ({targets.suffixes()}). Default: the spec file's name with the target's suffix, "
                   "in the current directory (specs/resnet18.yaml -> resnet18.onnx)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming every output that differs from what the spec generates")
    p.add_argument("--manifest", metavar="PATH", help="manifest of generated files (default generated/manifest)")
    p.add_argument("--if-manifest-exists", action="store_true",
                   help="without SPEC: exit 0 with a note when there is no manifest (for the pre-commit hook)")
    add_spec_options(p)
    targets.add_all_options(p)


def run(args: argparse.Namespace) -> int:
    from cnnspec.compile import manifest, targets

    if args.spec is None:
        given = [flag for flag, value in (("--target", args.target), ("-o", args.output)) if value]
        given += [o.flag for o in args.target_options.values() if getattr(args, o.dest) is not targets.UNSET]
        if given:
            raise UsageError(f"{given[0]} applies to building a SPEC; without one, cnnspec build rebuilds the "
                             "manifest's entries, which carry their own options")
        path = Path(args.manifest) if args.manifest else manifest.DEFAULT
        if args.if_manifest_exists and not path.is_file():
            console.note(f"note: no {path} here, so no generated files to {'check' if args.check else 'build'}")
            return 0
        return run_manifest(path, args.check)
    if args.manifest:
        raise UsageError("--manifest applies only without SPEC")
    plan = plan_outputs(args.spec, args.target, args.output)
    targets.settle_options(args, [name for name, _ in plan])
    stale = build_spec(args, Path(args.spec), plan, None, args.check, [])
    return report(stale, len(plan)) if args.check else 0


def plan_outputs(spec: str, target_values: list[str] | None, output: str | None) -> Plan:
    """Which targets to build and where (see the module's docstring)."""
    from cnnspec.compile import targets
    from cnnspec.fsutil import check_output

    names = targets.names(target_values)
    stem = PurePath(spec).stem
    if output is not None:  # a directory or device is refused as such, before its suffix is looked at
        check_output(output, f"{stem}{targets.TARGETS[names[0] if names else 'torch'].suffix}")
    if output is None:
        return [(name, Path(f"{stem}{targets.TARGETS[name].suffix}")) for name in names or ["torch"]]
    by_suffix = targets.by_suffix(output)
    if not names:
        if by_suffix is None:
            raise UsageError(f"cannot tell the target from -o {output}: give --target, or an output ending in "
                             f"one of {targets.suffixes()}")
        names = [by_suffix]
    if len(names) > 1:
        files = [f"{stem}{targets.TARGETS[name].suffix}" for name in names]
        defaults = f"{', '.join(files[:-1])} and {files[-1]}"
        raise UsageError(f"-o names one file, but --target names {len(names)} targets ({', '.join(names)}); "
                         f"drop -o to write {defaults} in the current directory, or build each with its own -o")
    if by_suffix is not None and by_suffix != names[0]:
        raise UsageError(f"--target {names[0]} writes {targets.TARGETS[names[0]].suffix} files, but -o {output} "
                         f"ends in {targets.TARGETS[by_suffix].suffix} (the {by_suffix} target's suffix); drop "
                         "--target, or give -o the suffix of the target you want")
    return [(names[0], Path(output))]


def build_spec(args: argparse.Namespace, spec: Path, plan: Plan, source: str | None, check: bool,
               also_read: list[Path]) -> list[str]:
    """Build (or, with ``check``, compare) each planned output of one spec; returns the stale outputs'
    descriptions. ``also_read``: files besides the spec and its imports that no output may replace."""
    from cnnspec.compile import targets
    from cnnspec.frontend import analyse_file

    graph = analyse_file(spec, **spec_kwargs(args))
    if source is not None:
        graph.source = source  # the manifest's spelling, so output does not depend on the working directory
    reads = files_read(spec, graph.files, also_read)
    for name, output in plan:
        for path in written_by(name, output):
            refuse_output(path, reads)
    if not check:
        from cnnspec.report.table import human

        shown: set[Path] = set()
        for name, output in plan:
            build = console.with_progress(targets.builder(name), f"building {output}")
            for path in build(graph, output, _for_target(args, name)):
                if path not in shown:
                    shown.add(path)
                    console.info(f"wrote {one_line(str(path))} ({human(path.stat().st_size, 'B')})", sys.stderr)
        return []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cnnspec-check-") as tmp:
        for name, output in plan:
            fresh = targets.builder(name)(graph, Path(tmp) / output.name, _for_target(args, name))
            problems.extend(_compare(path, output.parent / path.name, graph.source) for path in fresh)
    return list(dict.fromkeys(p for p in problems if p))


def _for_target(args: argparse.Namespace, name: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "target": name})


def written_by(name: str, output: Path) -> list[Path]:
    """Every path building ``name`` to ``output`` writes."""
    from cnnspec.compile.dot.target import dot_path_for

    return [output, dot_path_for(output)] if name in ("svg", "png", "pdf") else [output]


def files_read(spec: Path, imported: tuple[str, ...], also_read: list[Path]) -> dict[str, str]:
    """Real path (and the name a symbolic link gives it) -> what it is: the spec, the files it imports (as
    the front end read them) and ``also_read``."""
    seen: dict[str, str] = {}
    for path in also_read:
        for name in (_entry_of(path), os.path.realpath(path)):
            seen.setdefault(name, f"the file {path.name}, which this build reads")
    for name in (_entry_of(spec), os.path.realpath(spec)):
        seen.setdefault(name, "the spec being built")
    for real in imported:
        seen.setdefault(real, f"a file the spec imports ({os.path.relpath(real, os.path.dirname(os.path.realpath(spec)))})")
    return seen


def refuse_output(path: Path, reads: dict[str, str]) -> None:
    """Refuse an output cnnspec must not write (see :func:`cnnspec.fsutil.check_output`), or one whose
    replacement would replace a file this build reads. (The output's own name is replaced, never written
    through: a symbolic or hard link to the spec may be an output, the spec itself may not.)"""
    from cnnspec.fsutil import check_output

    check_output(path)
    replaced = _entry_of(path)
    if replaced in reads:
        raise PathError(path, f"it is {reads[replaced]}; writing it would replace it; choose another output file")


def _entry_of(path: Path) -> str:
    """The directory entry ``path`` names (its directory resolved, its last component not)."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def _compare(fresh: Path, on_disk: Path, spec: str) -> str:
    from cnnspec.compile.dot.target import normalise
    from cnnspec.fsutil import read_regular

    new = fresh.read_bytes()
    try:
        old, _ = read_regular(on_disk, len(new) + 2**20)  # room for what normalise() removes
    except OSError:
        return one_line(f"{on_disk}: missing (generated from {spec})")
    if normalise(old, on_disk.suffix) != new:
        return one_line(f"{on_disk}: stale: differs from what {spec} generates now")
    return ""


def run_manifest(path: Path, check: bool) -> int:
    from cnnspec.compile import manifest

    entries = manifest.read(path)
    root = manifest.root_of(path)
    parser = argparse.ArgumentParser(prog="cnnspec build", add_help=False)
    configure(parser)
    stale: list[str] = []
    count = 0
    for entry in entries:
        args, spec, plan = _entry(parser, entry, root)
        source = PurePath(os.path.normpath(args.spec)).as_posix()
        problems = build_spec(args, spec, plan, source, check, [path])
        stale.extend(p.replace(str(root) + "/", "", 1) for p in problems)
        count += len(plan)
    if not check:
        return 0
    return report(stale, count)


def _entry(parser: argparse.ArgumentParser, entry: Entry, root: Path) -> tuple[argparse.Namespace, Path, Plan]:
    """The parsed arguments, spec path and plan of a manifest entry, its paths fenced to ``root``."""
    from cnnspec.compile import manifest, targets

    try:
        args, extra = parser.parse_known_args(entry.argv)
    except SystemExit:
        raise SpecError("not valid `cnnspec build` arguments", entry.pos) from None
    if extra or args.spec is None or args.output is None or args.check or args.manifest:
        raise SpecError("an entry is SPEC --target NAME -o OUTPUT [options] (no --check, no --manifest)",
                        entry.pos)
    spec = manifest.inside(root, args.spec, "spec", entry.pos_of(args.spec))
    output = manifest.inside(root, args.output, "output", entry.pos_of(args.output))
    try:
        plan = plan_outputs(args.spec, args.target, str(output))
        targets.settle_options(args, [name for name, _ in plan])
    except UsageError as exc:
        raise SpecError(str(exc), entry.pos) from None
    return args, spec, plan


def report(stale: list[str], total: int) -> int:
    for line in stale:
        print(line, file=sys.stderr)
    if stale:
        print(f"{len(stale)} generated file(s) out of date; run `cnnspec build` to regenerate", file=sys.stderr)
        return 1
    console.info(f"{total} generated file(s) up to date")
    return 0
