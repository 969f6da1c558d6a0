"""The long differential fuzz: random runnable specs through the generated PyTorch module and onnxruntime
(``tools/differential.py``) on several processes; prints a table of the outcomes.

    python tools/fuzz_differential.py --cases 20000 --workers 2
    python tools/fuzz_differential.py --first 100000 --cases 5000 --save failed/
    python tools/fuzz_differential.py --repro 4711      # print spec 4711 and what the backends do with it

Spec ``n`` is ``tools/runnable_specs.py``'s spec number ``n``, so every failure is reproducible from its
number. A case that runs longer than ``--timeout`` seconds is a hang; a worker that dies is a crash:
either way the worker is restarted at the next case. Exit status 1 when any case failed."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import fuzzpool
from tools.differential import ATOL, RTOL, DiffWorker, Result, Summary, run_seed


def run(first: int, cases: int, workers: int, timeout: float) -> tuple[Summary, int]:
    """The run's summary and the largest peak RSS of a worker (KiB)."""
    summary = Summary()

    def lost(seed: int, how: str) -> None:
        summary.lost.append((seed, how))

    peaks = fuzzpool.run(DiffWorker, first, cases, workers, timeout, lambda seed, out: summary.add(*out), lost)
    return summary, max(peaks, default=0)


def save(summary: Summary, directory: Path) -> None:
    """Every failed or rejected spec as ``directory/<seed>.yaml``, its outcome in a comment on top."""
    directory.mkdir(parents=True, exist_ok=True)
    for result in [*summary.failures, *summary.of("rejected")]:
        head = "".join(f"# {line}\n" for line in _outcome(result).splitlines())
        (directory / f"{result.seed}.yaml").write_text(head + summary.texts.get(result.seed, ""))


def _outcome(result: Result) -> str:
    cause = f" [{result.cause}]" if result.cause else ""
    return "\n".join([f"{result.kind}{cause}: {result.detail}", *result.also])


def repro(seed: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        DiffWorker()  # the same settings as a run
        result, text = run_seed(seed, Path(tmp))
    print(text + "-" * 60)
    print(_outcome(result) if result.kind != "agree" else
          f"agree: max |ort - torch| = {result.max_abs:.3g} ({result.ratio:.3g} of the tolerance)")
    return 0 if not result.failed else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20_000)
    p.add_argument("--first", type=int, default=0, help="number of the first spec (default 0)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds after which a case is a hang")
    p.add_argument("--save", type=Path, metavar="DIR", help="write every failed spec to DIR/<seed>.yaml")
    p.add_argument("--repro", type=int, metavar="SEED", help="show one spec and its outcome")
    args = p.parse_args(argv)
    if args.repro is not None:
        return repro(args.repro)
    began = time.monotonic()
    summary, peak_kb = run(args.first, args.cases, args.workers, args.timeout)
    print(f"specs {args.first:,}-{args.first + args.cases - 1:,}, {args.workers} workers, "
          f"tolerance rtol {RTOL:g}, atol {ATOL:g} x max(1, max|torch|)")
    print(summary.table(time.monotonic() - began, (f"{'peak RSS per worker':<34}{peak_kb / 1024:>5.0f} MiB",)))
    if args.save:
        save(summary, args.save)
    return 1 if summary.failures or summary.lost else 0


if __name__ == "__main__":
    sys.exit(main())
