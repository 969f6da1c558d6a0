"""Fuzz cases for cnnspec's front end and backends: mutated zoo specs and random YAML, and a runner that
classifies what cnnspec does with each.

A case is made from a ``random.Random`` (the hypothesis suite draws it, ``tools/fuzz_long.py`` seeds it),
so every case is reproducible from its seed. It starts from a zoo spec, an odd extra one, a random
runnable spec (``tools/runnable_specs.py``) or random YAML. Mutations: delete, duplicate, retype, move and rename keys
and list items, random and extreme values (0, negatives, 2^63, 10^400, 1e308), ``$`` expressions,
hostile names (quotes, newlines, look-alikes, dunders, keywords), unicode, deep nesting, hostile ``use:``
paths; then, on the YAML text: deleted, duplicated and swapped lines, inserted tokens (anchors, tags,
brackets, tabs, control characters), truncation and byte flips (invalid UTF-8).

The runner calls ``cnnspec.cli.main`` in-process and classifies the outcome: ``ok`` (exit 0), ``error``
(exit 1 and one ``path:line:col: error: ...`` line), ``usage`` (exit 2 and one ``cnnspec CMD: error:``
line), or a failure: ``traceback`` (an exception escaped), ``bad-error`` (any other exit or output).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import random
import re
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.runnable_specs import random_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
ERROR_LINE = re.compile(r"^.+:\d+:\d+: error: .+$")
USAGE_LINE = re.compile(r"^cnnspec [a-z]+: error: .+$")
CLEAN = ("ok", "error", "usage")

# Specs that are valid but odd: the backends must take them too.
EXTRA_SEEDS = {
    "odd_1d": """\
name: odd_1d
params: {w: 4, p: 0.25}
input: [2, 33]
layers:
  - conv: {out: $w, kernel: 5, padding: same, padding_mode: circular, name: _x}
  - concat: {branches: [[], [conv: {out: 3, kernel: 1}], [maxpool: {kernel: 3, stride: 1, padding: 1}]]}
  - groupnorm: {groups: 1}
  - dropout: {p: $p}
  - adaptive_maxpool: {out: 5}
  - flatten
  - linear: {out: 1, name: L0}
""",
    "odd_3d": """\
name: odd_3d
input: [1, 5, 6, 7]
blocks:
  unit:
    args: {c: int, s: 1}
    layers:
      - residual:
          body: [conv: {out: $c, kernel: 3, stride: $s, padding: 1}, batchnorm, silu]
          shortcut: {projection: auto}
layers:
  - stage: {name: s, block: unit, repeat: 2, args: {c: 4}, first: {s: 2}}
  - sequential: {name: deep, layers: [sequential: {layers: [identity, sumpool: {kernel: 1}]}]}
  - global_maxpool
  - flatten
  - linear: {out: 2}
""",
    "odd_flat": """\
name: odd_flat
input: [7]
layers:
  - linear: {out: 3, bias: false}
  - layernorm: {over: last}
  - softmax: {over: last}
