"""The long fuzz run: 100,000 cases of ``tools/fuzzcases.py`` on several processes; prints the counts.

    python tools/fuzz_long.py                       # 100,000 cases, 2 workers
    python tools/fuzz_long.py --cases 5000 --jobs 4
    python tools/fuzz_long.py --repro 4711          # print case 4711 and what cnnspec says about it

Case ``n`` is made from ``random.Random(n)``, so every failure is reproducible from its number. A case
that runs longer than ``--timeout`` seconds is a hang: its worker is killed and restarted at the next
case. Each worker's address space is capped (``--max-memory``), so a runaway allocation shows up as a
MemoryError (counted as a traceback) instead of taking the machine down. Every 10th case that passes
is also built with ``--target torch`` (the source compiled) and ``--target dot``."""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import queue
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.fuzzcases import make_case, prepare, run_case

SLOW_SECONDS = 2.0


@dataclass
class Tally:
    cases: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)  # per case
    builds: collections.Counter[str] = field(default_factory=collections.Counter)  # torch/dot builds
    failures: dict[str, int] = field(default_factory=dict)  # first line of the problem -> first seed
    hangs: list[int] = field(default_factory=list)
    slow: int = 0
    max_seconds: float = 0.0  # one case: the front-end command and, for every 10th passing case, two builds
    max_seed: int = -1
    max_command: float = 0.0  # one cnnspec command on one spec
    max_command_seed: int = -1
    peak_rss_kb: int = 0

    def add(self, seed: int, outcomes: list[tuple[str, float, str]]) -> None:
        """The first outcome is the front-end command's; any others are builds of a spec that passed."""
        self.cases += 1
        seconds = sum(s for _, s, _ in outcomes)
        if seconds > self.max_seconds:
            self.max_seconds, self.max_seed = seconds, seed
        slowest = max(s for _, s, _ in outcomes)
        if slowest > self.max_command:
            self.max_command, self.max_command_seed = slowest, seed
        self.slow += slowest > SLOW_SECONDS
        for index, (kind, _, detail) in enumerate(outcomes):
            (self.kinds if index == 0 else self.builds)[kind] += 1
            if detail:
                self.failures.setdefault(f"{kind}: {detail.strip().splitlines()[-1][:200]}", seed)


def _worker(wid: int, seeds: range, state: mp.Array, results: mp.Queue, backends_every: int,
            max_memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    workdir = Path(tempfile.mkdtemp(prefix=f"cnnspec-fuzz{wid}-"))
    tree = prepare(workdir)
    for seed in seeds:
        state[2 * wid], state[2 * wid + 1] = seed, time.monotonic()
        rng = random.Random(seed)
        outcomes = run_case(make_case(rng), tree, rng, backends=seed % backends_every == 0)
        results.put(("case", seed, [(o.kind, o.seconds, "" if o.clean else o.detail[-3000:]) for o in outcomes]))
    state[2 * wid + 1] = 0.0
    shutil.rmtree(workdir, ignore_errors=True)
    results.put(("done", wid, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run(cases: int, jobs: int, timeout: float, backends_every: int, max_memory: int, first: int = 0) -> Tally:
    ctx = mp.get_context("fork")
    state = ctx.Array("d", 2 * jobs)
    results: mp.Queue = ctx.Queue()
    tally = Tally()
    parts = {wid: range(first + wid, first + cases, jobs) for wid in range(jobs)}

    def start(wid: int, seeds: range) -> mp.Process:
        proc = ctx.Process(target=_worker, args=(wid, seeds, state, results, backends_every, max_memory),
                           daemon=True)
        proc.start()
        return proc

    workers = {wid: start(wid, seeds) for wid, seeds in parts.items()}
    running = set(workers)
    last_report = time.monotonic()
    while running:
        try:
            message = results.get(timeout=1.0)
        except queue.Empty:
            message = None
        if message and message[0] == "case":
            tally.add(message[1], message[2])
        elif message and message[0] == "done":
            running.discard(message[1])
            tally.peak_rss_kb = max(tally.peak_rss_kb, message[2])
            workers[message[1]].join()
        for wid in list(running):
            seed, began = int(state[2 * wid]), state[2 * wid + 1]
            if began and time.monotonic() - began > timeout:  # a hang: kill, count, go on after it
                workers[wid].kill()
                workers[wid].join()
                tally.hangs.append(seed)
                tally.cases += 1
                rest = range(seed + jobs, parts[wid].stop, jobs)
                state[2 * wid + 1] = 0.0
                workers[wid] = start(wid, rest)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(f"... {tally.cases:,} cases", file=sys.stderr, flush=True)
    return tally


def report(tally: Tally, jobs: int, wall: float, timeout: float) -> str:
    k, b = tally.kinds, tally.builds
    lines = [
        f"cases:               {tally.cases:,} ({jobs} workers, {wall:.0f} s wall)",
        f"successes:           {k['ok']:,}",
        f"clean errors:        {k['error']:,} (exit 1, one path:line:col line) + {k['usage']:,} usage (exit 2)",
        f"tracebacks:          {k['traceback'] + b['traceback']}",
        f"other bad output:    {k['bad-error'] + b['bad-error']}",
        f"hangs (> {timeout:g} s):      {len(tally.hangs)}" + (f" cases {tally.hangs[:10]}" if tally.hangs else ""),
        (f"max time per command: {tally.max_command:.3f} s (case {tally.max_command_seed}); per case with its "
        f"builds: {tally.max_seconds:.3f} s (case {tally.max_seed})"),
        f"commands over {SLOW_SECONDS:g} s:  {tally.slow}",
        f"peak RSS per worker: {tally.peak_rss_kb / 1024:.0f} MiB",
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
    args = p.parse_args(argv)
    if args.repro is not None:
        return repro(args.repro)
    began = time.monotonic()
    tally = run(args.cases, args.jobs, args.timeout, 10, args.max_memory << 20, args.first)
    print(report(tally, args.jobs, time.monotonic() - began, args.timeout))
    bad = sum(c["traceback"] + c["bad-error"] for c in (tally.kinds, tally.builds)) + len(tally.hangs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
