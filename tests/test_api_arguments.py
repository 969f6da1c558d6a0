"""P12 (attack findings): the Python API checks its arguments as the command line does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnspec

LENET = Path(__file__).resolve().parents[1] / "specs" / "lenet5.yaml"


@pytest.mark.parametrize(("shape", "message"), [
    ((1, 28.5, 28), "input_shape: sizes are whole numbers, got 28.5"),
    ((1, True, 28), "input_shape: sizes are whole numbers, got True"),
    ((1, 10**30, 28), "input_shape: sizes are from 1 to 2^63 - 1, got " + str(10**30)),
    ((1, 0, 28), "input_shape: sizes are from 1 to 2^63 - 1, got 0"),
])
def test_P12_a_malformed_input_shape_is_a_value_error(shape: tuple, message: str) -> None:
    with pytest.raises(ValueError) as info:
        cnnspec.load(LENET, input_shape=shape)
    assert str(info.value) == message


def test_P12_numpy_integers_are_sizes_and_params() -> None:
    model = cnnspec.load(LENET, input_shape=(np.int64(1), np.int64(32), 32), num_classes=np.int64(5))
    assert model.graph.output_shape == (5,)
    assert model.graph.root.total_params == cnnspec.load(LENET, input_shape=(1, 32, 32), num_classes=5).graph.root.total_params


def test_P12_summary_format_is_checked() -> None:
    # (to_onnx's batch: tests/test_checkpoints.py::test_P12_to_onnx_refuses_a_batch_below_one)
    with pytest.raises(ValueError, match=r"^summary format 'xml': one of text, markdown, json$"):
        cnnspec.load(LENET).summary("xml")
