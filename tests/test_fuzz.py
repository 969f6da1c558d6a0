"""Fuzzing (issue 7): mutated zoo specs, random YAML and random text through ``check``, ``summary`` (text,
JSON, markdown) and, for specs that pass, ``build --target torch`` (the source compiled) and ``dot``.

Every outcome is a success, or exit 1 with one ``path:line:col: error: ...`` line (exit 2 with one
``cnnspec CMD: error: ...`` line for a usage error such as summarising a block library); never a
traceback, no hang (a generous timeout, not a time limit: ``HANG_SECONDS``), and at most 64 MB allocated by
one case (tracemalloc's peak).
Deterministic (``derandomize``, no example database) and about 25 s; ``tools/fuzz_long.py`` runs
100,000 cases of the same generator."""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.fuzzcases import ERROR_LINE, Outcome, invoke, make_case, prepare, run_case

ROOT = Path(__file__).resolve().parents[1]
# A hang guard, not a benchmark (tools/fuzz_long.py measures the cases): a case typically takes ~0.05 s, the
# largest legitimate ones (a stage repeated 50,000 times, refused at the 50,000-layer limit) about 1 s of CPU
# alone and 61 s under tracemalloc on two cores shared with six other jobs. Only a case still running after
# this long fails, interrupted (SIGALRM) so that it fails instead of hanging the suite.
HANG_SECONDS = 300
MAX_ALLOCATED = 64 * 2**20
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cases' directory, after one warm-up pass (imports and caches are not counted against a case)."""
    path = prepare(tmp_path_factory.mktemp("fuzz"))
    for seed in range(20):
        rng = random.Random(seed)
        run_case(make_case(rng), path, rng, backends=True)
    return path


class Hang(BaseException):
    """Raised into a case that runs past ``HANG_SECONDS`` (a BaseException: ``invoke`` classifies every
    ``Exception`` as a traceback outcome, and this must end the test instead)."""


@contextlib.contextmanager
def _hang_guard(data: bytes) -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {HANG_SECONDS} s on {data[:2000]!r}")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _assert_clean(outcomes: list[Outcome], data: bytes) -> None:
    for outcome in outcomes:
        assert outcome.clean, f"{outcome.kind} for {outcome.argv} on {data[:2000]!r}:\n{outcome.detail}"


def _run(data: bytes, tree: Path, rng: random.Random, backends: bool) -> list[Outcome]:
    tracemalloc.start()  # only while the case runs: tracing slows hypothesis' own work too
    try:
        with _hang_guard(data):
            outcomes = run_case(data, tree, rng, backends)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_ALLOCATED, f"{peak / 2**20:.0f} MB allocated for {data[:2000]!r}"
    return outcomes


@pytest.mark.slow
@settings(FUZZ, max_examples=750)
@given(rng=st.randoms(use_true_random=False), backends=st.integers(0, 3))
def test_mutated_zoo_specs(tree: Path, rng: random.Random, backends: int) -> None:
    data = make_case(rng)
    _assert_clean(_run(data, tree, rng, backends == 0), data)


# Random data shaped like YAML documents: nested mappings and lists of spec words and odd scalars.
SCALARS = (st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
           | st.text(max_size=20) | st.sampled_from(["relu", "conv", "$x", "$width * 4", "name", "layers"]))
KEYS = st.sampled_from(["name", "input", "layers", "params", "blocks", "use", "out", "kernel", "conv", "relu",
                        "stage", "residual", "body", "repeat"]) | st.text(max_size=8)
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=40)


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(data=DATA, command=st.sampled_from([["check"], ["summary"], ["summary", "--format", "json"]]))
def test_random_yaml(tree: Path, data: object, command: list[str]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True).encode()
    spec = tree / "random.yaml"
    spec.write_bytes(text)
    with _hang_guard(text):
        outcome = invoke([*command, str(spec)])
    _assert_clean([outcome], text)


@settings(FUZZ, max_examples=500)
@given(text=st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("{}[]:-&*!|>'\"#\n\t ")),
                    max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_random_text(tree: Path, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    spec = tree / "text.yaml"
    spec.write_bytes(data)
    with _hang_guard(data):
        outcome = invoke(["summary", str(spec)])
    _assert_clean([outcome], data)


def test_the_generator_reaches_every_stage(tree: Path) -> None:
    """The mutations are not all syntax errors: a fixed sample of 300 cases passes, and fails in the loader,
    validation, resolution and analysis (told apart by their wording)."""
    kinds: collections.Counter[str] = collections.Counter()
    stages: collections.Counter[str] = collections.Counter()
    for seed in range(300):
        rng = random.Random(seed)
        (outcome, *_) = run_case(make_case(rng), tree, rng)
        kinds[outcome.kind] += 1
        stages[_stage(outcome.detail)] += outcome.kind == "error"
    assert kinds["ok"] >= 20 and kinds["error"] >= 150 and kinds["ok"] + kinds["error"] + kinds["usage"] == 300
    assert all(stages[s] >= 5 for s in ("yaml", "validate", "resolve", "analyse")), stages


def _stage(line: str) -> str:
    if "YAML" in line or "UTF-8" in line or "duplicate key" in line or "control character" in line:
        return "yaml"
    if "unknown" in line or "expected" in line or "must be" in line or "missing" in line or "option" in line:
        return "validate"
    if "$" in line or "import" in line or "name" in line or "block" in line:
        return "resolve"
    return "analyse"


def test_errors_through_a_real_process(tree: Path) -> None:
    """Exit status 1, located lines on stderr (every independent error), no traceback, as a user's shell sees it."""
    cases = []
    seed = 0
    while len(cases) < 6:
        rng = random.Random(seed)
        data = make_case(rng)
        if run_case(data, tree, random.Random(0))[0].kind == "error":
            cases.append(data)
        seed += 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for index, data in enumerate(cases):
        spec = tree / f"proc{index}.yaml"
        spec.write_bytes(data)
        done = subprocess.run([sys.executable, "-m", "cnnspec", "check", str(spec)], check=False,
                              capture_output=True, text=True, env=env, timeout=60)
        lines = done.stderr.splitlines()
        assert done.returncode == 1 and lines and all(ERROR_LINE.match(line) for line in lines), done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
