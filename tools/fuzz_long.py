"""The long fuzz run: 100,000 cases of ``tools/fuzzcases.py`` on several processes; prints the counts.

    python tools/fuzz_long.py                       # 100,000 cases, 2 workers
    python tools/fuzz_long.py --cases 5000 --jobs 4
    python tools/fuzz_long.py --repro 4711          # print case 4711 and what cnnspec says about it

Case ``n`` is made from ``random.Random(n)``, so every failure is reproducible from its number. A case
that runs longer than ``--timeout`` seconds is a hang: its worker is killed and restarted at the next
case. Each worker's address space is capped (``--max-memory``), so a runaway allocation shows up as a
MemoryError (counted as a traceback) instead of taking the machine down. Every 10th case that passes
is also built with ``--target torch`` (the source compiled) and ``--target dot``.

Resources: each command's wall time and the worker's peak RSS during it (its high-water mark is reset
before each command, ``/proc/self/clear_refs``) are recorded, and the largest over the run reported
for the front-end commands (``check``/``summary``) and the builds apart. The workers run many cases, so
a command's peak includes what the worker already holds (the figure is an upper bound; the growth
during the command is reported too). The fixed hostile cases of ``tools/hostile_corpus.py`` (the attack
report's M1, M2, M4 and a zoo baseline) then run as fresh ``cnnspec check`` processes, one at a time,
measured exactly (``--hostile-timeout``, ``--no-hostile``)."""

from __future__ import annotations

import argparse
import collections
import functools
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import fuzzpool, hostile_corpus
from tools.fuzzcases import make_case, prepare, run_case

SLOW_SECONDS = 2.0
PROMISE_KB = hostile_corpus.PROMISE_BYTES // 1024


@dataclass
class Peak:
    """The largest value of one figure over the run, and the case it came from."""

    value: float = 0.0
    seed: int = -1

    def add(self, value: float, seed: int) -> None:
        if value > self.value:
            self.value, self.seed = value, seed


@dataclass
class Tally:
    cases: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)  # per case
    builds: collections.Counter[str] = field(default_factory=collections.Counter)  # torch/dot builds
    failures: dict[str, int] = field(default_factory=dict)  # first line of the problem -> first seed
    hangs: list[int] = field(default_factory=list)
    crashes: list[int] = field(default_factory=list)  # a worker died in the case
    slow: int = 0
    case_seconds: Peak = field(default_factory=Peak)  # the front-end command and, every 10th passing case, builds
    front_seconds: Peak = field(default_factory=Peak)  # one check/summary command
    front_rss_kb: Peak = field(default_factory=Peak)  # the worker's peak RSS during one check/summary
    front_growth_kb: Peak = field(default_factory=Peak)  # ... less its RSS when the command began
    build_seconds: Peak = field(default_factory=Peak)
    build_rss_kb: Peak = field(default_factory=Peak)
    over_promise: list[int] = field(default_factory=list)  # cases whose check/summary took over 2 s or 500 MB
    hostile: list[hostile_corpus.Figures] = field(default_factory=list)

    def add(self, seed: int, outcomes: list[tuple[str, float, str, int, int]]) -> None:
        """The first outcome is the front-end command's; any others are builds of a spec that passed.
        Each is (kind, seconds, detail, peak RSS KiB, RSS KiB before)."""
        self.cases += 1
        self.case_seconds.add(sum(o[1] for o in outcomes), seed)
        self.slow += max(o[1] for o in outcomes) > SLOW_SECONDS
        for index, (kind, seconds, detail, peak, before) in enumerate(outcomes):
            if index == 0:
                self.kinds[kind] += 1
                self.front_seconds.add(seconds, seed)
                self.front_rss_kb.add(peak, seed)
                self.front_growth_kb.add(peak - before, seed)
                if seconds > SLOW_SECONDS or peak > PROMISE_KB:
                    self.over_promise.append(seed)
            else:
                self.builds[kind] += 1
                self.build_seconds.add(seconds, seed)
                self.build_rss_kb.add(peak, seed)
            if detail:
                self.failures.setdefault(f"{kind}: {detail.strip().splitlines()[-1][:200]}", seed)

    def lost(self, seed: int, how: str) -> None:
        self.cases += 1
        (self.hangs if how == "hang" else self.crashes).append(seed)

    @property
    def bad(self) -> int:
        """Failures: tracebacks, bad output, hangs, crashes (time and memory figures are reported, not
        counted: on a shared machine they vary with its load)."""
        failures = sum(c["traceback"] + c["bad-error"] for c in (self.kinds, self.builds))
        return failures + len(self.hangs) + len(self.crashes)