""",
}

NAMES = ["x", "conv1", "0", "7", "a'b", 'a"b', "a\nb", "a\tb", "с", "ꓚonv", "Ｃonv", "__init__", "__class__",
         "class", "def", "None", "match", "forward", "training", "state_dict", "a.b", "a-b", " ", "",
         "x" * 65, "\u202econv", "conv\u200b", "😀", "-1", "1.5", "${}", "$x"]
STRINGS = ["", " ", "relu", "conv", "same", "valid", "channels", "last", "auto", "always", "none", "$", "$$",
           "$x", "$num_classes", "$width * 4", "$in_channels + ", "$(", "$width // 0", "$width % 0",
           "max($width)", "min()", "$__class__", "$width ** 2", "$" + "(" * 300, "$1" * 100,
           "__import__('os')", "{{ 7*7 }}", "'; import os", "\u0000", "\u202e", "ß", "İ", "a" * 5000]
EXTREMES = [0, -1, 1, 2, 3, 7, -(2**31), 2**31, 2**63 - 1, 2**63, 2**64, 10**12, 10**18, 10**30, 10**400,
            0.0, -0.0, 0.5, 1.5, 1e-300, 1e308, -1e308, True, False, None, [], {}, [[]], [0], [1, 2, 3],
            [2**62, 2**62], [-1, -1], [1] * 5]
KEYS = ["name", "input", "layers", "params", "use", "blocks", "constraints", "description", "out", "kernel",
        "stride", "padding", "dilation", "groups", "bias", "over", "p", "dims", "repeat", "block", "args",
        "first", "body", "shortcut", "branches", "projection", "weights", "trainable", "eps", "momentum",
        "affine", "init", "slope", "approximate", "padding_mode", "ceil_mode", "norm", "max_params",
        "max_macs", "input_sizes", "on", "yes", "null", "Name", "kernal", "__proto__"]
USES = ["blocks/resnet.yaml", "../outside.yaml", "/etc/passwd", "case.yaml", "link/outside.yaml",
        "blocks/missing.yaml", "blocks", "", "blocks/cycle_a.yaml", "//", "\u0000"]
TOKENS = ["&a ", "*a", "!!python/object/apply:os.system ['true'] ", "!!binary ", "!custom ", "{", "}", "[", "]",
          '"', "'", ": ", "- ", "#", "? ", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\t", "\x00", "\x07",
          "\u202e", "\ufeff", "\r", "@", "`", "<<: *a\n", "=", "~", ",", "$", "0x", "1e400", ".nan", "010"]


def _ops() -> list[str]:
    from cnnspec.frontend.syntax import LAYER_OPS as OPS

    return sorted(OPS)


def seeds() -> dict[str, Any]:
    """The zoo (and the odd extra specs) as data, keyed by name."""
    out: dict[str, Any] = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml"))}
    out.update({name: yaml.safe_load(text) for name, text in EXTRA_SEEDS.items()})
    return out


_SEEDS: dict[str, Any] | None = None
_OPS: list[str] = []


RUNNABLE_SHARE = 0.2  # of the mutated cases start from a random runnable spec (tools/runnable_specs.py)


def _seed_data(rng: random.Random) -> Any:
    """What a mutated case starts from: a zoo or extra spec, or a random runnable one (every op and
    structure, in small odd sizes)."""
    global _SEEDS, _OPS
    if _SEEDS is None:
        _SEEDS, _OPS = seeds(), _ops()
    if rng.random() < RUNNABLE_SHARE:
        return random_spec(rng.randrange(2**32))
    return copy.deepcopy(_SEEDS[rng.choice(sorted(_SEEDS))])


# ---------------------------------------------------------------------------------------------- values

def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.25:
        return copy.deepcopy(rng.choice(EXTREMES))  # never share (or grow) the table's lists
    if roll < 0.4:
        return rng.choice(STRINGS)
    if roll < 0.5:
        return rng.choice(NAMES)
    if roll < 0.6:
        return rng.randint(-5, 300)
    if roll < 0.65:
        return rng.choice(_OPS or ["relu"])
    if roll < 0.7:
        return _expression(rng)
    if depth > 4 or roll < 0.8:
        return rng.uniform(-2, 2)
    if roll < 0.9:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _expression(rng: random.Random) -> str:
    atoms = ["$width", "$num_classes", "$in_channels", "$w", "$c", "$nope", "3", "0", "-1", "10**3",
             "999999999999999999999", "$stride", "$p"]
    parts = [rng.choice(atoms)]
    for _ in range(rng.randint(0, 4)):
        parts += [rng.choice(["+", "-", "*", "//", "%", "/", "**", ",", "(", ")"]), rng.choice(atoms)]
    text = " ".join(parts)
    return rng.choice([text, f"max({text})", f"({text}", f"$({text})", text.replace("$", "")])


def random_yaml_data(rng: random.Random) -> Any:
    """Random data shaped loosely like a spec (from scratch, no seed)."""
    data: dict[str, Any] = {}
    for key in rng.sample(["name", "input", "layers", "params", "blocks", "use", "constraints"], rng.randint(0, 7)):
        data[key] = random_value(rng)
    if "layers" in data and rng.random() < 0.7:
        data["layers"] = [_random_layer(rng) for _ in range(rng.randint(0, 6))]
    if "input" in data and rng.random() < 0.7:
        data["input"] = [rng.choice([1, 2, 3, 8, 32, 0, -1, 2**40]) for _ in range(rng.randint(0, 5))]
    return data if rng.random() < 0.9 else random_value(rng)


def _random_layer(rng: random.Random) -> Any:
    op = rng.choice(_OPS or ["relu"])
    if rng.random() < 0.3:
        return op
    return {op: {rng.choice(KEYS): random_value(rng, 2) for _ in range(rng.randint(0, 4))}}


# ------------------------------------------------------------------------------------------- mutations

def _slots(data: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in ``data``."""
    out: list[tuple[Any, Any]] = []
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key))
            if isinstance(value, (dict, list)):
                stack.append(value)
    return out


def _containers(data: Any) -> list[Any]:
    found = [data] if isinstance(data, (dict, list)) else []
    return found + [c[k] for c, k in _slots(data) if isinstance(c[k], (dict, list))]


