"""``$`` expressions: a tiny, safe arithmetic language (no ``eval``).

Grammar::

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/" | "//" | "%") factor)*
    factor := NUMBER | "$" NAME | ("+" | "-") factor | "(" expr ")" | FUNC "(" expr ("," expr)* ")"
    FUNC   := "min" | "max" | "ceil" | "floor" | "make_divisible"

``min``/``max`` take one argument or more; ``ceil(x)`` and ``floor(x)`` one, and give a whole number (Python's
``math.ceil``/``math.floor`` of the same float: EfficientNet's stage depths ``ceil(3 * $depth_mult)``);
``make_divisible(v, divisor)`` two: the rule MobileNet and EfficientNet round scaled widths with (torchvision's
``_make_divisible(v, divisor)``): ``max(divisor, int(v + divisor / 2) // divisor * divisor)``, plus
``divisor`` where that is below ``0.9 * v`` (rounding never takes more than 10% off), a whole number.

A string is an expression when it contains ``$``. A lone ``$name`` keeps its value's type (a float
parameter can feed ``p:``). Arithmetic on whole numbers with ``+ - * // %`` stays whole; a float operand
(``0.1``, a float parameter) or ``/`` makes the result a float, as in Python, so stochastic-depth schedules
(``$p * $block / $blocks``) are written once; a float where a setting wants a whole number is refused by
that setting. ``parse`` returns the
expression tree of ``cnnspec.ir`` (kept beside each evaluated setting, so the PyTorch backend can write
``width * 4``); ``evaluate`` computes it.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnspec.ir import BinOp, Call, Expr, Num, Ref, Unary, make_divisible

MAX_LENGTH = 200
MAX_MAGNITUDE = 10**15

_TOKEN = re.compile(r"\s*(?:(?P<float>\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)|(?P<int>\d+)|\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<fn>min|max|ceil|floor|make_divisible)\b|(?P<op>//|[-+*/%(),]))")


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated; the message is for the user."""


@dataclass(frozen=True)
class Shadowed:
    """A spec parameter named like a block's own quantity (``in_channels``), as a block without an argument
    of that name sees it: reading it is refused, since a student writing ``$in_channels`` inside a block
    means the block's input width (a "depthwise" conv once got the image's ``groups: 3``)."""

    name: str
    value: Any
    block: str

    def message(self) -> str:
        return (f"`${self.name}` inside block `{self.block}` is the spec's parameter `{self.name}` "
                f"({self.value!r}), not this block's input width; write `$channels_in` for that, or rename the "
                f"spec parameter (e.g. `image_channels`)")


CHANNELS_IN = "channels_in"  # a block's input channel count, known once shapes are inferred


class Late(ExprError):
    """``$channels_in`` read before shapes are known: a layer setting takes it later (``frontend/infer``);
    anywhere else this is the refusal."""


@dataclass(frozen=True)
class ChannelsIn:
    """What a block's names hold for ``$channels_in`` while its layers are elaborated."""

    block: str

    def message(self) -> str:
        return (f"`${CHANNELS_IN}` (the input channels of block `{self.block}`) is known only in the settings of "
                "the block's layers, not in the arguments of a block or stage")




