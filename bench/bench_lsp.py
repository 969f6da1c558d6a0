"""How long from typing to seeing: ``cnnspec lsp``'s latency from a ``didChange`` of one line of
``specs/resnet50.yaml`` to its published diagnostics and to its inlay hints.

Each round edits the width of ``conv1`` (``out: 64`` <-> ``out: 65``, an incremental change of one line, so
every round re-analyses the whole network and changes every shape after it), sends the change and at once
an ``inlayHint`` request (as VS Code does), and times, from the moment the change was written to the
server's stdin:

  * diagnostics  the ``publishDiagnostics`` notification of that version;
  * hints        the response to the ``inlayHint`` request (the server answers it once the analysis of the
                 new text is stored).

Interleaved, round by round, on three variants: the server with the default debounce (``cnnspec lsp``,
5 ms), the server with no debounce (``--debounce 0``: what the debounce costs), and the in-process analysis
of the same text (``analyse_document``: the front end, budgets and ranges, without the protocol). Medians;
the machine's load is recorded as in the other benchmarks (load average before and after, busy share of
all CPUs during the run). Target: <= 50 ms median to diagnostics and hints. Run from the repository root:

    python bench/bench_lsp.py [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_check import cpu_times, loadavg
from lsp_client import LspClient, position, span

from cnnspec.lsp.document import analyse_document
from cnnspec.lsp.scheduler import DEBOUNCE_S

SPEC = ROOT / "specs" / "resnet50.yaml"
TARGET_MS = 50.0
LINE, START = 8, 16  # `64` in `  - conv: {out: 64, kernel: 7, ...}` (0-based)
WHOLE = {"start": position(0, 0), "end": position(100, 0)}


class Session:
    """One server with resnet50 open."""

    def __init__(self, *args: str) -> None:
        self.client = LspClient(*args)
        self.client.initialize()
        self.uri = self.client.open(SPEC)
        self.client.diagnostics(self.uri, 1)
        self.version = 1

    def edit(self) -> tuple[float, float]:
        """Milliseconds from the change to its diagnostics, and to its inlay hints."""
        self.version += 1
        width = "65" if self.version % 2 else "64"
        after = len(self.client.notifications)
        start = time.perf_counter()
        self.client.change(self.uri, self.version, [{"range": span(LINE, START, START + 2), "text": width}])
        request = self.client.send_request("textDocument/inlayHint", {"textDocument": {"uri": self.uri},
                                                                       "range": WHOLE})
        _, published, diagnostics = self.client.diagnostics(self.uri, self.version, after=after)
        answered, hints = self.client.response(request)
        assert diagnostics == [] and hints and hints[0]["label"] == f"→ {width}x112x112", (diagnostics, hints[:1])
        return (published - start) * 1000, (answered - start) * 1000

    def close(self) -> None:
        self.client.close()


def in_process() -> float:
    text = SPEC.read_text()
    start = time.perf_counter()
    result = analyse_document(text, str(SPEC))
    elapsed = (time.perf_counter() - start) * 1000
    assert result.problems == [] and result.graph is not None
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    before, busy0 = loadavg(), cpu_times()
    default, immediate = Session(), Session("--debounce", "0")
    times: dict[str, list[float]] = {name: [] for name in (
        "default: diagnostics", "default: hints", "no debounce: diagnostics", "no debounce: hints", "in-process")}
    try:
        for round_ in range(args.runs + 3):  # 3 warm-up rounds
            measured = (*default.edit(), *immediate.edit(), in_process())
            if round_ >= 3:
                for name, value in zip(times, measured):
                    times[name].append(value)
    finally:
        default.close()
        immediate.close()
    busy1 = cpu_times()
    share = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    print(f"cnnspec lsp latency, specs/resnet50.yaml, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{args.runs} interleaved rounds (default debounce {DEBOUNCE_S * 1000:g} ms)")
    for name, values in times.items():
        q = statistics.quantiles(values, n=10)
        print(f"  {name:26s} median {statistics.median(values):6.1f} ms   p10 {q[0]:6.1f}   p90 {q[-1]:6.1f}")
    worst = max(statistics.median(times["default: diagnostics"]), statistics.median(times["default: hints"]))
    print(f"  target <= {TARGET_MS:g} ms median: {'met' if worst <= TARGET_MS else 'MISSED'} ({worst:.1f} ms)")
    print(f"load average before: {before}; after: {loadavg()}; CPUs busy during the run: {share:.0%} "
          "(this benchmark included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