def _nest(value: Any, depth: int, rng: random.Random) -> Any:
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {rng.choice(KEYS): value}
    return value


def mutate(data: Any, rng: random.Random) -> Any:
    """One structural mutation of ``data`` (in place where possible); returns the new root."""
    slots = _slots(data)
    if not slots:
        return random_yaml_data(rng)
    parent, key = rng.choice(slots)
    kind = rng.choice(["delete", "duplicate", "retype", "move", "rename", "extreme", "unicode", "nest",
                       "expression", "name", "use", "repeat", "op"])
    value = parent[key]
    if kind == "delete":
        del parent[key]
    elif kind == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        else:
            parent[rng.choice(KEYS)] = copy.deepcopy(value)
    elif kind == "retype":
        parent[key] = random_value(rng)
    elif kind == "move":
        del parent[key]
        inside = {id(c) for c in _containers(value)}  # never move a container into itself
        target = rng.choice([c for c in _containers(data) if id(c) not in inside] or [data])
        if isinstance(target, list):
            target.insert(rng.randint(0, len(target)), value)
        elif isinstance(target, dict):
            target[key if isinstance(key, str) else rng.choice(KEYS)] = value
    elif kind == "rename" and isinstance(parent, dict):
        del parent[key]
        parent[rng.choice([*KEYS, *(_OPS or []), *NAMES])] = value
    elif kind == "extreme":
        parent[key] = copy.deepcopy(rng.choice(EXTREMES))
    elif kind == "unicode" and isinstance(value, str) and value:
        at = rng.randrange(len(value))
        parent[key] = value[:at] + rng.choice(["\u0441", "\u00a0", "\u200b", "\u202e", "\u0130", "\U0001f600",
                                                "\u0000", "\ud7ff", "\u00e9"]) + value[at + 1:]
    elif kind == "nest":
        parent[key] = _nest(value, rng.choice([1, 2, 5, 30, 63, 64, 65, 100, 300]), rng)
    elif kind == "expression":
        parent[key] = _expression(rng)
    elif kind == "name":
        target = rng.choice([c for c in _containers(data) if isinstance(c, dict)] or [{}])
        target["name"] = rng.choice(NAMES)
    elif kind == "use" and isinstance(data, dict):
        data["use"] = rng.sample(USES, rng.randint(1, 3)) if rng.random() < 0.8 else rng.choice(USES)
    elif kind == "repeat":
        target = rng.choice([c for c in _containers(data) if isinstance(c, dict)] or [{}])
        target["repeat"] = rng.choice([0, 1, 2, 100, 5000, 49_999, 50_000, 50_001, 10**9, -3, "$width"])
    elif kind == "op" and isinstance(parent, list):
        parent[key] = _random_layer(rng)
    else:
        parent[key] = random_value(rng)
    return data


def mutate_text(text: str, rng: random.Random) -> bytes:
    """One textual mutation of YAML ``text``; may give invalid UTF-8."""
    lines = text.split("\n")
    kind = rng.choice(["delete", "duplicate", "swap", "token", "truncate", "indent", "bytes"])
    at = rng.randrange(len(lines))
    if kind == "delete":
        del lines[at]
    elif kind == "duplicate":
        lines.insert(at, lines[at])
    elif kind == "swap":
        other = rng.randrange(len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    elif kind == "token":
        line = lines[at]
        col = rng.randint(0, len(line))
        lines[at] = line[:col] + rng.choice(TOKENS) + line[col:]
    elif kind == "truncate":
        return text[: rng.randint(0, len(text))].encode("utf-8", "surrogatepass")
    elif kind == "indent":
        lines[at] = rng.choice(["  ", "\t", " "]) + lines[at] if rng.random() < 0.6 else lines[at].lstrip()
    else:
        raw = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(rng.randint(1, 4)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def dump(data: Any, rng: random.Random) -> str:
    flow = rng.random() < 0.3
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=rng.random() < 0.5,
                              default_flow_style=None if not flow else True, width=rng.choice([80, 10**6]))
    except (yaml.YAMLError, RecursionError, ValueError):
        return "name: x\n"


def make_case(rng: random.Random) -> bytes:
    """One fuzz case: the bytes of a spec file."""
    roll = rng.random()
    if roll < 0.12:
        text = dump(random_yaml_data(rng), rng)
    else:
        data = _seed_data(rng)
        for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 5])):
            data = mutate(data, rng)
        text = dump(data, rng)
    if rng.random() < 0.25:
        return mutate_text(text, rng)
    return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------- runner

