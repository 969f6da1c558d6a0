"""``fork_map``: a function over a list, shared out between this process and forked copies of it.

Why not ``concurrent.futures.ProcessPoolExecutor``: ``check specs/`` spends 0.25 s of CPU analysing, and
the pool costs 20 ms to import, starts workers while this process waits idle, and hands items out one by
one. Here this process takes a share too, each share is given out once (by cost, largest first, to the
least loaded process), and a child sends its results back in one pickle.

A child that fails in any way (an exception, a signal, a result that cannot be pickled) changes nothing:
its share is done again in this process, so a bug surfaces here, exactly as it would without children.
Forking is only safe where no other thread runs; the caller decides that (Linux, one thread).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def shares(costs: Sequence[float], processes: int) -> list[list[int]]:
    """The indices of ``costs`` split into ``processes`` lists of about equal total cost: largest first, each to
    the list with the least so far (each list in ascending order).

    >>> shares([5, 1, 1, 3, 2], 2)
    [[0, 1], [2, 3, 4]]
    """
    loads = [0.0] * processes
    split: list[list[int]] = [[] for _ in range(processes)]
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        least = loads.index(min(loads))
        split[least].append(index)
        loads[least] += costs[index]
    return [sorted(share) for share in split if share]


@dataclass
class _Child:
    pid: int
    pipe: int  # the read end of the pipe it answers on
    share: list[int]
    reaped: bool = False


def fork_map(function: Callable[[T], R], items: Sequence[T], costs: Sequence[float], processes: int) -> list[R]:
    """``[function(item) for item in items]``, computed by this process and ``processes - 1`` forked ones."""
    split = shares(costs, max(1, processes))
    if len(split) < 2:
        return [function(item) for item in items]
    children: list[_Child] = []
    results: dict[int, R] = {}
    try:
        children.extend(_spawn(function, items, share) for share in split[1:])
        results.update(zip(split[0], (function(items[i]) for i in split[0])))
        for child in children:
            results.update(zip(child.share, _collect(child, function, items)))
    finally:
        for child in children:
            _stop(child)
    return [results[i] for i in range(len(items))]


def _spawn(function: Callable[[T], R], items: Sequence[T], share: list[int]) -> _Child:
    """A child computing ``share``."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without running this process's exit handlers
        os.close(readable)
        status = 1
        try:  # any failure is reported by the parent, which then does the share itself
            with contextlib.suppress(BaseException):
                payload = pickle.dumps([function(items[i]) for i in share], protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(writable, "wb") as out:
                    out.write(payload)
                status = 0
        finally:
            os._exit(status)
    os.close(writable)
    return _Child(pid, readable, share)


def _collect(child: _Child, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """The child's results, or its share computed here when the child failed."""
    chunks = []
    while chunk := os.read(child.pipe, 1 << 20):
        chunks.append(chunk)
    _, status = os.waitpid(child.pid, 0)
    child.reaped = True
    got = None
    if status == 0:
        with contextlib.suppress(Exception):  # a truncated or foreign payload: the share is done again
            got = pickle.loads(b"".join(chunks))
    if isinstance(got, list) and len(got) == len(child.share):
        return got
    return [function(items[i]) for i in child.share]


def _stop(child: _Child) -> None:
    """Close the pipe; a child not reaped yet (this process failed first) is killed and reaped."""
    os.close(child.pipe)
    if not child.reaped:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
