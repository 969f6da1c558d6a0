"""``fork_map``: a function over a list, shared out between this process and forked copies of it.

Why not ``concurrent.futures.ProcessPoolExecutor``: ``check specs/`` spends 0.2 s of CPU analysing, and
the pool costs 20 ms to import, starts workers while this process waits idle, and sends each item and
result through a queue. Here this process works too, and the items are dealt from a pipe filled before
the fork: each process reads the next item's index (4 bytes; a pipe hands each read to one reader) until
the pipe is empty, so a process that drew a large item draws fewer. Items go out largest first (by the
caller's cost estimate), so no process is left with a large one at the end. A child sends its results back
in one pickle when the pipe runs dry.

A child that fails in any way (an exception, a signal, a result that cannot be pickled) changes nothing:
the items it took are done again in this process, so a bug surfaces here, exactly as it would without
children. Forking is only safe where no other thread runs; the caller decides that (Linux, one thread).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

TOKEN = struct.Struct("<I")  # the index of a batch of items, as one read from the pipe
MAX_TOKENS = 1024  # 4 KB: a new pipe holds at least one page, even for a user over the kernel's pipe quota


def batches(costs: Sequence[float]) -> list[list[int]]:
    """The indices of ``costs``, largest cost first, in at most :data:`MAX_TOKENS` batches of consecutive ones.

    >>> batches([1, 5, 3])
    [[1], [2], [0]]
    """
    order = sorted(range(len(costs)), key=lambda i: -costs[i])
    size = -(-len(order) // MAX_TOKENS) or 1
    return [order[start:start + size] for start in range(0, len(order), size)]


@dataclass
class _Child:
    pid: int
    answer: int  # the read end of the pipe it answers on
    reaped: bool = False


def fork_map(function: Callable[[T], R], items: Sequence[T], costs: Sequence[float], processes: int) -> list[R]:
    """``[function(item) for item in items]``, computed by this process and ``processes - 1`` forked ones."""
    work = batches(costs)
    processes = min(processes, len(work))
    if processes < 2:
        return [function(item) for item in items]
    deal, filler = os.pipe()
    os.write(filler, b"".join(TOKEN.pack(b) for b in range(len(work))))  # fits: no reader needed yet
    os.close(filler)
    children: list[_Child] = []
    results: dict[int, R] = {}
    try:
        children.extend(_spawn(function, items, work, deal) for _ in range(processes - 1))
        results.update(_draw(function, items, work, deal))
        for child in children:
            results.update(_collect(child))
    finally:
        os.close(deal)
        for child in children:
            _stop(child)
    for index in range(len(items)):  # what a failed child took
        if index not in results:
            results[index] = function(items[index])
    return [results[i] for i in range(len(items))]


def _draw(function: Callable[[T], R], items: Sequence[T], work: list[list[int]], deal: int) -> Iterator[tuple[int, R]]:
    """(index, result) of each item this process draws from ``deal``, until it is empty."""
    while token := os.read(deal, TOKEN.size):
        for index in work[TOKEN.unpack(token)[0]]:
            yield index, function(items[index])


def _spawn(function: Callable[[T], R], items: Sequence[T], work: list[list[int]], deal: int) -> _Child:
    """A child drawing work from ``deal``."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without running this process's exit handlers
        os.close(readable)
        status = 1
        try:  # any failure is seen by the parent, which then does the items this child took
            with contextlib.suppress(BaseException):
                payload = pickle.dumps(list(_draw(function, items, work, deal)), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(writable, "wb") as out:
                    out.write(payload)
                status = 0
        finally:
            os._exit(status)
    os.close(writable)
    return _Child(pid, readable)


def _collect(child: _Child) -> list[tuple[int, R]]:
    """The child's (index, result) pairs; none when it failed."""
    chunks = []
    while chunk := os.read(child.answer, 1 << 20):
        chunks.append(chunk)
    _, status = os.waitpid(child.pid, 0)
    child.reaped = True
    got = None
    if status == 0:
        with contextlib.suppress(Exception):  # a truncated or foreign payload: its items are done again
            got = pickle.loads(b"".join(chunks))
    return got if isinstance(got, list) else []


def _stop(child: _Child) -> None:
    """Close its pipe; a child not reaped yet (this process failed first) is killed and reaped."""
    os.close(child.answer)
    if not child.reaped:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
