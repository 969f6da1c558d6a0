"""The ``$`` expression language: arithmetic over named values (whole numbers stay whole, a float or ``/``
gives a float), no ``eval``."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnspec.frontend.expr import (
    MAX_LENGTH,
    BinOp,
    Call,
    ExprError,
    Num,
    Ref,
    Unary,
    evaluate,
    is_expression,
    names,
    parse,
)

SCOPE = {"width": 64, "stride": 2, "p": 0.25, "flag": True, "act": "relu", "zero": 0, "neg": -3}


@pytest.mark.parametrize(("text", "value"), [
    ("$width", 64),
    ("$width * 4", 256),
    ("$width*4", 256),
    ("  $width  *  4  ", 256),
    ("$width // 3", 21),
    ("$width % 3", 1),
    ("$width + $stride * 3", 70),  # * binds tighter than +
    ("($width + $stride) * 3", 198),
    ("$width - $stride - 2", 60),  # left associative
    ("$width // 4 // 2", 8),
    ("-$stride", -2),
    ("+$stride", 2),
    ("--$stride", 2),
    ("$neg // 2", -2),  # floor division, as Python and PyTorch's shape formulas
    ("$neg % 2", 1),
    ("min($width, 8)", 8),
    ("max($width // 4, 8)", 16),
    ("max(1, 2, $stride * 5, 3)", 10),
    ("min(max($zero, 1), 5)", 1),
    ("$zero", 0),
    ("12 + $zero", 12),
])
def test_evaluate(text: str, value: int) -> None:
    assert evaluate(text, SCOPE) == value


@pytest.mark.parametrize(("text", "value"), [
    ("$width / 4", 16.0),  # true division, as Python: a float even when it divides evenly
    ("$p * 2", 0.5),
    ("$p * $stride / 8", 0.0625),
    ("0.1 * 3 / 2", 0.1 * 3 / 2),  # the same float operations as torchvision's schedules, in the same order
    ("1.5 * $width", 96.0),
    ("1e-3 * $width", 0.064),
    ("$width // 4", 16),
])
def test_float_arithmetic(text: str, value: float) -> None:
    result = evaluate(text, SCOPE)
    assert (result, type(result)) == (value, type(value))


@pytest.mark.parametrize(("text", "value"), [("$p", 0.25), ("$flag", True), ("$act", "relu")])
def test_a_lone_reference_keeps_its_type(text: str, value: object) -> None:
    result = evaluate(text, SCOPE)
    assert (result, type(result)) == (value, type(value))


def test_parse_tree() -> None:
    assert parse("max($a // 4, 8) + -1") == BinOp(
        "+", Call("max", (BinOp("//", Ref("a"), Num(4)), Num(8))), Unary("-", Num(1)))
    assert names(parse("min($a, $b * $a) + ($c)")) == ["a", "b", "a", "c"]


@pytest.mark.parametrize(("value", "expected"), [("$a", True), ("x$", True), ("a", False), (3, False), (None, False)])
def test_is_expression(value: object, expected: bool) -> None:
    assert is_expression(value) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("$width / $zero", "division by zero in `$width / $zero`"),
    ("$width ** 2", "unexpected `*` in expression `$width ** 2`"),
    ("$width +", "expected a value but found the end in expression `$width +`"),
    ("($width", "expected `)` but found the end in expression `($width`"),
    ("$width)", "unexpected `)` in expression `$width)`"),
    ("max($width 2)", "expected `)` but found `2` in expression `max($width 2)`"),
    ("max()", "unexpected `)` in expression `max()`"),
    ("$width $stride", "unexpected `$stride` in expression `$width $stride`"),
    ("$", "cannot read `$` in expression `$`"),
    ("$1a", "cannot read `$1a` in expression `$1a`"),
    ("$width.real", "cannot read `.real` in expression `$width.real`"),
    ("__import__('os')", "cannot read `__import__('` in expression `__import__('os')`"),
    ("abs($width)", "cannot read `abs($width)` in expression `abs($width)`"),
    ("1.5.2 * $width", "cannot read `.2 * $width` in expression `1.5.2 * $width`"),
    ("$width // $zero", "division by zero in `$width // $zero`"),
    ("$width % $zero", "division by zero in `$width % $zero`"),
    ("$flag + 1", "`$flag` is True; arithmetic in `$flag + 1` works on numbers only"),
    ("$act * 2", "`$act` is 'relu'; arithmetic in `$act * 2` works on numbers only"),
    ("$widht", "`$widht` is not defined; did you mean `$width`?"),
    ("$qq * 2", "`$qq` is not defined (defined here: $act, $flag, $neg, $p, $stride, $width, $zero)"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, SCOPE)
    assert str(info.value) == message


def test_undefined_with_an_empty_scope() -> None:
    with pytest.raises(ExprError, match=r"^`\$a` is not defined \(defined here: none\)$"):
        evaluate("$a", {})


def test_limits() -> None:
    with pytest.raises(ExprError, match=f"^expression is longer than {MAX_LENGTH} characters$"):
        parse("$a + " * 50 + "1")
    with pytest.raises(ExprError, match=r"^`\$width \* 1000000000000000` gives 64000000000000000, beyond the 1e\+15"):
        evaluate("$width * 1000000000000000", SCOPE)


_ints = st.integers(min_value=-1000, max_value=1000)


@given(a=_ints, b=_ints, c=_ints.filter(lambda v: v != 0))
def test_agrees_with_python_integer_arithmetic(a: int, b: int, c: int) -> None:
    scope = {"a": a, "b": b, "c": c}
    assert evaluate("$a + $b * $c - ($a - $b) // $c % $c", scope) == a + b * c - (a - b) // c % c
    assert evaluate("max($a, -$b) - min($a // $c, $b)", scope) == max(a, -b) - min(a // c, b)


@pytest.mark.parametrize(("text", "value"), [
    ("ceil(1 * 1.1)", 2),  # EfficientNet-B1's first stage: int(math.ceil(1 * 1.1)) blocks
    ("ceil(3 * 3.1)", 10),  # B7: 9.3 -> 10
    ("ceil($width / 3)", 22),
    ("ceil($width)", 64),
    ("floor($width / 3)", 21),
    ("floor(-$p)", -1),
    ("ceil(-$p)", 0),
    ("make_divisible(32 * 1.4, 8)", 48),  # B4's stem: 44.8 -> 48
    ("make_divisible(40 * 1.4, 8)", 56),
    ("make_divisible(16 * 1.0, 8)", 16),
    ("make_divisible(3, 8)", 8),  # never below the divisor
    ("make_divisible(20, 16)", 32),  # 16 would be 20% below 20: one divisor more
    ("make_divisible($width * 0.5, 8) * 4", 128),
])
def test_ceil_floor_make_divisible(text: str, value: int) -> None:
    result = evaluate(text, SCOPE)
    assert result == value and type(result) is int


def _torchvision_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, copied (torchvision is not a dependency)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@given(c=st.integers(min_value=1, max_value=2048), mult=st.floats(min_value=0.05, max_value=8.0),
       divisor=st.sampled_from([1, 2, 4, 8, 16]))
def test_make_divisible_is_torchvisions(c: int, mult: float, divisor: int) -> None:
    scope = {"c": c, "m": mult, "d": divisor}
    assert evaluate("make_divisible($c * $m, $d)", scope) == _torchvision_make_divisible(c * mult, divisor)
    assert evaluate("ceil($c * $m)", scope) == math.ceil(c * mult)
    assert evaluate("floor($c * $m)", scope) == math.floor(c * mult)


_ARITY_2 = ("`make_divisible` takes two arguments, the width and the divisor (`make_divisible($c * $width_mult, 8)`), "
            "got {} in expression `{}`")
_DIVISOR = "the divisor of `make_divisible` is a whole number of at least 1, got {} in expression `{}`"


@pytest.mark.parametrize(("text", "message"), [
    ("ceil($p, 2)", "`ceil` takes one argument, the number to round up, got 2 in expression `ceil($p, 2)`"),
    ("floor($p, $p)", "`floor` takes one argument, the number to round down, got 2 in expression `floor($p, $p)`"),
    ("ceil()", "unexpected `)` in expression `ceil()`"),
    ("make_divisible($width)", _ARITY_2.format(1, "make_divisible($width)")),
    ("make_divisible($width, 8, 8)", _ARITY_2.format(3, "make_divisible($width, 8, 8)")),
    ("make_divisible($width, $zero)", _DIVISOR.format(0, "make_divisible($width, $zero)")),
    ("make_divisible($width, 2.5)", _DIVISOR.format(2.5, "make_divisible($width, 2.5)")),
    ("ceil($inf)", "`ceil` got inf, not a finite number, in expression `ceil($inf)`"),
    ("floor($nan)", "`floor` got nan, not a finite number, in expression `floor($nan)`"),
    ("make_divisible($nan, 8)", "`make_divisible` got nan, not a finite number, in expression `make_divisible($nan, 8)`"),
    ("ceil($width * 100000000000000)",
     "`ceil($width * 100000000000000)` gives 6400000000000000, beyond the 1e+15 cnnspec accepts"),
])
def test_function_errors(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, {**SCOPE, "inf": float("inf"), "nan": float("nan")})
    assert str(info.value) == message


def test_function_parse_tree() -> None:
    assert parse("make_divisible(ceil($a) * 2, 8)") == Call(
        "make_divisible", (BinOp("*", Call("ceil", (Ref("a"),)), Num(2)), Num(8)))


def test_readme_rounding_examples() -> None:
    """Each example of the README's table of rounding functions gives the value the table says."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r'^\| `(?:ceil|floor|make_divisible)\(.*`: (\S+) with `(\w+)` (\S+?)[ |]', readme, re.MULTILINE)
    examples = re.findall(r'^\| `(?:ceil|floor|make_divisible)\(.*\| `\w+: "([^"]+)"`', readme, re.MULTILINE)
    assert len(rows) == len(examples) == 3
    for (value, name, setting), text in zip(rows, examples, strict=True):
        assert evaluate(text, {name: float(setting) if "." in setting else int(setting)}) == int(value), text
