"""Block arguments of type ``int | list[int]`` (issue 12): one conv block for a square kernel ``3`` and a
rectangular ``[1, 7]`` (inception_v3's BasicConv2d), required or with ``{type, default}``; the generated
constructor's annotation names the forms its instances use."""

from __future__ import annotations

import re

import pytest

from cnnspec.compile.torch import render_source
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_text

SPEC = """\
name: union
input: [3, 16, 16]
blocks:
  conv_bn:
    args:
      width: int
      kernel: "int | list[int]"
      padding: {type: "int | list[int]", default: 0}
      scale: {type: "float | list[float]", default: 2}
    layers:
      - conv: {out: $width, kernel: $kernel, padding: $padding, name: conv}
      - upsample: {scale: $scale, name: up}
layers:
  - conv_bn: {width: 4, kernel: 3, padding: 1}
  - conv_bn: {width: 4, kernel: [1, 3], padding: [0, 1], scale: [1, 0.5]}
  - conv_bn: {width: 4, kernel: 1, scale: 1}
"""


def test_single_values_and_lists_reach_the_layers() -> None:
    graph = analyse_text(SPEC)
    convs = [(n.path, n.attrs.kernel, n.attrs.padding) for n in graph.leaves() if n.op == "conv"]
    assert convs == [("0.conv", (3, 3), (1, 1)), ("1.conv", (1, 3), (0, 1)), ("2.conv", (1, 1), (0, 0))]
    assert graph.output_shape == (4, 32, 16)


def test_generated_constructor_annotates_the_forms_in_use() -> None:
    source = render_source(analyse_text(SPEC))
    signature = re.search(r"class ConvBn\(nn\.Module\):.*?def __init__\((.*?)\) -> None:", source, re.DOTALL)
    assert signature is not None
    assert [line.strip() for line in signature.group(1).strip().splitlines()] == [
        "self,", "in_channels: int,", "width: int,", "kernel: int | tuple[int, int],",
        "padding: int | tuple[int, int] = 0,", "scale: float | tuple[float, float] = 2,"]
    assert "ConvBn(4, 4, (1, 3), padding=(0, 1), scale=(1, 0.5)),  # (N, 4, 32, 16)" in source


def test_only_the_single_form_in_use_is_annotated() -> None:
    text = SPEC.replace("  - conv_bn: {width: 4, kernel: [1, 3], padding: [0, 1], scale: [1, 0.5]}\n", "")
    source = render_source(analyse_text(text))
    assert "def __init__(self, in_channels: int, width: int, kernel: int, padding: int = 0, scale: float = 2)" in source


@pytest.mark.parametrize(("call", "message"), [
    ("{width: 4, kernel: 1.5}", ("<string>:14:33: error: argument `kernel` of block `conv_bn` should be a whole number "
                                "or a list of whole numbers (int | list[int]), got 1.5")),
    ("{width: 4, kernel: 3, scale: [1, true]}", ("<string>:14:43: error: argument `scale` of block `conv_bn` should "
                                                "be a number or a list of numbers (float | list[float]), got [1, True]")),
])
def test_a_value_of_neither_form_is_refused_where_written(call: str, message: str) -> None:
    text = SPEC.replace("{width: 4, kernel: 3, padding: 1}", call)
    with pytest.raises(SpecError) as caught:
        analyse_text(text)
    assert str(caught.value) == message
