"""How fast is the front end (``cnnspec check`` / ``summary``), and against what?

Three measurements, each interleaved round by round (so a change in machine load hits every variant
alike), reported as medians:

  1. whole process    ``python -m cnnspec check specs/`` over the zoo (the budget: <= 0.3 s), cold in one
                      process and in one per CPU, and with its result cache filled, beside the floors:
                      ``python -c pass`` and ``python -c "import cnnspec.frontend.analysis"``.
  2. the zoo         in-process ``analyse_file`` of every zoo model (load, validate, resolve, analyse) against
                      ``torchinfo.summary`` of the same model as a torch module on the same input (the module
                      the torch backend generates from the spec: torchvision's layout and state_dict where the
                      spec mirrors torchvision), batch 1, one torch thread, modules built beforehand (the goal:
                      cnnspec >= 20x faster, in CPU time, for every model).
  3. scaling          analysis of generated specs of about 500, 1,000 and 5,000 layers: a stage repeating a
                      conv-bn-relu block, and the same layers written out one by one (the goal: linear
                      growth, 5,000 layers <= 2 s).

Other processes' load is recorded (``os.getloadavg``) before and after, and from /proc/stat (busy share of
all CPUs during the run, this benchmark included). Run from the repository root:

    python bench/bench_check.py [--runs 15] [--torch-runs 9] [--scale-runs 3] [--specs resnet50 ...]

Needs torch and torchinfo for measurement 2 (skipped with a note when they are missing).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnnspec.frontend import analyse_file

CHECK_BUDGET_S = 0.3
RATIO_GOAL = 20.0
DEEP_BUDGET_S = 2.0


# --- machine load -----------------------------------------------------------------------------------

def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# --- timing helpers -----------------------------------------------------------------------------------

def child_env() -> dict[str, str]:
    """The commands' environment: this checkout first on the path, and bytecode cached as after any
    ``pip install`` (a ``PYTHONDONTWRITEBYTECODE`` set here would make every run compile cnnspec's modules
    again, about 0.1 s that no installed copy pays)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_process(cmd: list[str], extra_env: dict[str, str] | None = None) -> float:
    env = {**child_env(), **(extra_env or {})}
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def interleaved(variants: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each variant, running them in turn ``runs`` times after one warm-up
    round. CPU time is what the work itself costs; wall time also holds the waits for other processes."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_ in range(runs + 1):
        for name, call in variants.items():
            wall, cpu = time.perf_counter(), cpu_seconds()
            call()
            if round_:
                times[name].append((time.perf_counter() - wall, cpu_seconds() - cpu))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def both(times: tuple[float, float]) -> str:
    return f"{ms(times[0])} wall {ms(times[1])} CPU"


# --- 1. whole process -------------------------------------------------------------------------------

def bench_process(runs: int) -> list[str]:
    """``check specs/`` cold (``--no-cache``: every file analysed, in one process with ``-j1``, else one per
    CPU) and warm (its result cache filled by the warm-up round, in a temporary directory), beside the
    floors every command pays."""
    py = sys.executable
    check = [py, "-m", "cnnspec", "check", "specs/"]
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([py, "-c", "pass"], {}),
        "python -c 'import cnnspec.frontend.analysis'": ([py, "-c", "import cnnspec.frontend.analysis"], {}),
        "cnnspec check specs/ --no-cache -j1": ([*check, "--no-cache", "-j1"], {}),
        "cnnspec check specs/ --no-cache": ([*check, "--no-cache"], {}),
    }
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-cache-") as cache:
        cmds["cnnspec check specs/ (cache filled)"] = (check, {"CNNSPEC_CACHE_DIR": cache, "CNNSPEC_NO_CACHE": ""})
        result = interleaved({name: (lambda c=cmd, e=env: run_process(c, e)) for name, (cmd, env) in cmds.items()},
                             runs)
    specs = len(list((ROOT / "specs").rglob("*.yaml")))
    lines = [f"1. whole process, {specs} zoo files, median of {runs}"]
    lines += [f"   {name:44s} {both(t)}" for name, t in result.items()]
    for name in ("cnnspec check specs/ --no-cache -j1", "cnnspec check specs/ --no-cache",
                 "cnnspec check specs/ (cache filled)"):
        wall = result[name][0]
        verdict = "within" if wall <= CHECK_BUDGET_S else "OVER"
        lines.append(f"   {name} (wall): {wall / CHECK_BUDGET_S:.2f} of the {CHECK_BUDGET_S} s budget ({verdict}); "
                     f"{wall - result['python -c pass'][0]:.3f} s above a bare interpreter")
    return lines


