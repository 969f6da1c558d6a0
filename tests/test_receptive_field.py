"""Receptive fields (size and stride per spatial axis, in input pixels) against the published figures, and
the adaptive-pooling window that feeds them."""

from __future__ import annotations

import doctest
import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from cnnspec.compile.torch import build_module
from cnnspec.frontend import analyse_file, analyse_text
from cnnspec.ops.shape import adaptive_window, interpolation_window, transposed_window
from cnnspec.report import json_report, rows, table

SPECS = Path(__file__).parents[1] / "specs"


def rf_of(spec: str, path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    graph = analyse_file(SPECS / f"{spec}.yaml")
    members = [*graph.root.scopes(), *graph.nodes]
    node = next(n for n in members if n.path == path and (not hasattr(n, "name") or n.name))
    return node.rf_size, node.rf_stride


@pytest.mark.parametrize(("spec", "path", "size", "stride"), [
    ("alexnet", "features.12", 195, 32),  # pool5 (Araujo et al., "Computing receptive fields", 2019)
    ("alexnet", "avgpool", 195, 32),  # adaptive 6x6 on a 6x6 map: the identity
    ("vgg16", "features.30", 212, 32),  # pool5
    ("vgg16", "avgpool", 212, 32),
    ("vgg16", "2", 404, 224),  # flatten: the next linear sees all 7x7 positions, 212 + 6 * 32
    ("resnet18", "layer4", 435, 32),
    ("resnet50", "layer4", 427, 32),  # torchvision's v1.5: the stride sits in the 3x3 conv
    ("resnet50", "avgpool", 619, 224),
    ("lenet5", "3", 14, 2),
])
def test_published_receptive_fields(spec: str, path: str, size: int, stride: int) -> None:
    assert rf_of(spec, path) == ((size, size), (stride, stride))


@pytest.mark.parametrize(("length", "out", "window"), [
    (7, 7, (1, 1)), (14, 7, (2, 2)), (224, 7, (32, 32)), (10, 3, (4, 3)), (5, 1, (5, 5)), (3, 7, (2, 1)),
])
def test_adaptive_window(length: int, out: int, window: tuple[int, int]) -> None:
    assert adaptive_window(length, out) == window


# --- upsampling: fractional jumps, against the dependencies autograd finds --------------------------------

def exact_extents(text: str) -> list[int]:
    """Per output position of a 1D spec without non-linearities, how many input positions lie between the
    first and the last that it depends on (autograd, all weights positive: no cancellation)."""
    graph = analyse_text(text, "rf.yaml")
    module = build_module(graph).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(1.0)
    x = torch.rand(1, *graph.input_shape)
    jacobian = torch.autograd.functional.jacobian(lambda t: module(t).sum(dim=1)[0], x)  # (L_out, 1, C, L_in)
    extents = []
    for row in jacobian.abs().sum(dim=(1, 2)) > 0:
        used = row.nonzero().flatten()
        if len(used):  # (a dilated transposed convolution leaves outputs that read no input: bias only)
            extents.append(int(used.max() - used.min() + 1))
    return extents


def last_rf(text: str) -> tuple[tuple[object, ...], tuple[object, ...]]:
    leaf = analyse_text(text, "rf.yaml").leaves()[-1]
    return leaf.rf_size, leaf.rf_stride


UNET_1D = """name: u\ninput: [1, 64]\nlayers:
  - conv: {out: 2, kernel: 3}
  - avgpool: {kernel: 2}
  - conv: {out: 2, kernel: 3}
  - upsample: {scale: 2, mode: linear}
  - conv: {out: 2, kernel: 3}
"""


@pytest.mark.slow
def test_upsampling_back_to_whole_jumps_is_exact() -> None:
    """A U-Net's decoder: the jump goes 1, 2, then back to 1; every output depends on exactly 12 inputs
    (the linear upsampling reads 2 positions 2 input pixels apart, then the conv 3 positions 1 apart)."""
    assert last_rf(UNET_1D) == ((12,), (1,))
    assert max(exact_extents(UNET_1D)) == 12


@pytest.mark.slow
@pytest.mark.parametrize(("layer", "size", "stride", "exact"), [
    ("conv_transpose: {out: 2, kernel: 3, stride: 2}", 2, Fraction(1, 2), 2),  # outputs read 1 or 2 inputs
    ("conv_transpose: {out: 2, kernel: 4, stride: 2, padding: 1}", 2, Fraction(1, 2), 2),  # DCGAN's
    ("conv_transpose: {out: 2, kernel: 3, stride: 2, dilation: 2}", 3, Fraction(1, 2), 3),
    ("upsample: {scale: 3}", 1, Fraction(1, 3), 1),
    ("upsample: {scale: 2, mode: linear}", 2, Fraction(1, 2), 2),
    ("upsample: {size: 24, mode: linear, align_corners: true}", 2, Fraction(11, 23), 2),
    ("upsample: {scale: 1.5, mode: linear}", 2, Fraction(2, 3), 2),
])
def test_one_upsampling_layer_is_exact(layer: str, size: int, stride: Fraction, exact: int) -> None:
    text = f"name: u\ninput: [1, 12]\nlayers:\n  - {layer}\n"
    assert last_rf(text) == ((size,), (stride,))
    assert max(exact_extents(text)) == exact


@pytest.mark.slow
def test_a_window_after_a_fractional_jump_spans_a_fraction() -> None:
    """After a nearest 2x upsampling, a 4-wide conv's outputs read 2 or 3 input pixels, alternately: the
    receptive field is the span of 4 positions half a pixel apart, 1 + 3 x 0.5 = 2.5 (docs/conventions.md)."""
    text = "name: u\ninput: [1, 12]\nlayers:\n  - upsample: {scale: 2}\n  - conv: {out: 1, kernel: 4}\n"
    assert last_rf(text) == ((Fraction(5, 2),), (Fraction(1, 2),))
    extents = exact_extents(text)
    assert set(extents) == {2, 3} and sum(extents) / len(extents) == pytest.approx(2.5, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["crop: {size: 5}", "slice: {ranges: [[3, -1]]}", "slice: {ranges: [[-4, null]]}"])
def test_a_crop_or_slice_keeps_the_receptive_field(layer: str) -> None:
    """Between a stride-2 conv and a 3-wide conv, a crop or slice drops positions but keeps each one's field:
    every output depends on 3 + 2 x 2 = 7 inputs, as without it."""
    text = (f"name: u\ninput: [1, 24]\nlayers:\n  - conv: {{out: 1, kernel: 3, stride: 2}}\n  - {layer}\n"
            "  - conv: {out: 1, kernel: 3}\n")
    assert last_rf(text) == ((7,), (2,))
    assert set(exact_extents(text)) == {7}


def test_fractional_receptive_fields_in_the_reports() -> None:
    graph = analyse_text("name: u\ninput: [1, 12, 12]\nlayers:\n  - upsample: {scale: 2}\n"
                         "  - conv: {out: 1, kernel: 4}\n  - upsample: {scale: 3}\n", "u.yaml")
    record = json_report.summary_record(graph)
    assert [layer["receptive_field"] for layer in record["layers"]] == [
        {"size": [1, 1], "stride": [0.5, 0.5]},
        {"size": [2.5, 2.5], "stride": [0.5, 0.5]},
        {"size": [2.5, 2.5], "stride": [1 / 6, 1 / 6]},
    ]
    assert json.loads(json_report.to_json(graph)) == record
    text = table.text(graph)
    assert "2      upsample x3 (nearest)  1x63x63       -      -  2.5x2.5\n" in text
    assert "Receptive field of the output: 2.5x2.5 (stride 1/6x1/6)" in text
    assert doctest.testmod(rows).failed == 0  # rf_number's examples: 212, 0.5, 5.25, 1/3


@pytest.mark.slow
def test_windows_of_upsampling_ops_against_brute_force() -> None:
    """The most inputs one output reads, for every small transposed convolution and interpolation."""
    for k in range(1, 7):
        for s in range(1, 6):
            for d in range(1, 5):
                y = F.conv_transpose1d(torch.eye(40).reshape(40, 1, 40), torch.ones(1, 1, k), stride=s, dilation=d)
                reads = [(col != 0).nonzero().flatten() for col in y[:, 0, :].T]
                assert max(int(r.max() - r.min() + 1) for r in reads if len(r)) == transposed_window(k, s, d)
    for length in range(1, 11):
        for out in range(1, 24):
            for align in (False, True):
                y = F.interpolate(torch.eye(length).reshape(length, 1, length), size=out, mode="linear",
                                  align_corners=align)
                reads = [(col.abs() > 1e-7).nonzero().flatten() for col in y[:, 0, :].T]
                assert max(int(r.max() - r.min() + 1) for r in reads) == interpolation_window(length, out, True, align)


def test_a_gate_widens_the_window_not_the_step() -> None:
    """x * se(x): the gate's [C, 1, 1] sees the whole input, so the product does too, but its outputs step
    as x's do (a broadcast input's one position has no step); the conv after it grows by that step."""
    graph = analyse_text("name: se\ninput: [4, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n"
                         "  - gate: {body: [global_avgpool, conv: {out: 4, kernel: 1}, sigmoid]}\n"
                         "  - conv: {out: 4, kernel: 3, padding: 1}\n")
    pool, mul, last = (next(n for n in graph.leaves() if n.op == op) for op in ("global_avgpool", "mul", "conv"))
    assert (pool.rf_size, pool.rf_stride) == ((10, 10), (8, 8))  # 3 + 7 x 1 wide, one position per 8
    assert (mul.rf_size, mul.rf_stride) == ((10, 10), (1, 1))
    assert (graph.leaves()[-1].rf_size, graph.leaves()[-1].rf_stride) == ((12, 12), (1, 1))
    assert last.rf_size == (3, 3)


def test_a_merge_of_flat_values_keeps_the_window() -> None:
    """After flatten a value has fewer axes than its window (the fuzzers found the merge indexing them)."""
    graph = analyse_text("name: flat\ninput: [2, 4, 4]\nlayers:\n  - flatten: {as: a}\n  - linear: {out: 32}\n"
                         "  - add: {of: [a, previous]}\n  - mul: {of: [a, previous]}\n")
    add, mul = graph.leaves()[-2:]
    assert (add.output_shape, add.rf_size, add.rf_stride) == ((32,), (4, 4), (4, 4))
    assert (mul.rf_size, mul.rf_stride) == ((4, 4), (4, 4))
