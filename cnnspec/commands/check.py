"""``cnnspec check PATH...``: validate specs (files or directories), fast enough for every commit.

Exit 0 when every spec is valid and within its budgets, 1 otherwise, 2 on a usage error. Formats: text
(``path:line:col: error: ...``), json (a list of results), github (Actions annotations), sarif (SARIF 2.1.0
for code scanning). ``-`` checks the spec on standard input; ``--with-importers`` also checks the specs
that import a given block library (the pre-commit hook passes only the changed files)."""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec import console
from cnnspec.commands.check_cache import CheckCache, Passed, Recorder, cache_root
from cnnspec.commands.common import STDIN, STDIN_NAME, add_spec_options, load_spec, read_stdin, spec_kwargs
from cnnspec.commands.importers import SPEC_SUFFIXES, importers
from cnnspec.errors import SpecError, UsageError, capped, one_line
from cnnspec.frontend.read import DocMemo
from cnnspec.fsutil import file_kind
from cnnspec.report.regions import EndColumns
from cnnspec.stdstreams import reader_may_leave

if TYPE_CHECKING:
    from cnnspec.frontend.link import Read

FORMATS = ("text", "json", "github", "sarif")
MAX_JOBS = 8  # processes analysing files at once
MEMO_FILES = 256  # loaded files kept per process: the libraries the specs share stay, each spec then goes
COLLECT_EVERY = 256  # files analysed between two runs of the cyclic garbage collector (``_paced``)
FILES_PER_JOB = 8  # a process costs about 20 ms to start and to build the op models it needs: fewer files, no fork


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
                       "holding only `blocks` are checked as block libraries. Errors go to stderr as "
                       "`path:line:col: error: ...`; valid files are listed on stdout (not with --quiet).")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="spec files or directories (searched for *.yaml, *.yml); `-` reads a spec from standard "
                   "input, named <stdin>, its imports relative to the working directory")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default); json: one record per file on stdout; github: GitHub Actions "
                   "annotations on stdout; sarif: SARIF 2.1.0 on stdout, for GitHub code scanning")
    p.add_argument("--no-cache", action="store_true",
                   help="analyse every file; by default a file that passed is not analysed again until it, a file "
                   "it imports or the options change (kept in $CNNSPEC_CACHE_DIR, else ~/.cache/cnnspec; "
                   "CNNSPEC_NO_CACHE=1 turns it off too)")
    p.add_argument("-j", "--jobs", type=_jobs, metavar="N",
                   help=f"analyse files in N processes (default: one per CPU, at most {MAX_JOBS}, for every "
                   f"{FILES_PER_JOB} files to analyse; 1: in this process)")
    p.add_argument("--with-importers", action="store_true",
                   help="also check every spec that imports a given file (directly or through other block "
                   "libraries), found in the file's directory and those above it up to the working directory")
    add_spec_options(p)


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, 1 or more, got {text!r}")
    return int(text)


def spec_files(paths: list[str]) -> list[Path]:
    """The files to check: ``-`` (standard input), each file named, and the regular ``*.yaml``/``*.yml`` files
    under each directory (symbolic links to directories are not followed; a FIFO or device found there is
    skipped)."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if text == STDIN:
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        elif os.path.lexists(path):
            kind = file_kind(path.stat().st_mode) if path.exists() else "a broken symbolic link"
            raise UsageError(f"{text} is {kind}, not a spec file or a directory")
        else:
            raise UsageError(f"no such file or directory: {text}")
    return files


def check_file(path: Path, kwargs: dict, stdin_text: str | None = None, cache: CheckCache | None = None) -> Result:
    """Every problem of one file (``-``: ``stdin_text``, or standard input when None): its structure and
    settings, imports, names, then the first shape error of each independent branch, then its budgets. A
    file that passed before, with nothing it read changed since, is taken from ``cache``."""
    return _remembered(path, cache) or _fresh(path, kwargs, stdin_text, cache, DocMemo())


def _name(path: Path) -> str:
    return STDIN_NAME if str(path) == STDIN else one_line(str(path))


def _remembered(path: Path, cache: CheckCache | None) -> Result | None:
    known = None if cache is None or str(path) == STDIN else cache.lookup(path)
    return None if known is None else Result(_name(path), [], known.params, known.macs, known.kind)


def _fresh(path: Path, kwargs: dict, stdin_text: str | None, cache: CheckCache | None, memo: DocMemo) -> Result:
    """``path`` analysed (files loaded through ``memo``); remembered in ``cache`` when it passes."""
    if cache is None or str(path) == STDIN:
        return _analysed(_name(path), path, kwargs, stdin_text, memo.load_file)
    recorder = Recorder(memo)
    result = _analysed(_name(path), path, kwargs, stdin_text, recorder.load)
    if not result.errors:
        cache.store(path, recorder.hashes, Passed(result.kind, result.params, result.macs))
    return result


def check_files(files: list[Path], kwargs: dict, stdin_text: str | None, cache: CheckCache | None,
                jobs: int | None = None) -> list[Result]:
    """:func:`check_file` of each of ``files``, in order; those not in ``cache`` analysed by ``jobs`` processes
    (None: one per CPU, at most :data:`MAX_JOBS`, when there are at least :data:`FILES_PER_JOB` files each).
    A file that several specs import is loaded once per process."""
    results: list[Result | None] = [_remembered(f, cache) for f in files]
    todo = [files[i] for i, r in enumerate(results) if r is None]
    memo = DocMemo(limit=MEMO_FILES)
    analyse = _paced(functools.partial(_fresh, kwargs=kwargs, stdin_text=stdin_text, cache=cache, memo=memo))
    workers = _workers(jobs, len(todo))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if workers < 2:
            fresh = [analyse(f) for f in todo]
        else:
            from cnnspec.forkmap import fork_map
            from cnnspec.frontend import analysis  # noqa: F401  # loaded once, before the fork: the workers share it

            fresh = fork_map(analyse, todo, [_size(f) for f in todo], workers)
    finally:
        if was_enabled:
            gc.enable()
    done = iter(fresh)
    return [r if r is not None else next(done) for r in results]


def _paced(analyse: Callable[[Path], Result]) -> Callable[[Path], Result]:
    """``analyse`` with the cyclic garbage collector run after every :data:`COLLECT_EVERY` files, the caller
    having paused it. Left on, it scanned each file's whole analysis, young objects that live on, once per
    file: a tenth of `check specs/`. An analysis leaves about 15 KB of cycles (exceptions and their frames)."""
    count = itertools.count(1)

    def paced(path: Path) -> Result:
        if next(count) % COLLECT_EVERY == 0:
            gc.collect()
        return analyse(path)

    return paced


def _size(path: Path) -> int:
    """A file's size in bytes, the cost by which files are shared out between processes (0 if unknown)."""
    try:
        return 0 if str(path) == STDIN else path.stat().st_size
    except OSError:
        return 0