# --- 2. the zoo against torchinfo ------------------------------------------------------------------------

def zoo_specs() -> list[Path]:
    """The zoo's models (block libraries, which define no model, left out)."""
    return sorted(p for p in (ROOT / "specs").glob("*.yaml"))


def bench_zoo(runs: int, names: list[str] | None) -> list[str]:
    """Every zoo model: cnnspec's in-process analysis against ``torchinfo.summary`` of the torch module the
    backend generates from the spec (torchvision's layout and state_dict where the spec mirrors a torchvision
    model), batch 1 at the spec's input, all 2 x n variants interleaved round by round."""
    try:
        import torch
        import torchinfo

        from cnnspec.compile.torch import build_module
    except ImportError as exc:
        return [f"2. zoo against torchinfo: skipped ({exc.name} is not installed; pip install torchinfo)"]
    torch.set_num_threads(1)
    specs = [p for p in zoo_specs() if names is None or p.stem in names]
    models, graphs, variants = {}, {}, {}
    for spec in specs:
        graphs[spec.stem] = graph = analyse_file(spec)
        models[spec.stem] = build_module(graph).eval()
        shape = (1, *graph.input_shape)
        variants[f"cnnspec {spec.stem}"] = lambda s=spec: analyse_file(s)
        # as users call it (torchinfo runs the forward pass under no_grad)
        variants[f"torchinfo {spec.stem}"] = (lambda m=models[spec.stem], x=shape:
                                              torchinfo.summary(m, input_size=x, verbose=0))
    result = interleaved(variants, runs)
    lines = [f"2. zoo against torchinfo.summary (1 torch thread), in-process, batch 1, median of {runs}",
             (f"   {'spec':14s} {'input':>11s} {'cnnspec CPU':>12s} {'torchinfo CPU':>14s} {'ratio CPU':>9s}  "
              f"{'ratio wall':>10s}  params equal")]
    ratios = []
    for spec in specs:
        name, graph = spec.stem, graphs[spec.stem]
        ours, theirs = result[f"cnnspec {name}"], result[f"torchinfo {name}"]
        stats = torchinfo.summary(models[name], input_size=(1, *graph.input_shape), verbose=0)
        ratios.append(theirs[1] / ours[1])
        same = "yes" if stats.total_params == graph.root.total_params else (
            f"NO: {graph.root.total_params:,} vs {stats.total_params:,}")
        lines.append(f"   {name:14s} {'x'.join(map(str, graph.input_shape)):>11s} {ms(ours[1])} {ms(theirs[1]):>14s} "
                     f"{ratios[-1]:8.1f}x  {theirs[0] / ours[0]:9.1f}x  {same}")
    lines.append(f"   ratio torchinfo / cnnspec (CPU): median {statistics.median(ratios):.1f}x, lowest "
                 f"{min(ratios):.1f}x (goal >= {RATIO_GOAL:.0f}x: {'met' if min(ratios) >= RATIO_GOAL else 'NOT met'} "
                 "for every spec); wall also holds the waits for other processes")
    reached = sum(r >= RATIO_GOAL for r in ratios)
    ours_all = sum(result[f"cnnspec {p.stem}"][1] for p in specs)
    theirs_all = sum(result[f"torchinfo {p.stem}"][1] for p in specs)
    lines.append(f"   the whole zoo ({len(specs)} models, each once): cnnspec {ms(ours_all).strip()}, torchinfo "
                 f"{ms(theirs_all).strip()} CPU: {theirs_all / ours_all:.1f}x (goal >= {RATIO_GOAL:.0f}x: "
                 f"{'met' if theirs_all >= RATIO_GOAL * ours_all else 'NOT met'}); {reached} of {len(specs)} models "
                 f"reach it alone")
    if "resnet50" in graphs:
        graph = graphs["resnet50"]
        stats = torchinfo.summary(models["resnet50"], input_size=(1, *graph.input_shape), verbose=0)
        lines.append(f"   resnet50 MACs: cnnspec {graph.root.total_macs:,}, torchinfo {stats.total_mult_adds:,} "
                     "(torchinfo also counts BN and bias)")
    return lines