def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if not match:
            bad = stripped[pos:].strip()[:12]
            raise ExprError(f"cannot read `{bad}` in expression `{text}`")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _shown(token: tuple[str, str]) -> str:
    return f"${token[1]}" if token[0] == "name" else token[1]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            found = "the end" if token is None else f"`{_shown(token)}`"
            want = f"`{value}`" if value else "a value"
            raise ExprError(f"expected {want} but found {found} in expression `{self.text}`")
        self.i += 1
        return token

    def parse(self) -> Expr:
        node = self.expr()
        if self.peek() is not None:
            raise ExprError(f"unexpected `{_shown(self.peek())}` in expression `{self.text}`")  # type: ignore[arg-type]
        return node

    def expr(self) -> Expr:
        node = self.term()
        while (tok := self.peek()) and tok[1] in "+-" and tok[0] == "op":
            self.take()
            node = BinOp(tok[1], node, self.term())
        return node

    def term(self) -> Expr:
        node = self.factor()
        while (tok := self.peek()) and tok[1] in ("*", "/", "//", "%"):
            self.take()
            node = BinOp(tok[1], node, self.factor())
        return node

    def factor(self) -> Expr:
        kind, value = self.take()
        if kind == "int":
            return Num(int(value))
        if kind == "float":
            return Num(float(value))
        if kind == "name":
            return Ref(value)
        if kind == "fn":
            self.take("(")
            args = [self.expr()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take(",")
                args.append(self.expr())
            self.take(")")
            _check_arity(value, len(args), self.text)
            return Call(value, tuple(args))
        if value in "+-" and kind == "op":
            return Unary(value, self.factor())
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        raise ExprError(f"unexpected `{_shown((kind, value))}` in expression `{self.text}`")


ARITY = {"ceil": (1, "one argument, the number to round up"), "floor": (1, "one argument, the number to round down"),
         "make_divisible": (2, "two arguments, the width and the divisor (`make_divisible($c * $width_mult, 8)`)")}
"""The functions that take a fixed number of arguments (``min``/``max`` take one or more)."""


def _check_arity(fn: str, count: int, text: str) -> None:
    if fn in ARITY and count != ARITY[fn][0]:
        raise ExprError(f"`{fn}` takes {ARITY[fn][1]}, got {count} in expression `{text}`")


@functools.lru_cache(maxsize=4096)  # the tree is immutable; a block's expressions recur in every instance
def parse(text: str) -> Expr:
    """Parse an expression string (``"$width * 4"``)."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


def names(node: Expr) -> list[str]:
    """The ``$names`` an expression refers to, in order of appearance."""
    if isinstance(node, Ref):
        return [node.name]
    if isinstance(node, Unary):
        return names(node.operand)
    if isinstance(node, BinOp):
        return names(node.left) + names(node.right)
    if isinstance(node, Call):
        return [n for arg in node.args for n in names(arg)]
    return []


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate an expression string against ``scope`` (name -> value)."""
    node = parse(text)
    if isinstance(node, Ref):
        return _lookup(node.name, scope)
    return _eval(node, scope, text)


def _lookup(name: str, scope: Mapping[str, Any]) -> Any:
    if name not in scope and name == CHANNELS_IN:
        raise ExprError(f"`${CHANNELS_IN}` is the input channels of a block, for its layers; outside blocks a "
                        "layer's input size is never written: each layer takes it from the layer before")
    if name not in scope:
        usable = [n for n, v in scope.items() if not isinstance(v, ChannelsIn)]  # $channels_in: layers only
        close = difflib.get_close_matches(name, usable, n=1, cutoff=0.6)
        known = ", ".join(f"${n}" for n in sorted(usable)) or "none"
        hint = f"; did you mean `${close[0]}`?" if close else f" (defined here: {known})"
        raise ExprError(f"`${name}` is not defined{hint}")
    value = scope[name]
    if isinstance(value, Shadowed):
        raise ExprError(value.message())
    if isinstance(value, ChannelsIn):
        raise Late(value.message())
    return value


def evaluate_written(value: Any, scope: Mapping[str, Any]) -> Any:
    """A setting as written (``ir.Written``: expression trees, tuples for lists) evaluated in ``scope``."""
    if isinstance(value, tuple):
        return [evaluate_written(v, scope) for v in value]
    if isinstance(value, Ref):
        return _lookup(value.name, scope)
    if isinstance(value, (Num, Unary, BinOp, Call)):
        return _eval(value, scope, f"${CHANNELS_IN}")
    return value


def _eval(node: Expr, scope: Mapping[str, Any], text: str) -> float:
    """The value of ``node``; every literal, call and operator result is held to ``MAX_MAGNITUDE`` (C5: a
    ``max($w, 999...)`` once slipped past it)."""
    if isinstance(node, Num):
        return _bounded(node.value, text)
    if isinstance(node, Ref):
        value = _lookup(node.name, scope)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExprError(f"`${node.name}` is {value!r}; arithmetic in `{text}` works on numbers only")
        return value
    if isinstance(node, Unary):
        value = _eval(node.operand, scope, text)
        return -value if node.op == "-" else value
    if isinstance(node, Call):
        return _bounded(_call(node.fn, [_eval(arg, scope, text) for arg in node.args], text), text)
    left, right = _eval(node.left, scope, text), _eval(node.right, scope, text)
    if node.op in ("/", "//", "%") and right == 0:
        raise ExprError(f"division by zero in `{text}`")
    return _bounded(_apply(node.op, left, right), text)


def _bounded(result: float, text: str) -> float:
    if abs(result) > MAX_MAGNITUDE:
        raise ExprError(f"`{text}` gives {result}, beyond the {MAX_MAGNITUDE:.0e} cnnspec accepts")
    return result


def _apply(op: str, left: float, right: float) -> float:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return left / right
    return left // right if op == "//" else left % right


def _call(fn: str, values: list[float], text: str) -> float:
    """``min``/``max`` of the values; ``ceil``, ``floor`` and ``make_divisible`` of finite ones (the arity is
    checked when parsed)."""
    if fn in ("min", "max"):
        return min(values) if fn == "min" else max(values)
    for value in values:
        if not math.isfinite(value):
            raise ExprError(f"`{fn}` got {value}, not a finite number, in expression `{text}`")
    if fn == "ceil":
        return math.ceil(values[0])
    if fn == "floor":
        return math.floor(values[0])
    v, divisor = values
    if isinstance(divisor, float) or divisor < 1:
        raise ExprError(f"the divisor of `make_divisible` is a whole number of at least 1, got {divisor} "
                        f"in expression `{text}`")
    return make_divisible(v, divisor)
