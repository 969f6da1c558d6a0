"""The differential fuzz: one random runnable spec (``tools/runnable_specs.py``) through cnnspec's two
compilers, the generated PyTorch module and the ONNX graph run by onnxruntime, with the same weights and
the same input; the outcome classified.

For spec number ``seed``: ``model = cnnspec.load(path)``; ``net = model.to_torch().eval()`` with
``torch.manual_seed(seed)`` and every constant-initialised tensor (norm scales and shifts, BatchNorm's
running statistics, layer scales, zero biases) replaced by seeded random values, so that none of them
hides a difference; ``model.to_onnx(path, module=net)``; then, at batch 1 and batch 3, the same random
input through ``net`` and through onnxruntime (CPU, one thread).

Outcomes (``KINDS``): ``agree``; ``rejected`` (``cnnspec.load`` refused the spec: the generator's miss,
counted, not a backend failure); and the failures: ``check-crash`` (an exception other than a one-line
SpecError from ``load``), ``torch-build`` (``to_torch`` raised), ``onnx-build`` (``to_onnx`` raised),
``torch-error`` (``net(x)`` raised although ``check`` accepted the spec), ``ort-error`` (onnxruntime
refused the model or raised running it), ``shape`` (an output shape other than the analysis' one),
``input-mutated`` (``net(x)`` changed the caller's ``x``) and ``mismatch`` (torch and onnxruntime
disagree beyond the tolerance). A case's kind is its first problem; later ones are kept in ``also``.

Tolerance: ``|ort - torch| <= ATOL * max(1, max|torch|) + RTOL * |torch|`` elementwise. Both sides compute
in float32 (eps 1.2e-7) but sum in different orders (oneDNN / ATen against MLAS, with different
convolution algorithms), so each output differs by a few hundred ulps of the largest intermediate
values after a dozen layers; normalisations of nearly constant inputs magnify that by up to
1/sqrt(eps) (about 300 for eps 1e-5). RTOL = 1e-4 (about 800 ulps) and ATOL = 1e-4 scaled by the
output's magnitude cover that with a margin, while any semantic difference (a padding, an axis, a
missing bias or affine term, a wrong window) changes outputs by 1e-2 or more of their scale; the
largest ratio of a difference to its tolerance is reported so the margin is visible. A case past the
tolerance is judged once more against a float64 run of the same torch module: it is a mismatch only
when onnxruntime is further from that exact answer than the tolerance plus ``FLOAT64_MARGIN`` (10) times
the larger of torch's own float32 error and the case's sensitivity to rounding (the change of the float64
output when every layer's output is perturbed by a relative ``NOISE`` of 1e-6, about 8 float32 ulps).
An ill-conditioned case (a norm of nearly constant values, where a few ulps of the mean become 1e-4 of
the output) then agrees, and is counted as such; a semantic difference does not, since in a
well-conditioned network neither figure grows past about 1e-6 of the output."""

from __future__ import annotations

import linecache
import shutil
import sys
import tempfile
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RTOL = 1e-4
ATOL = 1e-4
FLOAT64_MARGIN = 10.0
NOISE = 1e-6
BATCHES = (1, 3)
FAILURES = ("check-crash", "torch-build", "onnx-build", "torch-error", "ort-error", "shape", "input-mutated",
            "mismatch")
KINDS = ("agree", "rejected", *FAILURES)


@dataclass
class Result:
    seed: int
    kind: str
    detail: str = ""
    also: list[str] = field(default_factory=list)  # further problems of the same case, "kind: detail"
    max_abs: float = 0.0  # largest |ort - torch| over both batches
    ratio: float = 0.0  # largest |ort - torch| / tolerance (above 1: a mismatch)
    ill_conditioned: bool = False  # agreed only against the float64 reference (see _against_float64)
    cause: str = ""  # a known bug this failure comes from (``KNOWN_CAUSES``), else empty

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


@dataclass
class Problems:
    """What one comparison of the two backends found, in the order found."""

    items: list[tuple[str, str]] = field(default_factory=list)
    max_abs: float = 0.0
    ratio: float = 0.0
    ill_conditioned: bool = False

    def add(self, kind: str, detail: str) -> None:
        self.items.append((kind, detail))

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.items}

    def result(self, seed: int) -> Result:
        if not self.items:
            return Result(seed, "agree", max_abs=self.max_abs, ratio=self.ratio,
                          ill_conditioned=self.ill_conditioned)
        (kind, detail), *rest = self.items
        result = Result(seed, kind, detail, [f"{k}: {d}" for k, d in rest], self.max_abs, self.ratio)
        result.cause = known_cause(result)
        return result


