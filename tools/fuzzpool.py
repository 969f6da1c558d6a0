"""Numbered fuzz cases on several processes, for the long runs (``tools/fuzz_long.py``,
``tools/fuzz_differential.py``).

Worker ``w`` of ``J`` runs cases ``first + w``, ``first + w + J``, ... with a :class:`Worker` made in the
worker process by ``setup()`` (so each worker loads its own libraries), and streams every case's
result to the parent. A case that runs longer than ``timeout`` seconds is a hang, and a worker that dies
(a crash in native code, the kernel's OOM killer) is a crash: either way the parent kills the worker,
reports the case and starts a fresh worker at the next case of its share."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any, Protocol


class Worker(Protocol):
    def run(self, seed: int) -> Any:
        """Run case ``seed``; the result must pickle."""

    def close(self) -> Any:
        """Clean up; the returned summary (e.g. the worker's peak RSS) must pickle."""


def _work(setup: Callable[[], Worker], wid: int, seeds: range, state: Any, conn: Any) -> None:
    worker = setup()
    for seed in seeds:
        state[2 * wid], state[2 * wid + 1] = seed, time.monotonic()
        conn.send(("case", seed, worker.run(seed)))  # a pipe write, no feeder thread: nothing lost if we die
    state[2 * wid + 1] = 0.0
    conn.send(("done", wid, worker.close()))


@dataclass
class _Running:
    proc: Any
    conn: Any
    seeds: range
    last: int | None = None  # the last case reported


def run(setup: Callable[[], Worker], first: int, cases: int, jobs: int, timeout: float,
        on_result: Callable[[int, Any], None], on_lost: Callable[[int, str], None],
        context: str = "fork") -> list[Any]:
    """Run cases ``first`` .. ``first + cases - 1``; ``on_result(seed, result)`` for each case that ends,
    ``on_lost(seed, "hang" | "crash")`` for each that does not. Returns each worker's ``close()`` summary."""
    ctx = mp.get_context(context)
    state = ctx.Array("d", 2 * jobs)

    def start(wid: int, seeds: range) -> _Running:
        reader, writer = ctx.Pipe(duplex=False)
        state[2 * wid], state[2 * wid + 1] = seeds.start, 0.0
        proc = ctx.Process(target=_work, args=(setup, wid, seeds, state, writer), daemon=True)
        proc.start()
        writer.close()
        return _Running(proc, reader, seeds)

    running = {wid: start(wid, range(first + wid, first + cases, jobs)) for wid in range(jobs)}
    summaries: list[Any] = []
    last_report, done = time.monotonic(), 0
    while running:
        ready = set(connection.wait([w.conn for w in running.values()], timeout=1.0))
        for wid, w in list(running.items()):
            seed, began = int(state[2 * wid]), state[2 * wid + 1]
            how = "hang" if began and time.monotonic() - began > timeout else None
            if w.conn in ready:
                try:
                    kind, key, payload = w.conn.recv()
                except EOFError:  # the worker died
                    how = "crash"
                else:
                    how = None
                    if kind == "case":
                        on_result(key, payload)
                        w.last, done = key, done + 1
                    else:
                        summaries.append(payload)
                        w.proc.join()
                        del running[wid]
            if how is None:
                continue
            w.proc.kill()
            w.proc.join()
            if seed != w.last:  # it died in a case (not between two)
                on_lost(seed, how)
                done += 1
            rest = range(seed + jobs, w.seeds.stop, jobs)
            del running[wid]
            if rest:
                running[wid] = start(wid, rest)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(f"... {done:,} of {cases:,} cases", file=sys.stderr, flush=True)
    return summaries
