"""Pooling output sizes agree with PyTorch on a grid, ``ceil_mode`` included: PyTorch drops a last window
that would start in the right padding (``(L + 2p - d(k-1) - 1 + s - 1) // s + 1``, one less when
``(out - 1) * s >= L + p``), and cnnspec's shape rule must say the same (or refuse what PyTorch refuses)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file


def _torch_size(op: str, size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int | None:
    x = torch.zeros(1, 1, size)
    try:
        if op == "maxpool":
            out = F.max_pool1d(x, k, s, p, d, ceil_mode=ceil)
        else:
            out = F.avg_pool1d(x, k, s, p, ceil_mode=ceil)
    except RuntimeError:  # "Output size is too small", "pad should be at most half of effective kernel size"
        return None
    return out.shape[-1] or None


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_pool_output_sizes_equal_pytorch_with_and_without_ceil_mode(tmp_path: Path, op: str) -> None:
    path = tmp_path / "p.yaml"
    dilations = (1, 2) if op == "maxpool" else (1,)
    cases = [c for c in itertools.product(range(1, 8), range(1, 5), range(1, 4), range(3), dilations, (True, False))
             if c[3] <= c[1] // 2]
    dropped = 0  # ceil_mode cases where PyTorch dropped the window that starts in the padding
    wrong = []
    for size, k, s, p, d, ceil in cases:
        expected = _torch_size(op, size, k, s, p, d, ceil)
        extra = f", dilation: {d}" if op == "maxpool" else ""
        path.write_text(f"name: p\ninput: [1, {size}]\nlayers: [{op}: {{kernel: {k}, stride: {s}, padding: {p}"
                        f"{extra}, ceil_mode: {str(ceil).lower()}}}]\n")
        try:
            got: int | None = analyse_file(path).output_shape[-1]
        except SpecError:
            got = None
        if got != expected:
            wrong.append((size, k, s, p, d, ceil, expected, got))
        if ceil and expected is not None:
            naive = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
            dropped += naive != expected
    assert wrong == []
    assert (len(cases), dropped) == ({"maxpool": 672, "avgpool": 336}[op], {"maxpool": 32, "avgpool": 23}[op])
