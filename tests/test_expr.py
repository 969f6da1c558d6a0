"""The ``$`` expression language: arithmetic over named values (whole numbers stay whole, a float or ``/``
gives a float), no ``eval``."""

from __future__ import annotations

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