# Failures that come from bugs already reported (docs/robustness.md, "Differential fuzz"), told apart by
# their symptom; ``D4`` is confirmed by running the module again without in-place activations.
KNOWN_CAUSES = {
    "C9": "3D avg/sum pool with a window larger than the input: check accepts, torch refuses",
    "D4": "an in-place activation on a tensor the block did not create (a shortcut's input)",
    "N1": "a norm over a single value (batchnorm without running stats, or groupnorm with one value per "
          "group): torch refuses batch 1",
}


def known_cause(result: Result) -> str:
    if result.kind == "torch-error" and "smaller than kernel size" in result.detail:
        return "C9"
    if result.kind == "torch-error" and "Expected more than 1 value per channel" in result.detail:
        return "N1"
    return ""


def _last_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1][:300] if text else type(exc).__name__


def randomise(net: Any, seed: int) -> None:
    """Replace every constant-initialised trainable parameter and every float buffer by seeded random
    values: norm scales in [0.5, 1.5], shifts and zero biases ~ N(0, 0.2), layer scales in [0.5, 1.5],
    running means ~ N(0, 0.5), running variances in [0.5, 2]. Frozen parameters (fixed kernels) keep
    the spec's values."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.named_buffers():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.5)
        for _, t in net.named_parameters():
            if not t.requires_grad or t.numel() == 0 or not bool((t == t.flatten()[0]).all()):
                continue
            if float(t.flatten()[0]) == 0.0:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
            else:
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)


def compare(want: Any, got: Any) -> tuple[float, float]:
    """(largest |got - want|, largest ratio of a difference to its tolerance)."""
    import numpy as np

    if want.size == 0:
        return 0.0, 0.0
    want, got = want.astype(np.float64), got.astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))  # equal infinities (a max over padding only)
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    tolerance = ATOL * scale + RTOL * np.where(np.isfinite(want), np.abs(want), 0.0)
    return float(diff.max()), float((diff / tolerance).max())


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _forget(net: Any) -> None:
    """Drop the generated module from ``sys.modules`` and ``linecache`` (``to_torch`` registers both), so a
    long run does not keep every spec's source alive."""
    name = type(net).__module__
    module = sys.modules.pop(name, None)
    if module is not None:
        linecache.cache.pop(getattr(module, "__file__", ""), None)