def _workers(jobs: int | None, files: int) -> int:
    if not sys.platform.startswith("linux") or threading.active_count() > 1:  # fork is cheap, safe only there
        return 1
    if jobs is not None:
        return max(1, min(jobs, files))
    return max(1, min(len(os.sched_getaffinity(0)), MAX_JOBS, files // FILES_PER_JOB))


def _analysed(name: str, path: Path, kwargs: dict, stdin_text: str | None, read: Read) -> Result:
    """What :func:`check_file` reports for ``path``, analysed now; ``read(path, name)`` loads the file and each
    file it imports."""
    from cnnspec.frontend import analyse
    from cnnspec.frontend.budgets import check_budgets

    try:
        if str(path) == STDIN:
            doc, spec_path = load_spec(STDIN, stdin_text)
        else:
            doc, spec_path = read(str(path), str(path)), str(path)
    except SpecError as exc:
        return Result(name, [exc])
    result = analyse(doc, spec_path, kwargs["overrides"], kwargs["input_shape"], read=read)
    if result.kind == "blocks":
        return Result(name, result.errors, kind="blocks")
    graph = result.graph
    if graph is None or result.errors:
        assert result.errors, "the front end made no graph and gave no reason"
        return Result(name, capped(result.errors))
    return Result(name, check_budgets(graph), graph.root.total_params, graph.root.total_macs)


def report(results: list[Result], fmt: str, ends: EndColumns) -> None:
    problems = [(r.file, e) for r in results for e in r.errors]
    if fmt == "json":
        print(json.dumps([_record(r) for r in results], indent=2))
    elif fmt == "sarif":
        from cnnspec.report.sarif import sarif_text

        print(sarif_text(problems, ends), end="")
    elif fmt == "github":
        from cnnspec.report.annotations import annotation

        for file, error in problems:
            print(annotation(file, error, ends))
    else:
        for r in results:
            for e in r.errors:
                console.error(str(e))
            if not r.errors:
                detail = "blocks" if r.kind == "blocks" else f"{r.params:,} params, {r.macs:,} MACs"
                console.info(f"{r.file}: ok ({detail})")


def _record(r: Result) -> dict[str, Any]:
    return {"file": r.file, "ok": not r.errors, "kind": r.kind, "params": r.params, "macs": r.macs,
            "errors": [{"file": e.pos.file if e.pos else r.file, "line": e.pos.line if e.pos else None,
                        "col": e.pos.col if e.pos else None, "code": e.code, "message": e.message}
                       for e in r.errors]}


def run(args: argparse.Namespace) -> int:
    kwargs = spec_kwargs(args)
    files = spec_files(args.paths)
    if not files:
        raise UsageError(f"no spec files (*.yaml, *.yml) under {' '.join(args.paths)}")
    if args.with_importers:
        files += importers([f for f in files if str(f) != STDIN])
    stdin_text = read_stdin() if any(str(f) == STDIN for f in files) else None
    root = None if args.no_cache else cache_root()
    cache = None if root is None else CheckCache(root, kwargs)
    results = check_files(files, kwargs, stdin_text, cache, args.jobs)
    with reader_may_leave():  # `check specs/ | head -1`: the errors and the exit status still count
        report(results, args.format, EndColumns({STDIN_NAME: stdin_text} if stdin_text is not None else None))
    return 1 if any(r.errors for r in results) else 0
