"""Receptive fields (size and stride per spatial axis, in input pixels) against the published figures, and
the adaptive-pooling window that feeds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.frontend import analyse_file
from cnnspec.ops.shape import adaptive_window

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
