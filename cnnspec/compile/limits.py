"""The build size limit: a network too big to hold in memory is refused before torch or ONNX allocates it.

The summary reports any size (10^12 channels is just a number there); building is where the bytes become
real. The estimate covers the weights a built model holds before it sees any input: every parameter and
buffer of the analysed graph at its dtype's size (float32, int64 for BatchNorm's step counter). Forward
activations are not counted: they scale with the batch and are the runtime's business.

The limit is, in order: an explicit ``max_bytes`` (``cnnspec build --max-bytes``, ``to_torch(max_bytes=)``),
the ``CNNSPEC_MAX_BYTES`` environment variable, then the target's default: 4 GiB for a torch module (the
memory of one process) and 16 GiB for ONNX (past 2 GB ONNX moves weights to an external data file, so its
limit must be larger). Standard library only: ``cnnspec build`` parses ``--max-bytes`` before any backend
is imported."""

from __future__ import annotations

import argparse
import os
import re

from cnnspec.errors import SpecError, UsageError
from cnnspec.ir import Graph, Node, TensorSpec

ENV = "CNNSPEC_MAX_BYTES"
GiB = 2**30
DEFAULTS = {"torch": 4 * GiB, "onnx": 16 * GiB}
# the inputs `cnnspec run` and `bench` make or read (random noise, an .npy file): counted before allocating
INPUT_ENV = "CNNSPEC_MAX_INPUT_BYTES"
INPUT_DEFAULT = 2 * GiB
ITEMSIZE = {"float32": 4, "float16": 2, "int64": 8}
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE | re.ASCII)
MAX_SIZE = 2**63 - 1
FORMS = "4GiB, 512MiB or 1000000"


def parse_size(text: str) -> int:
    """``4294967296``, ``4GiB``, ``4G``, ``512MiB``, ``1.5T``: a byte count (binary units), ASCII digits, at
    most 2^63 - 1 (computed exactly: 400 digits are refused, not turned into a float infinity)."""
    shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
    match = _SIZE.fullmatch(text.strip())
    if not match:
        hint = "" if text.isascii() else " (write the digits 0-9 and the unit in ASCII)"
        raise ValueError(f"expected a size such as {FORMS}, got '{shown}'{hint}")
    number, unit = match.group(1), _UNITS[match.group(2).lower()]
    whole, _, fraction = number.partition(".")
    fraction = fraction[:20] or "0"  # beyond a byte at 1 PiB: no 5,000-digit int parse
    if len(whole.lstrip("0")) > 19:
        value = MAX_SIZE + 1
    else:
        value = int(whole) * unit + int(fraction) * unit // 10 ** len(fraction)
    if value > MAX_SIZE:
        raise ValueError(f"expected a size such as {FORMS}, at most 8 EiB (2^63 - 1 bytes), got '{shown}'")
    if value < 1:
        raise ValueError(f"expected a positive size, got '{shown}'")
    return value


def size_arg(text: str) -> int:
    """``argparse`` type of ``--max-bytes``."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-bytes", type=size_arg, default=None, metavar="SIZE",
                        help=f"refuse to build a torch or ONNX model whose weights exceed SIZE (e.g. 8GiB; "
                        f"default ${ENV}, else 4GiB for torch and 16GiB for ONNX)")


def add_input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-input-bytes", type=size_arg, default=None, metavar="SIZE",
                        help=f"refuse model inputs (random or --input X.npy) larger than SIZE in all (default "
                        f"${INPUT_ENV}, else {human(INPUT_DEFAULT)})")


def limit(target: str, max_bytes: int | None = None) -> int:
    """The limit in bytes for ``target`` ("torch" or "onnx")."""
    return _explicit_or_env(max_bytes, ENV, DEFAULTS[target])


def input_limit(max_bytes: int | None = None) -> int:
    """The limit in bytes of the inputs ``cnnspec run`` and ``bench`` give a model."""
    return _explicit_or_env(max_bytes, INPUT_ENV, INPUT_DEFAULT)


def _explicit_or_env(max_bytes: int | None, env: str, default: int) -> int:
    if max_bytes is not None:
        return max_bytes
    text = os.environ.get(env, "").strip()
    if text:
        try:
            return parse_size(text)
        except ValueError as exc:
            raise UsageError(f"${env}: {exc}") from None
    return default


def weight_bytes(graph: Graph) -> tuple[int, int, Node | None]:
    """``(bytes, elements, largest leaf)`` of every parameter and buffer of ``graph``."""
    total = elements = 0
    largest: tuple[int, Node | None] = (0, None)
    for leaf in graph.leaves():
        own = sum(_bytes(t) for t in (*leaf.params, *leaf.buffers))
        elements += sum(t.numel for t in (*leaf.params, *leaf.buffers))
        total += own
        if own > largest[0]:
            largest = (own, leaf)
    return total, elements, largest[1]


def _bytes(t: TensorSpec) -> int:
    return t.numel * ITEMSIZE.get(t.dtype, 4)


def check_size(graph: Graph, target: str, max_bytes: int | None = None) -> None:
    """Raise a :class:`SpecError` located at the largest layer when ``graph``'s weights exceed the limit."""
    allowed = limit(target, max_bytes)
    total, elements, largest = weight_bytes(graph)
    if total <= allowed:
        return
    where = largest.pos if largest is not None else graph.root.pos
    raise SpecError(f"the network holds {elements:,} parameters and buffers ({human(total)}), over the "
                    f"{target} build limit of {human(allowed)}; raise it with --max-bytes or ${ENV}", where)


def human(n: int) -> str:
    """Bytes in binary units: ``4.0 GiB``, ``101.9 TiB`` (integer arithmetic: any size prints)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    power = 0
    while power < len(units) - 1 and n >= 1024 ** (power + 1):
        power += 1
    if power == 0:
        return f"{n:,} B"
    tenths = n * 10 // 1024**power
    return f"{tenths // 10:,}.{tenths % 10} {units[power]}"
