"""How long does a full-depth architecture diagram take, as a user runs it?

Times whole processes (interpreter start, imports, analysis, DOT text, ``dot -Tsvg``, atomic writes),
interleaved round by round so a change in machine load hits every variant alike, and reports medians:

  svg      cnnspec build SPEC --target svg   (the budget: <= 2 s for resnet50 at full depth)
  dot      cnnspec build SPEC --target dot   (the same without rendering)
  render   dot -Tsvg on the written DOT      (Graphviz alone)
  startup  python -c "import cnnspec.frontend"  (the floor every command pays)

Other processes' load is recorded from /proc/loadavg and /proc/stat (busy share of all CPUs over the
run, this benchmark included). Run: ``python bench/bench_dot.py [--spec specs/resnet50.yaml] [--runs 9]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 2.0


def build_command(spec: str, target: str, out: Path) -> list[str]:
    """``cnnspec build`` when the command exists; otherwise the same work through the Python API."""
    if (ROOT / "cnnspec" / "commands" / "build.py").exists():
        return [sys.executable, "-m", "cnnspec", "build", spec, "--target", target, "-o", str(out)]
    code = ("import argparse, pathlib, sys; from cnnspec.frontend import analyse_file; "
            "from cnnspec.compile.dot import build; "
            "build(analyse_file(sys.argv[1]), pathlib.Path(sys.argv[2]), "
            "argparse.Namespace(target=sys.argv[3], depth=None, rankdir='TB'))")
    return [sys.executable, "-c", code, spec, str(out), target]


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="specs/resnet50.yaml")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        variants = {
            "svg": build_command(args.spec, "svg", out / "d.svg"),
            "dot": build_command(args.spec, "dot", out / "d.dot"),
            "render": ["dot", "-Tsvg", "-o", str(out / "r.svg"), str(out / "d.dot")],
            "startup": [sys.executable, "-c", "import cnnspec.frontend"],
        }
        for cmd in variants.values():  # warm the page cache; also creates d.dot for `render`
            timed(cmd, env)
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        busy0, total0 = cpu_times()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, cmd in variants.items():
                times[name].append(timed(cmd, env))
        busy1, total1 = cpu_times()
        nodes = (out / "d.svg").read_text().count('class="node"')
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"spec {args.spec}, full depth, {args.runs} interleaved runs, {nodes} drawn nodes")
    for name, value in med.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:8s} median {value:.3f} s  (min-max {spread} s)  {value / med['svg']:.2f} x svg")
    print(f"rendering adds {med['svg'] - med['dot']:.3f} s; "
          f"svg is {med['svg'] / med['startup']:.1f} x bare startup")
    busy = 100 * (busy1 - busy0) / max(total1 - total0, 1)
    print(f"load average before: {' '.join(load_before)}; CPUs busy during the run: {busy:.0f}% "
          f"(this benchmark included), {os.cpu_count()} CPUs")
    verdict = "within" if med["svg"] <= BUDGET_S else "OVER"
    print(f"budget: svg {med['svg']:.3f} s {verdict} {BUDGET_S:.1f} s")
    return 0 if med["svg"] <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