@dataclass
class Outcome:
    kind: str  # ok | error | usage | traceback | bad-error
    seconds: float
    argv: list[str]
    detail: str = ""  # the error line, or the traceback / unexpected output
    peak_rss_kb: int = 0  # the process's peak resident memory during the command (when measured)
    rss_before_kb: int = 0  # its resident memory when the command began

    @property
    def clean(self) -> bool:
        return self.kind in CLEAN


def prepare(workdir: Path) -> Path:
    """A directory for cases: ``case.yaml`` goes here next to ``blocks/resnet.yaml`` (the zoo's import),
    an import cycle, a symlink leaving the tree, and a file outside it."""
    tree = workdir / "tree"
    (tree / "blocks").mkdir(parents=True, exist_ok=True)
    shutil.copy(SPECS / "blocks" / "resnet.yaml", tree / "blocks" / "resnet.yaml")
    (tree / "blocks" / "cycle_a.yaml").write_text("use: [cycle_b.yaml]\nblocks: {}\n")
    (tree / "blocks" / "cycle_b.yaml").write_text("use: [cycle_a.yaml]\nblocks: {}\n")
    (workdir / "outside.yaml").write_text("blocks: {}\n")
    link = tree / "link"
    if not link.exists():
        link.symlink_to(workdir, target_is_directory=True)
    return tree


COMMANDS = (["check"], ["summary"], ["summary", "--format", "json"], ["summary", "--format", "markdown",
                                                                        "--depth", "2"])


def run_case(data: bytes, tree: Path, rng: random.Random, backends: bool = False, measure: bool = False
             ) -> list[Outcome]:
    """Write ``data`` to ``tree/case.yaml`` and run one front-end command on it (chosen by ``rng``); a
    spec that passes is also built with ``--target torch`` (the source compiled, not run) and ``dot``
    when ``backends``. ``measure``: record each command's peak RSS (see ``invoke``)."""
    spec = tree / "case.yaml"
    spec.write_bytes(data)
    argv = [*rng.choice(COMMANDS), str(spec)]
    outcomes = [invoke(argv, measure)]
    if backends and outcomes[0].kind == "ok":
        for target in ("torch", "dot"):
            out = tree / f"out.{target}"
            result = invoke(["build", str(spec), "--target", target, "-o", str(out)], measure)
            if result.kind == "ok" and target == "torch":
                result = _compiles(out, result)
            outcomes.append(result)
    return outcomes


def _compiles(path: Path, result: Outcome) -> Outcome:
    try:
        compile(path.read_text(), str(path), "exec")
    except (SyntaxError, ValueError) as exc:
        return Outcome("bad-error", result.seconds, result.argv, f"generated source does not compile: {exc}")
    return result


def invoke(argv: list[str], measure: bool = False) -> Outcome:
    """``cnnspec.cli.main(argv)`` in-process, timed, its output captured and classified. ``measure``: also
    the process's peak RSS during the command (Linux: the high-water mark is reset before it)."""
    from cnnspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = reset_peak_rss() if measure else 0
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except Exception:  # noqa: BLE001 - exactly what the fuzzer looks for
        outcome = Outcome("traceback", time.perf_counter() - start, argv, traceback.format_exc())
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
        outcome = classify(code, out.getvalue(), err.getvalue(), time.perf_counter() - start, argv)
    else:
        outcome = classify(code, out.getvalue(), err.getvalue(), time.perf_counter() - start, argv)
    if measure:
        outcome.peak_rss_kb, outcome.rss_before_kb = proc_status_kb("VmHWM"), before
    return outcome


def proc_status_kb(field: str) -> int:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in KiB; 0 where
    there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> int:
    """Reset this process's RSS high-water mark (``VmHWM``: Linux 4.0+, ``clear_refs`` 5) to its current
    RSS, which is returned, so that the next ``proc_status_kb("VmHWM")`` is the peak since now."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return proc_status_kb("VmRSS")


def classify(code: int, stdout: str, stderr: str, seconds: float, argv: list[str]) -> Outcome:
    lines = stderr.splitlines()
    if code == 0:
        if "--format" in argv and argv[argv.index("--format") + 1] == "json":
            try:
                json.loads(stdout)
            except ValueError as exc:
                return Outcome("bad-error", seconds, argv, f"summary --format json is not JSON: {exc}")
        return Outcome("ok", seconds, argv)
    if code == 1 and lines and all(ERROR_LINE.match(line) for line in lines):  # check: every error, a line each
        return Outcome("error", seconds, argv, lines[0])
    if code == 2 and len(lines) == 1 and USAGE_LINE.match(lines[0]):
        return Outcome("usage", seconds, argv, lines[0])
    return Outcome("bad-error", seconds, argv, f"exit {code}; stderr: {stderr[-2000:]!r}")
