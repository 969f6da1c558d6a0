"""Fixed hostile specs for the resource measurements of ``tools/fuzz_long.py``: the attack report's
resource findings (M1, M2, M4) and a zoo spec as the baseline, each checked by a real ``cnnspec check``
process whose wall time and peak RSS are measured (``os.wait4``).

The project promises that ``check`` of any spec under the 4 MiB file limit takes at most 2 s and 500 MB.

* ``M1``: diamond imports, depth 16: ``l0.yaml`` imports ``l1.yaml`` twice, ..., ``l15.yaml`` imports
  ``l16.yaml`` twice (17 files, 640 bytes; 2^16 import paths if each is followed).
* ``M2``: one fixed 1x1 kernel over 3,162 x 3,162 channels (10 M weights, the per-layer cap) in a block
  repeated 40 times (200 bytes).
* ``M4``: resnet50 with 3,000 distinct ``constraints.input_sizes`` (46 KB), each a re-analysis.
* ``zoo``: ``specs/resnet50.yaml`` itself, the cost of a process that checks a real network."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMISE_SECONDS = 2.0
PROMISE_BYTES = 500 * 10**6


# `python -m cnnspec check SPEC` with its address space capped first (argv: the cap in bytes, the spec).
CAPPED_CHECK = """\
import resource, runpy, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv = ["cnnspec", "check", sys.argv[2]]
runpy.run_module("cnnspec", run_name="__main__", alter_sys=True)
"""


@dataclass
class FixedCase:
    name: str
    spec: Path
    what: str


@dataclass
class Figures:
    """One ``cnnspec check`` process: exit status (None when killed at the timeout), wall time, peak RSS."""

    case: FixedCase
    returncode: int | None
    seconds: float
    peak_rss_bytes: int
    stderr_tail: str

    @property
    def within_promise(self) -> bool:
        return (self.returncode is not None and self.seconds <= PROMISE_SECONDS
                and self.peak_rss_bytes <= PROMISE_BYTES)


def write_corpus(root: Path) -> list[FixedCase]:
    """Write the fixed cases under ``root``; returns them in the order they are measured."""
    m1 = root / "m1"
    m1.mkdir(parents=True, exist_ok=True)
    for level in range(16):
        (m1 / f"l{level}.yaml").write_text(f"use: [l{level + 1}.yaml, l{level + 1}.yaml]\nblocks: {{}}\n")
    (m1 / "l16.yaml").write_text("blocks: {}\n")
    (m1 / "spec.yaml").write_text("name: x\nuse: [l0.yaml]\ninput: [1, 8, 8]\nlayers: [relu]\n")
    m2 = root / "m2.yaml"
    m2.write_text("name: fk\ninput: [3162, 4, 4]\n"
                  "blocks: {f: {layers: [conv: {weights: [[1]], out: 3162, trainable: false}]}}\n"
                  "layers: [stage: {name: s, block: f, repeat: 40}]\n")
    zoo = root / "zoo"
    shutil.copytree(ROOT / "specs", zoo, dirs_exist_ok=True)
    sizes = "".join(f"    - [3, {64 + i // 60}, {64 + i % 60}]\n" for i in range(3000))
    m4 = zoo / "resnet50_sizes.yaml"
    m4.write_text((zoo / "resnet50.yaml").read_text() + f"\nconstraints:\n  input_sizes:\n{sizes}")
    return [
        FixedCase("zoo", zoo / "resnet50.yaml", "specs/resnet50.yaml (baseline)"),
        FixedCase("M1", m1 / "spec.yaml", "diamond imports, depth 16 (17 files, 640 bytes)"),
        FixedCase("M2", m2, "fixed 1x1 kernel, 3162x3162 channels, block repeated 40 times"),
        FixedCase("M4", m4, "resnet50 with 3,000 constraints.input_sizes (46 KB)"),
    ]


def measure(case: FixedCase, timeout: float, max_memory: int) -> Figures:
    """``python -m cnnspec check SPEC`` in a fresh process (address space capped at ``max_memory`` bytes,
    killed after ``timeout`` seconds); its wall time and peak RSS from ``os.wait4``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CAPPED_CHECK, str(max_memory), str(case.spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.send_signal(signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert proc.stderr is not None
    tail = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    proc.stderr.close()
    return Figures(case, None if killed else proc.returncode, seconds, usage.ru_maxrss * 1024, tail[0][:200])


def report(figures: list[Figures], timeout: float) -> list[str]:
    lines = [(f"fixed hostile cases (each a fresh `cnnspec check` process; promise: <= {PROMISE_SECONDS:g} s "
              f"and <= {PROMISE_BYTES // 10**6} MB):")]
    for f in figures:
        status = f"killed at {timeout:g} s" if f.returncode is None else f"exit {f.returncode}"
        verdict = "within" if f.within_promise else "OVER"
        lines.append(f"  {f.case.name:<4} {f.seconds:7.2f} s {f.peak_rss_bytes / 2**20:8.0f} MiB  {status:<16} "
                     f"{verdict:<6} {f.case.what}")
        if f.returncode not in (0, None) and f.stderr_tail:
            lines.append(f"         {f.stderr_tail}")
    return lines
