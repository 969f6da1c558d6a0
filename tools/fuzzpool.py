"""Numbered fuzz cases on several processes, for the long runs (``tools/fuzz_long.py``,
``tools/fuzz_differential.py``).

Worker ``w`` of ``J`` runs cases ``first + w``, ``first + w + J``, ... with a :class:`Worker` made in the
worker process by ``setup()`` (so each worker loads its own libraries), and streams every case's
result to the parent. A case that runs longer than ``timeout`` seconds is a hang, and a worker that dies
(a crash in native code, the kernel's OOM killer) is a crash: either way the parent kills the worker,
reports the case and starts a fresh worker at the next case of its share."""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol


class Worker(Protocol):
    def run(self, seed: int) -> Any:
        """Run case ``seed``; the result must pickle."""

    def close(self) -> Any:
        """Clean up; the returned summary (e.g. the worker's peak RSS) must pickle."""


def _work(setup: Callable[[], Worker], wid: int, seeds: range, state: Any, results: Any) -> None:
    worker = setup()
    for seed in seeds:
        state[2 * wid], state[2 * wid + 1] = seed, time.monotonic()
        results.put(("case", seed, worker.run(seed)))
    state[2 * wid + 1] = 0.0
    results.put(("done", wid, worker.close()))


def run(setup: Callable[[], Worker], first: int, cases: int, jobs: int, timeout: float,
        on_result: Callable[[int, Any], None], on_lost: Callable[[int, str], None],
        context: str = "fork") -> list[Any]:
    """Run cases ``first`` .. ``first + cases - 1``; ``on_result(seed, result)`` for each case that ends,
    ``on_lost(seed, "hang" | "crash")`` for each that does not. Returns each worker's ``close()`` summary."""
    ctx = mp.get_context(context)
    state = ctx.Array("d", 2 * jobs)
    results: Any = ctx.Queue()
    parts = {wid: range(first + wid, first + cases, jobs) for wid in range(jobs)}

    def start(wid: int, seeds: range) -> Any:
        proc = ctx.Process(target=_work, args=(setup, wid, seeds, state, results), daemon=True)
        proc.start()
        return proc

    workers = {wid: start(wid, seeds) for wid, seeds in parts.items()}
    running, summaries, last_report, done = set(workers), [], time.monotonic(), 0
    while running:
        try:
            message = results.get(timeout=1.0)
        except queue.Empty:
            message = None
        if message and message[0] == "case":
            on_result(message[1], message[2])
            done += 1
        elif message and message[0] == "done":
            running.discard(message[1])
            summaries.append(message[2])
            workers[message[1]].join()
        for wid in list(running):
            seed, began = int(state[2 * wid]), state[2 * wid + 1]
            hung = began and time.monotonic() - began > timeout
            if hung or (not workers[wid].is_alive() and results.empty()):
                workers[wid].kill()
                workers[wid].join()
                on_lost(seed, "hang" if hung else "crash")
                done += 1
                state[2 * wid + 1] = 0.0
                rest = range(seed + jobs, parts[wid].stop, jobs)
                if rest:
                    workers[wid] = start(wid, rest)
                else:
                    running.discard(wid)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            print(f"... {done:,} of {cases:,} cases", file=sys.stderr, flush=True)
    return summaries