def run_spec(seed: int, text: str, workdir: Path) -> Result:
    """Spec ``text`` (number ``seed``) through both compilers; ``workdir`` holds its files."""
    import cnnspec
    from cnnspec.errors import SpecError

    spec = workdir / f"rand{seed}.yaml"
    spec.write_text(text)
    try:
        model = cnnspec.load(spec)
    except SpecError as exc:
        return Result(seed, "rejected", str(exc).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - a crash of the front end is a finding
        return Result(seed, "check-crash", _last_line(exc))
    try:
        return _run_model(seed, model, workdir)
    finally:
        spec.unlink(missing_ok=True)


def _run_model(seed: int, model: Any, workdir: Path) -> Result:
    import torch

    torch.manual_seed(seed)
    try:
        net = model.to_torch().eval()
    except Exception as exc:  # noqa: BLE001
        return Result(seed, "torch-build", _last_line(exc))
    try:
        randomise(net, seed)
        onnx_path = workdir / f"rand{seed}.onnx"
        try:
            model.to_onnx(onnx_path, module=net)
            session = _session(onnx_path)
        except Exception as exc:  # noqa: BLE001
            return Result(seed, "ort-error" if onnx_path.exists() else "onnx-build", _last_line(exc))
        finally:
            onnx_path.unlink(missing_ok=True)
        result = compare_backends(seed, model.graph, net, session).result(seed)
        if result.kind in ("input-mutated", "mismatch") and _without_inplace(seed, model.graph, net, session):
            result.cause = "D4"
        return result
    finally:
        _forget(net)


def _without_inplace(seed: int, graph: Any, net: Any, session: Any) -> bool:
    """Whether the backends agree once every in-place activation of ``net`` is made out-of-place."""
    changed = False
    for module in net.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace, changed = False, True
    return changed and not compare_backends(seed, graph, net, session).items


def compare_backends(seed: int, graph: Any, net: Any, session: Any) -> Problems:
    """``net`` and the onnxruntime ``session`` on the same seeded inputs, at every batch size."""
    import torch

    problems = Problems()
    for batch in BATCHES:
        x = torch.randn(batch, *graph.input_shape, generator=torch.Generator().manual_seed(seed + batch))
        if not _compare_batch(batch, x, graph.output_shape, net, session, problems):
            break
    return problems


def _compare_batch(batch: int, x: Any, shape: tuple[int, ...], net: Any, session: Any, problems: Problems
                   ) -> bool:
    """One batch through both; False when the comparison cannot go on."""
    import torch

    original = x.clone()
    try:
        with torch.no_grad():
            want = net(x)
    except Exception as exc:  # noqa: BLE001
        problems.add("torch-error", f"batch {batch}: {_last_line(exc)}")
        return False
    if not torch.equal(x, original):
        problems.add("input-mutated", f"batch {batch}: net(x) changed x in {int((x != original).sum())} of "
                     f"{x.numel()} places")
    if tuple(want.shape) != (batch, *shape):
        problems.add("shape", f"batch {batch}: torch gives {tuple(want.shape)}, the analysis {(batch, *shape)}")
        return False
    try:
        got = session.run(None, {session.get_inputs()[0].name: original.numpy()})[0]
    except Exception as exc:  # noqa: BLE001
        problems.add("ort-error", f"batch {batch}: {_last_line(exc)}")
        return False
    if got.shape != tuple(want.shape):
        problems.add("shape", f"batch {batch}: onnxruntime gives {got.shape}, torch {tuple(want.shape)}")
        return False
    diff, worst = compare(want.numpy(), got)
    if worst > 1.0:  # ill-conditioned, or a real difference: ask a float64 run of the same module
        worst, conditioned = _against_float64(net, original, want, got)
        problems.ill_conditioned |= conditioned
    problems.max_abs, problems.ratio = max(problems.max_abs, diff), max(problems.ratio, worst)
    if worst > 1.0:
        problems.add("mismatch", f"batch {batch}: max |ort - torch| = {diff:.3g} ({worst:.3g}x the tolerance)")
    return True


def _against_float64(net: Any, x: Any, want: Any, got: Any) -> tuple[float, bool]:
    """The ratio of onnxruntime's difference from a float64 run of ``net`` to the tolerance widened by
    ``FLOAT64_MARGIN`` times the case's own float32 sensitivity (see ``_sensitivity``); and whether that
    widening made it agree."""
    import numpy as np

    try:
        exact, sensitivity = _sensitivity(net, x)
    except Exception:  # noqa: BLE001 - no float64 reference: the plain comparison stands
        return compare(want.numpy(), got)[1], False
    own_error = compare(exact, want.numpy().astype(np.float64))[0]
    ort_error = np.abs(got.astype(np.float64) - exact)
    finite = np.abs(exact[np.isfinite(exact)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    tolerance = ATOL * scale + RTOL * np.abs(exact) + FLOAT64_MARGIN * max(own_error, sensitivity)
    worst = float(np.nan_to_num(ort_error / tolerance, nan=np.inf).max())
    return worst, worst <= 1.0


def _sensitivity(net: Any, x: Any) -> tuple[Any, float]:
    """(the output of a float64 copy of ``net``, the largest change of that output when every layer's
    output is perturbed by a relative ``NOISE``, about 8 float32 ulps: how much rounding inside the
    network can move the result. Near zero for a well-conditioned case; large where a norm divides by the
    spread of nearly constant values.)"""
    import copy

    import numpy as np
    import torch

    exact_net = copy.deepcopy(net).double()
    with torch.no_grad():
        exact = exact_net(x.clone().double()).numpy()
        gen = torch.Generator().manual_seed(0)

        def perturb(_module: Any, _inputs: Any, output: Any) -> None:
            # in place, so that a layer handing back (a view of) its input keeps the aliasing it had
            output.mul_(1 + NOISE * torch.randn(output.shape, generator=gen, dtype=output.dtype))

        for module in exact_net.modules():
            if not any(True for _ in module.children()):
                module.register_forward_hook(perturb)
        noisy = exact_net(x.clone().double()).numpy()
    same = (noisy == exact) | (np.isnan(noisy) & np.isnan(exact))
    with np.errstate(invalid="ignore"):
        change = np.where(same, 0.0, np.abs(noisy - exact))
    return exact, float(np.nan_to_num(change, nan=np.inf).max()) if change.size else 0.0


def run_seed(seed: int, workdir: Path) -> tuple[Result, str]:
    """Spec number ``seed``: its result and its text."""
    from tools.runnable_specs import spec_text

    text = spec_text(seed)
    return run_spec(seed, text, workdir), text


class DiffWorker:
    """Runs cases one after another in this process (one torch thread, a scratch directory); the long
    run's workers (``tools/fuzzpool.py``) and the test use it."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)
        # PyTorch warns that 'same' padding with an even kernel copies the input: expected here.
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)
        self.workdir = Path(tempfile.mkdtemp(prefix="cnnspec-diff-"))

    def run(self, seed: int) -> tuple[Result, str]:
        """The case's result, and its spec text when it did not agree."""
        result, text = run_seed(seed, self.workdir)
        return result, "" if result.kind == "agree" else text

    def close(self) -> int:
        """Clean up; returns the process's peak RSS in KiB."""
        import resource

        shutil.rmtree(self.workdir, ignore_errors=True)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------------------------------- summaries

@dataclass
class Summary:
    """The counts of a run, for the table of ``tools/fuzz_differential.py`` and the test's message."""

    results: list[Result] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)  # spec text of every failed or rejected case
    lost: list[tuple[int, str]] = field(default_factory=list)  # (seed, "hang" | "crash") in long runs

    def add(self, result: Result, text: str = "") -> None:
        self.results.append(result)
        if result.kind != "agree" and text:
            self.texts[result.seed] = text

    def of(self, kind: str) -> list[Result]:
        return sorted((r for r in self.results if r.kind == kind), key=lambda r: r.seed)

    @property
    def failures(self) -> list[Result]:
        return sorted((r for r in self.results if r.failed), key=lambda r: r.seed)

    def unexplained(self) -> list[Result]:
        return [r for r in self.failures if not r.cause]

    def table(self, seconds: float | None = None, notes: tuple[str, ...] = (), seeds_shown: int = 20) -> str:
        agree = self.of("agree")
        rejected = self.of("rejected")
        total = len(self.results) + len(self.lost)
        ill = sum(r.ill_conditioned for r in agree)
        lines = [f"{'cases':<34}{total:>8,}",
                 f"{'agreements':<34}{len(agree):>8,}  ({ill} only against the float64 reference)",
                 f"{'rejected by check (generator)':<34}{len(rejected):>8,}  ({_percent(len(rejected), total)})"]
        for kind in FAILURES:
            found = self.of(kind)
            by_cause = Counter(r.cause or "unexplained" for r in found)
            split = ", ".join(f"{cause} {count}" for cause, count in sorted(by_cause.items()))
            lines.append(f"{kind:<34}{len(found):>8,}" + (f"  ({split})" if found else ""))
        for how, label in (("hang", "hangs"), ("crash", "crashes")):
            lines.append(f"{label + ' (worker killed)':<34}{sum(h == how for _, h in self.lost):>8,}")
        if agree:
            lines.append(f"{'max |ort - torch| (agreements)':<34}{max(r.max_abs for r in agree):>8.2g}  "
                         f"(largest share of the tolerance: {max(r.ratio for r in agree):.3g})")
        if seconds is not None:
            lines.append(f"{'time':<34}{seconds:>7.0f}s  ({1000 * seconds / max(total, 1):.1f} ms per case)")
        lines += [*notes, *self._seeds(seeds_shown)]
        return "\n".join(lines)

    def _seeds(self, shown: int) -> list[str]:
        lines = []
        groups: dict[tuple[str, str], list[int]] = {}
        for r in [*self.failures, *self.of("rejected")]:
            groups.setdefault((r.kind, r.cause or "unexplained"), []).append(r.seed)
        for (kind, cause), seeds in groups.items():
            more = f" ... ({len(seeds)} in all)" if len(seeds) > shown else ""
            lines.append(f"  {kind} [{cause}]: seeds {', '.join(map(str, seeds[:shown]))}{more}")
        for seed, how in self.lost[:shown]:
            lines.append(f"  {how}: seed {seed}")
        return lines

    def example(self, result: Result) -> str:
        """One failure with its spec, as a reproducer."""
        also = "".join(f"\n  also {a}" for a in result.also)
        return (f"seed {result.seed}: {result.kind}{f' [{result.cause}]' if result.cause else ''}: "
                f"{result.detail}{also}\n{self.texts.get(result.seed, '')}")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0%"