class CaseWorker:
    """One worker process: its own case directory and address-space cap."""

    def __init__(self, backends_every: int, max_memory: int) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
        self.workdir = Path(tempfile.mkdtemp(prefix="cnnspec-fuzz-"))
        self.tree = prepare(self.workdir)
        self.backends_every = backends_every

    def run(self, seed: int) -> list[tuple[str, float, str, int, int]]:
        rng = random.Random(seed)
        outcomes = run_case(make_case(rng), self.tree, rng, backends=seed % self.backends_every == 0, measure=True)
        return [(o.kind, o.seconds, "" if o.clean else o.detail[-3000:], o.peak_rss_kb, o.rss_before_kb)
                for o in outcomes]

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def run(cases: int, jobs: int, timeout: float, backends_every: int, max_memory: int, first: int = 0) -> Tally:
    tally = Tally()
    setup = functools.partial(CaseWorker, backends_every, max_memory)
    fuzzpool.run(setup, first, cases, jobs, timeout, tally.add, tally.lost)
    return tally


def run_hostile(timeout: float, max_memory: int) -> list[hostile_corpus.Figures]:
    with tempfile.TemporaryDirectory(prefix="cnnspec-hostile-") as tmp:
        return [hostile_corpus.measure(case, timeout, max_memory)
                for case in hostile_corpus.write_corpus(Path(tmp))]


def _mib(kb: float) -> str:
    return f"{kb / 1024:.0f} MiB"


def report(tally: Tally, jobs: int, wall: float, timeout: float) -> str:
    k, b = tally.kinds, tally.builds
    fs, fr, fg = tally.front_seconds, tally.front_rss_kb, tally.front_growth_kb
    lines = [
        f"cases:               {tally.cases:,} ({jobs} workers, {wall:.0f} s wall)",
        f"successes:           {k['ok']:,}",
        f"clean errors:        {k['error']:,} (exit 1, one path:line:col line) + {k['usage']:,} usage (exit 2)",
        f"tracebacks:          {k['traceback'] + b['traceback']}",
        f"other bad output:    {k['bad-error'] + b['bad-error']}",
        f"hangs (> {timeout:g} s):      {len(tally.hangs)}" + (f" cases {tally.hangs[:10]}" if tally.hangs else ""),
        f"worker crashes:      {len(tally.crashes)}" + (f" cases {tally.crashes[:10]}" if tally.crashes else ""),
        (f"check/summary:       max {fs.value:.3f} s (case {fs.seed}); max peak RSS {_mib(fr.value)} (case "
         f"{fr.seed}), max growth during one command {_mib(fg.value)} (case {fg.seed})"),
        (f"over 2 s or 500 MB:  {len(tally.over_promise)} check/summary commands"
         + (f" (cases {', '.join(map(str, tally.over_promise[:10]))})" if tally.over_promise else "")),
        (f"builds:              max {tally.build_seconds.value:.3f} s (case {tally.build_seconds.seed}); max peak "
         f"RSS {_mib(tally.build_rss_kb.value)} (case {tally.build_rss_kb.seed})"),
        f"max time per case with its builds: {tally.case_seconds.value:.3f} s (case {tally.case_seconds.seed})",
        f"commands over {SLOW_SECONDS:g} s:  {tally.slow}",
        f"peak RSS per worker: {_mib(max(fr.value, tally.build_rss_kb.value))} (the largest of the above)",
        (f"builds of passing cases (torch source compiled, dot): {sum(b.values()):,}: {b['ok']:,} ok, "
        f"{b['error']:,} clean errors"),
    ]
    for problem, seed in sorted(tally.failures.items(), key=lambda item: item[1])[:20]:
        lines.append(f"  case {seed}: {problem}")
    return "\n".join(lines)


def repro(seed: int) -> int:
    rng = random.Random(seed)
    data = make_case(rng)
    print(data.decode("utf-8", "backslashreplace"))
    print("-" * 60)
    with tempfile.TemporaryDirectory() as tmp:
        for outcome in run_case(data, prepare(Path(tmp)), rng, backends=seed % 10 == 0):
            print(f"{outcome.kind} ({outcome.seconds:.3f} s) cnnspec {' '.join(outcome.argv)}\n{outcome.detail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--first", type=int, default=0, help="number of the first case (default 0)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds after which a case is a hang")
    p.add_argument("--max-memory", type=int, default=2048, metavar="MiB", help="address space per worker")
    p.add_argument("--repro", type=int, metavar="CASE", help="show one case and its outcome")
    p.add_argument("--no-hostile", action="store_true", help="leave out the fixed hostile cases")
    p.add_argument("--hostile-timeout", type=float, default=30.0, metavar="S",
                   help="seconds after which a fixed hostile case is killed (default 30)")
    p.add_argument("--hostile-memory", type=int, default=4096, metavar="MiB",
                   help="address space of a fixed hostile case's process (default 4096)")
    args = p.parse_args(argv)
    if args.repro is not None:
        return repro(args.repro)
    began = time.monotonic()
    tally = run(args.cases, args.jobs, args.timeout, 10, args.max_memory << 20, args.first)
    print(report(tally, args.jobs, time.monotonic() - began, args.timeout), flush=True)
    if not args.no_hostile:
        tally.hostile = run_hostile(args.hostile_timeout, args.hostile_memory << 20)
        print("\n".join(hostile_corpus.report(tally.hostile, args.hostile_timeout)))
    return 1 if tally.bad else 0


if __name__ == "__main__":
    sys.exit(main())
