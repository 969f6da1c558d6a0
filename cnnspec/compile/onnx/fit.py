"""Does a checkpoint fit the spec? Names, shapes, dtypes and layouts are compared from the file's metadata
before any value is read; each tensor's values are checked (finite; within float16's range with
``--fp16``) as the ONNX builder reads them, and the tensors it never reads are checked after it is done.

``num_batches_tracked`` may be absent: ONNX has no use for it and old torchvision checkpoints lack it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.compile.onnx.errors import CheckpointError, capped, quote, short
from cnnspec.compile.onnx.tensors import (
    StoredTensor,
    ValueProblem,
    check_values,
    describe_torch,
    from_numpy,
    is_torch_tensor,
)

if TYPE_CHECKING:
    from cnnspec.ir import Graph

OPTIONAL_SUFFIX = ".num_batches_tracked"
FLOAT_NAMES = "float16, bfloat16, float32 or float64"
# where a prefix on every name comes from, for the hint
KNOWN_PREFIXES = {
    "module.": "as torch.nn.DataParallel and DistributedDataParallel save them",
    "model.": "as PyTorch Lightning saves a LightningModule whose network is its `model` attribute",
    "_orig_mod.": "as a torch.compile'd module saves them",
}
Expected = dict[str, tuple[tuple[int, ...], str]]  # state_dict key -> (shape, dtype)


def expected_tensors(graph: Graph) -> Expected:
    return {key: (tuple(shape), dtype) for key, shape, dtype in graph.state_dict_keys()}


def as_stored(weights: Any) -> dict[str, StoredTensor]:
    """A state_dict (numpy arrays, torch tensors or described tensors) as described tensors."""
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping from tensor names to numpy arrays or torch tensors, "
                        f"got {type(weights).__name__}")
    out = {}
    for key, value in weights.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be strings, got {key!r} ({type(key).__name__})"[:200])
        if isinstance(value, StoredTensor):
            out[key] = value
        elif isinstance(value, np.ndarray):
            out[key] = from_numpy(value)
        elif is_torch_tensor(value):
            out[key] = describe_torch(value)
        else:
            raise TypeError(f"state_dict values must be numpy arrays or torch tensors; {quote(key)} is a "
                            f"{type(value).__name__}")
    return out


def check_weights(graph: Graph, weights: Any, source: str, fp16: bool = False) -> CheckedWeights:
    """``weights`` as a mapping the ONNX builder reads from, if they fit the spec: else a CheckpointError
    naming the missing, unexpected and misshapen tensors (at most 5 of each), or those of a dtype or
    layout that cannot be used."""
    stored = as_stored(weights)
    expected = expected_tensors(graph)
    problems = fit_problems(expected, stored)
    if problems:
        raise CheckpointError(source, f"does not fit spec '{graph.name}': {_explain(expected, stored, problems)}")
    problems = capped([p for key, t in stored.items() if (p := dtype_problem(key, t, expected[key][1]))],
                      "tensors that cannot be used")
    if problems:
        raise CheckpointError(source, "; ".join(problems))
    return CheckedWeights(stored, source, fp16)


def fit_problems(expected: Expected, stored: Mapping[str, StoredTensor]) -> list[str]:
    missing = [f"missing {short(k)} {_fmt(shape)}" for k, (shape, _) in expected.items()
               if k not in stored and not k.endswith(OPTIONAL_SUFFIX)]
    unexpected = [f"unexpected {short(k)} {_fmt(t.shape)}" for k, t in stored.items() if k not in expected]
    misshapen = [f"{short(k)} is {_fmt(t.shape)} in the file but {_fmt(expected[k][0])} in the spec"
                 for k, t in stored.items() if k in expected and t.shape != expected[k][0]]
    return [*capped(missing, "missing"), *capped(unexpected, "unexpected"), *capped(misshapen, "misshapen")]


def _explain(expected: Expected, stored: Mapping[str, StoredTensor], problems: list[str]) -> str:
    """The problems, or a hint to strip the prefix every name in the file carries."""
    prefix = common_prefix(list(stored), expected)
    if prefix is None:
        return "; ".join(problems)
    origin = KNOWN_PREFIXES.get(prefix, "")
    hint = (f"every tensor name in the file starts with {quote(prefix)}{' (' + origin + ')' if origin else ''}; "
            f"rerun with --strip-prefix {short(prefix)} (strip_prefix='{short(prefix)}' in Python)")
    rest = fit_problems(expected, {k[len(prefix):]: t for k, t in stored.items()})
    return hint + ("; with it stripped: " + "; ".join(rest) if rest else "")


def common_prefix(names: list[str], expected: Expected, depth: int = 3) -> str | None:
    """The dotted prefix (up to ``depth`` segments) that every name has and whose removal makes more of
    them spec names than before; None if there is none."""
    matched = sum(name in expected for name in names)
    prefix = ""
    for _ in range(depth):
        heads = {name.split(".", 1)[0] for name in names}
        if not names or len(heads) != 1 or any("." not in name for name in names):
            return None
        head = heads.pop() + "."
        prefix += head
        names = [name[len(head):] for name in names]
        if sum(name in expected for name in names) > matched:
            return prefix
    return None


def strip_prefix(stored: dict[str, StoredTensor], prefix: str, source: str) -> dict[str, StoredTensor]:
    """The tensors with ``prefix`` (a dotted path; a final ``.`` is added) removed from the names that
    start with it; an error if none does, or if two names become one."""
    p = prefix if prefix.endswith(".") else prefix + "."
    if not any(name.startswith(p) for name in stored):
        raise CheckpointError(source, f"--strip-prefix {short(p)}: no tensor name in the file starts with it")
    out: dict[str, StoredTensor] = {}
    for name, tensor in stored.items():
        new = name.removeprefix(p)
        if new in out:
            raise CheckpointError(source, f"--strip-prefix {short(p)}: {quote(new)} is in the file both with "
                                  "and without the prefix")
        out[new] = tensor
    return out


def dtype_problem(key: str, t: StoredTensor, want: str) -> str | None:
    """Why tensor ``key`` cannot be used where the spec has a ``want`` tensor, or None."""
    if t.layout != "strided":
        what = "a meta tensor: it has a shape but no values" if t.layout == "meta" else f"a {t.layout} tensor"
        return f"{quote(key)} is {what}; checkpoints must hold dense tensors with values"
    if want == "int64":
        if t.kind == "int":
            return None
        return f"{quote(key)} is {short(t.dtype)} in the file, but the spec's tensor is an int64 counter"
    if t.kind == "float":
        return None
    return f"{quote(key)} is {short(t.dtype)} in the file; weights must be floating point ({FLOAT_NAMES})"


def _fmt(shape: tuple[int, ...]) -> str:
    dims = [str(int(d)) for d in shape[:8]] + (["..."] if len(shape) > 8 else [])
    return "[" + ", ".join(dims) + "]"


class CheckedWeights(Mapping[str, np.ndarray]):
    """The tensors of a checkpoint that fits the spec; each is read (and its values checked) when the ONNX
    builder asks for it, so only one tensor's values are in memory at a time."""

    def __init__(self, stored: dict[str, StoredTensor], source: str, fp16: bool) -> None:
        self._stored, self._source, self._fp16 = stored, source, fp16
        self._seen: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        t = self._stored[key]
        try:
            values = t.read()
            check_values(values, self._fp16)
        except ValueProblem as exc:
            raise CheckpointError(self._source, f"{quote(key)} {exc}") from None
        if values.shape != t.shape:
            raise CheckpointError(self._source, f"{quote(key)} changed while the file was being read")
        self._seen.add(key)
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)

    def check_unread(self) -> None:
        """Read and check every tensor the builder did not ask for (one at a time)."""
        for key in self._stored:
            if key not in self._seen:
                self[key]
