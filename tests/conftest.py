"""The two test tiers, and how a test lands in one.

* The **fast tier**, ``OMP_NUM_THREADS=1 python -m pytest -m "not slow" -q``, is the inner loop: the front end
  and its rules, in-process (reading and parsing YAML, elaboration, the shape / params / MACs / receptive
  field rules, the messages of ``tests/broken/``, expressions, budgets, reports, SARIF, the JSON Schema, the
  language server's document logic, ``check`` and ``summary`` through ``cli.main``). Budget: 20 s wall on a
  quiet 2-core machine, collection included (README, "Set up on a fresh machine", has the measured time).
* The **whole suite**, ``python -m pytest -q`` (what ``.ci/run`` runs: it passes no ``-m``), adds the
  ``slow`` tests.

A test is **slow** when it does any of these, however quick it is today (they grow, and they are what makes
the suite take minutes):

* builds a torch module (``build_module``, ``to_torch``, generated source run), trains, or runs torch;
* builds an ONNX graph or runs onnxruntime;
* spawns a process: ``cnnspec`` as a subprocess, git, Graphviz ``dot``, Neovim, pip, a language server;
* renders a diagram (DOT text included: the dot backend is not the front end);
* fuzzes (hypothesis over hundreds of cases), sleeps or waits on signals, timers or the file system;
* takes more than about half a second on a quiet machine for any other reason.

Everything else (pure front-end work, in-process, milliseconds) is fast. How to mark:

* a module whose tests are all slow goes into ``SLOW_MODULES`` below with the reason (or carries
  ``pytestmark = pytest.mark.slow``);
* in a module that mixes both, decorate each slow test with ``@pytest.mark.slow``, and keep at least one
  fast test per front-end concern, so the inner loop still catches a wrong shape rule or a changed message.

Check a new test with ``python -m pytest -m "not slow" --durations=10 tests/test_x.py``: nothing in the fast
tier should show more than a few tenths of a second. A run also lists, at its end, the tests outside the
slow tier that took over ``FAST_TEST_SECONDS`` (a note to act on, never a failure: times are not asserted).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `check` remembers passing files (cnnspec/commands/check_cache.py); tests patch limits in-process and
# must see every file analysed, and must not write into the user's ~/.cache. tests/test_check_cache.py
# turns it on, in a temporary directory. Subprocesses inherit this.
os.environ["CNNSPEC_NO_CACHE"] = "1"

FAST_TEST_SECONDS = 2.0  # generous: fast tests take milliseconds, a few tenths of a second on a loaded machine

SLOW_MODULES = {
    "test_atomic.py": "kills and signals real writer processes mid-write",
    "test_check_accepts_builds.py": "builds every accepted spec in the torch, ONNX and dot backends",
    "test_checkpoints.py": "loads and writes torch / safetensors checkpoints, in subprocesses too",
    "test_differential.py": "torch against onnxruntime on random specs",
    "test_dot_cli.py": "renders with Graphviz",
    "test_dot_diagram.py": "renders DOT diagrams of the zoo",
    "test_dot_render.py": "renders with Graphviz",
    "test_extras.py": "runs cnnspec in subprocesses with extras hidden",
    "test_fuzz.py": "hypothesis over thousands of cases, backends and subprocesses included",
    "test_gitrev_hostile.py": "builds git repositories with git subprocesses",
    "test_importtime.py": "times imports in fresh interpreters",
    "test_lsp_neovim.py": "drives Neovim against `cnnspec lsp`",
    "test_lsp_server.py": "speaks LSP to a `cnnspec lsp` process",
    "test_onnx_build.py": "builds ONNX graphs",
    "test_onnx_memory.py": "builds ONNX graphs in subprocesses and measures their memory",
    "test_onnx_ops.py": "runs onnxruntime",
    "test_onnx_parity.py": "torch against onnxruntime on the zoo",
    "test_onnx_zoo.py": "builds and runs the zoo in onnxruntime",
    "test_ops_random.py": "random settings against torch",
    "test_packaging.py": "builds and installs a wheel",
    "test_paths.py": "builds every target into odd output paths",
    "test_precommit.py": "installs and runs pre-commit hooks",
    "test_references.py": "compares against hand-written torch modules and onnxruntime",
    "test_outputs.py": "several outputs through torch, onnxruntime, run and the segmentation zoo",
    "test_pool_shapes.py": "pool output sizes against torch over a grid of settings",
    "test_reproducible.py": "builds the zoo in several processes",
    "test_resources.py": "runs `cnnspec check` in subprocesses (the limits' in-process checks: test_hostile.py)",
    "test_run_bench.py": "runs onnxruntime",
    "test_smallnets.py": "unet, dcgan, tcn, espcn against hand-written torch modules",
    "test_torch_api.py": "builds and pickles torch modules",
    "test_torch_build.py": "generates and compiles torch source through the CLI",
    "test_torch_fixed.py": "builds torch modules",
    "test_torch_names.py": "builds torch modules",
    "test_torch_ops.py": "generates and runs torch source",
    "test_torch_training.py": "trains torch modules",
    "test_torch_zoo.py": "builds the zoo in torch",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not slow"`` the modules that are slow throughout are not even imported: their torch, onnx
    and hypothesis imports were 2-3 s of the fast tier's collection."""
    if " ".join(str(config.getoption("markexpr") or "").split()) == "not slow" and collection_path.name in SLOW_MODULES:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


_SLOW_IN_FAST_TIER: list[tuple[str, float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.duration > FAST_TEST_SECONDS and "slow" not in report.keywords:
        _SLOW_IN_FAST_TIER.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SLOW_IN_FAST_TIER:
        terminalreporter.section(f"tests outside the slow tier that took over {FAST_TEST_SECONDS:g} s (tests/conftest.py)")
        for nodeid, seconds in _SLOW_IN_FAST_TIER:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}: mark it slow, or make it fast")


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the tests that type-check generated code with the same options: reading torch's
    stubs is most of a cold run (about 10 s), so the second run reuses the first one's."""
    return tmp_path_factory.mktemp("mypy_cache")