# --- 3. scaling with depth --------------------------------------------------------------------------

STAGE_SPEC = """\
name: deep
input: [8, 16, 16]
blocks:
  cbr:
    args: {{width: int}}
    layers:
      - conv: {{out: $width, kernel: 3, padding: 1, bias: false}}
      - batchnorm
      - relu
layers:
  - stage: {{name: body, block: cbr, repeat: {repeat}, args: {{width: 8}}}}
"""

FLAT_HEAD = "name: deep\ninput: [8, 16, 16]\nlayers:\n"
FLAT_BLOCK = ("  - conv: {out: 8, kernel: 3, padding: 1, bias: false}\n"
              "  - batchnorm\n"
              "  - relu\n")


def bench_scaling(runs: int, sizes: tuple[int, ...]) -> list[str]:
    lines = [(f"3. analysis of generated specs (conv-bn-relu x n/3), in-process, median of {runs}; CPU time, "
             "wall in brackets"),
             f"   {'layers':>6}  {'stage':>22}  {'us/layer':>8}  {'written out':>22}  {'us/layer':>8}"]
    per_layer: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            repeat = -(-size // 3)
            stage, flat = Path(tmp) / f"stage{size}.yaml", Path(tmp) / f"flat{size}.yaml"
            stage.write_text(STAGE_SPEC.format(repeat=repeat))
            flat.write_text(FLAT_HEAD + FLAT_BLOCK * repeat)
            leaves = len(analyse_file(stage).leaves())
            assert leaves == len(analyse_file(flat).leaves()) == 3 * repeat
            result = interleaved({"stage": lambda s=stage: analyse_file(s), "flat": lambda f=flat: analyse_file(f)},
                                 runs)
            (stage_wall, stage_cpu), (flat_wall, flat_cpu) = result["stage"], result["flat"]
            per_layer.append((stage_cpu / leaves * 1e6, flat_cpu / leaves * 1e6))
            lines.append(f"   {leaves:6d}  {ms(stage_cpu)} ({stage_wall:6.3f} s)  {per_layer[-1][0]:8.1f}  "
                         f"{ms(flat_cpu)} ({flat_wall:6.3f} s)  {per_layer[-1][1]:8.1f}")
    first, last = per_layer[0], per_layer[-1]
    worst = max(stage_wall, flat_wall, stage_cpu, flat_cpu)
    lines.append(f"   per-layer cost at {leaves} vs {sizes[0]} layers: stage {last[0] / first[0]:.2f}x, written out "
                 f"{last[1] / first[1]:.2f}x (1.00x = linear)")
    lines.append(f"   {leaves} layers: {worst:.2f} s at worst, {worst / DEEP_BUDGET_S:.2f} of the {DEEP_BUDGET_S} s "
                 f"budget ({'within' if worst <= DEEP_BUDGET_S else 'OVER'})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds for the whole-process timings")
    parser.add_argument("--torch-runs", type=int, default=9, help="rounds for the zoo against torchinfo")
    parser.add_argument("--specs", nargs="*", help="zoo models to compare with torchinfo (default: all)")
    parser.add_argument("--scale-runs", type=int, default=3, help="rounds for the generated deep specs")
    args = parser.parse_args()
    os.chdir(ROOT)
    before, busy0 = loadavg(), cpu_times()
    started = time.perf_counter()
    report = [*bench_process(args.runs), "", *bench_zoo(args.torch_runs, args.specs), "",
              *bench_scaling(args.scale_runs, (500, 1000, 5000))]
    busy1 = cpu_times()
    share = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    print(f"cnnspec front-end benchmark, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("\n".join(report))
    print(f"\nload average before: {before}; after: {loadavg()}; CPUs busy during the run: {share:.0%} "
          f"(this benchmark included); {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
