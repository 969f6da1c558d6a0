"""``fork_map``: the same list as a comprehension, in order, with this process taking a share; a child that
fails in any way has its share done again here, so a bug is raised here as it would be without children;
no child outlives the call."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import pytest

from cnnspec.forkmap import batches, fork_map

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork_map forks (check uses it on Linux)")


def test_items_are_dealt_largest_first_in_at_most_1024_batches() -> None:
    assert batches([5, 1, 1, 3, 2]) == [[0], [3], [4], [1], [2]]
    assert batches([]) == []
    many = batches([1.0] * 2500)
    assert len(many) == 834 and {len(b) for b in many} == {3, 1}
    assert sorted(i for b in many for i in b) == list(range(2500))


def test_a_slow_item_does_not_hold_up_the_rest() -> None:
    """One process draws the long item; the other draws the rest meanwhile."""
    def work(n: int) -> int:
        if n == 0:
            time.sleep(0.5)
        return os.getpid()

    pids = fork_map(work, list(range(20)), [10.0] + [1.0] * 19, 2)
    assert pids.count(pids[0]) == 1


def test_results_in_order_from_several_processes() -> None:
    def work(n: int) -> tuple[int, int]:
        time.sleep(0.01)  # long enough for every process to draw some
        return n * n, os.getpid()

    items = list(range(40))
    got = fork_map(work, items, [1.0] * len(items), 3)
    assert [square for square, _ in got] == [n * n for n in items]
    assert len({pid for _, pid in got}) == 3
    assert os.getpid() in {pid for _, pid in got}  # this process took a share


def test_one_process_forks_nothing() -> None:
    assert fork_map(lambda n: (n, os.getpid()), [1, 2], [1, 1], 1) == [(1, os.getpid()), (2, os.getpid())]


def _fails_in_children(parent: int, how: str) -> Callable[[int], int]:
    def work(n: int) -> int:
        if os.getpid() != parent:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "unpicklable":
                return lambda: n  # type: ignore[return-value]
            raise RuntimeError("child only")
        return n + 100

    return work


@pytest.mark.parametrize("how", ["raise", "kill", "unpicklable"])
def test_a_failed_child_share_is_done_here(how: str) -> None:
    work = _fails_in_children(os.getpid(), how)
    assert fork_map(work, list(range(12)), [1.0] * 12, 2) == list(range(100, 112))


@pytest.mark.parametrize("bad", [4, 5])  # in this process's share (children killed), in a child's (redone here)
def test_an_error_is_raised_here_and_no_child_is_left(bad: int) -> None:
    def work(n: int) -> int:
        if n == bad:
            raise ValueError("bug in the analysis")
        return n

    with pytest.raises(ValueError, match="bug in the analysis"):
        fork_map(work, list(range(8)), [1.0] * 8, 2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every child was reaped
