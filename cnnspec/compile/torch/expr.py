"""Symbolic values for generated code: the spec's ``$expressions`` as a whitelisted Python AST.

A value as the spec wrote it (``cnnspec.ir.Written``: ``$width * 4`` as an expression tree, ``3``,
``[1, 2]``, ``"same"``) becomes a small ``ast.expr`` built only from constants, names, ``+ - * // %``,
unary minus, tuples and calls of the spec language's functions (``min``, ``max``, ``ceil`` and ``floor`` written
``math.ceil``/``math.floor``, ``make_divisible``: a helper the module defines, ``MAKE_DIVISIBLE``). Anything else is refused (``Unknown``), so nothing a spec
contains can turn into other code: the generator then writes the concrete value instead. Every symbolic
value is checked by evaluating it (``evaluate``) against the analysed, concrete value before it is used.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from cnnspec import ir

_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor,
                                         "make_divisible": ir.make_divisible}
MATH = frozenset({"ceil", "floor"})  # written math.ceil(...): the module imports math
MAKE_DIVISIBLE = "make_divisible"  # the module defines it (``helper_source``) where it calls it


class Unknown(Exception):
    """A value that cannot be expressed symbolically (or evaluated with the names at hand)."""


def const(value: Any) -> ast.expr:
    """A literal: int, float, bool, str, None, or a (nested) list/tuple of them."""
    if isinstance(value, (list, tuple)):
        return ast.Tuple(elts=[const(v) for v in value], ctx=ast.Load())
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value))
        return ast.Constant(value)
    raise Unknown(f"unsupported literal {type(value).__name__}")


def name(identifier: str) -> ast.expr:
    return ast.Name(id=identifier, ctx=ast.Load())


def written(value: ir.Written, names: Mapping[str, str] | None = None) -> ast.expr:
    """A setting as the spec wrote it, as a Python expression (``$x`` as ``names[x]`` where given, the
    constructor parameter holding it); raises ``Unknown`` for anything else."""
    if isinstance(value, (list, tuple)):
        return ast.Tuple(elts=[written(v, names) for v in value], ctx=ast.Load())
    if isinstance(value, (ir.Num, ir.Ref, ir.Unary, ir.BinOp, ir.Call)):
        return _python(value, names or {})
    return const(value)


_OPERATORS: dict[str, type[ast.operator]] = {
    "+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "//": ast.FloorDiv, "%": ast.Mod,
}


def _python(node: ir.Expr, names: Mapping[str, str]) -> ast.expr:
    """A spec-language expression tree as a Python AST (a one-argument ``min``/``max`` is its argument:
    Python's ``min`` needs two)."""
    if isinstance(node, ir.Num):
        return ast.Constant(node.value)
    if isinstance(node, ir.Ref):
        return name(names.get(node.name, node.name))
    if isinstance(node, ir.Unary):
        op = ast.USub() if node.op == "-" else ast.UAdd()
        return ast.UnaryOp(op=op, operand=_python(node.operand, names))
    if isinstance(node, ir.BinOp):
        return ast.BinOp(left=_python(node.left, names), op=_OPERATORS[node.op](), right=_python(node.right, names))
    args = [_python(arg, names) for arg in node.args]
    if len(args) == 1 and node.fn in ("min", "max"):
        return args[0]
    return ast.Call(func=name(node.fn), args=args, keywords=[])


def names(expr: ast.expr) -> set[str]:
    """Free names of ``expr`` (the functions called excluded)."""
    out = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
    calls = {n.func.id for n in ast.walk(expr) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return out - (calls & set(_FUNCS))


def evaluate(expr: ast.expr, env: Mapping[str, Any]) -> Any:
    """Value of ``expr`` with ``env`` bound; ``Unknown`` when a name is unbound or arithmetic fails."""
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.id not in env:
            raise Unknown(f"unbound name {expr.id}")
        return env[expr.id]
    if isinstance(expr, ast.Tuple):
        return tuple(evaluate(e, env) for e in expr.elts)
    if isinstance(expr, ast.UnaryOp):
        value = evaluate(expr.operand, env)
        return -value if isinstance(expr.op, ast.USub) else value
    if isinstance(expr, ast.BinOp):
        return _binop(expr.op, evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in _FUNCS:
        return _FUNCS[expr.func.id](*(evaluate(a, env) for a in expr.args))
    raise Unknown(f"cannot evaluate {type(expr).__name__}")


def _binop(op: ast.operator, a: Any, b: Any) -> Any:
    try:
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            return a * b
        if isinstance(op, ast.Div):
            return a / b
        if isinstance(op, ast.FloorDiv):
            return a // b
        if isinstance(op, ast.Mod):
            return a % b
    except (TypeError, ZeroDivisionError) as exc:
        raise Unknown(str(exc)) from exc
    raise Unknown(f"unsupported operator {type(op).__name__}")


def substitute(expr: ast.expr, mapping: Mapping[str, ast.expr]) -> ast.expr:
    """``expr`` with every free name in ``mapping`` replaced by its expression, then constant-folded."""

    class _Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            if node.id in mapping:
                return mapping[node.id]
            return node

    return fold(_Sub().visit(_copy(expr)))


def fold(expr: ast.expr) -> ast.expr:
    """Evaluate constant sub-expressions (``16 * 5 * 5`` becomes ``400``)."""
    if isinstance(expr, ast.Tuple):
        return ast.Tuple(elts=[fold(e) for e in expr.elts], ctx=ast.Load())
    if not names(expr):
        try:
            return const(evaluate(expr, {}))
        except Unknown:
            return expr
    if isinstance(expr, ast.BinOp):
        folded = ast.BinOp(left=fold(expr.left), op=expr.op, right=fold(expr.right))
        divisor = _whole(folded.right)
        if isinstance(expr.op, ast.FloorDiv) and divisor is not None and _scaled(folded.left)[1] == divisor > 1:
            return _scaled(folded.left)[0]  # whole numbers: (w // 2 * 2) // 2 is w // 2
        return _collected(folded) if isinstance(expr.op, ast.Add) else folded
    if isinstance(expr, ast.Call):
        return ast.Call(func=expr.func, args=[fold(a) for a in expr.args], keywords=[])
    return expr


def product(factors: list[ast.expr]) -> ast.expr:
    out = factors[0]
    for f in factors[1:]:
        out = ast.BinOp(left=out, op=ast.Mult(), right=f)
    return fold(out)


def total(terms: list[ast.expr]) -> ast.expr:
    out = terms[0]
    for t in terms[1:]:
        out = ast.BinOp(left=out, op=ast.Add(), right=t)
    return fold(out)


def _collected(expr: ast.BinOp) -> ast.expr:
    """A sum whose terms repeat, each written once with its count: a DenseNet block's widths read
    ``in_channels + growth_rate * 5``, not five ``+ growth_rate``; its constants added up (a sum without
    repeats is kept as written)."""
    addends = _addends(expr)
    counts: dict[str, tuple[ast.expr, int]] = {}
    for term in addends:
        base, times = _scaled(term)
        key = ast.dump(base)
        counts[key] = (base, counts.get(key, (base, 0))[1] + times)
    if len(counts) == len(addends):
        return expr
    parts = [base if times == 1 else fold(ast.BinOp(left=base, op=ast.Mult(), right=ast.Constant(times)))
             for base, times in counts.values()]
    out = parts[0]
    for t in parts[1:]:
        out = ast.BinOp(left=out, op=ast.Add(), right=t)
    return out


def _whole(expr: ast.expr) -> int | None:
    return expr.value if isinstance(expr, ast.Constant) and type(expr.value) is int else None


def _addends(expr: ast.expr) -> list[ast.expr]:
    """``a + b + c`` as ``[a, b, c]``."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return [*_addends(expr.left), *_addends(expr.right)]
    return [expr]


def _scaled(term: ast.expr) -> tuple[ast.expr, int]:
    """``b * 3`` as ``(b, 3)``, any other term as ``(term, 1)``."""
    if (isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult) and isinstance(term.right, ast.Constant)
            and type(term.right.value) is int and names(term.left)):
        return term.left, term.right.value
    if isinstance(term, ast.Constant) and type(term.value) is int:
        return ast.Constant(1), term.value  # every whole constant is a count of ones: 4 + 4 is 1 * 8
    return term, 1


def source(expr: ast.expr) -> str:
    """Python source of ``expr`` (``ast.unparse``; floats and strings via their ``repr``; ``ceil(x)`` as
    ``math.ceil(x)``)."""
    return ast.unparse(ast.fix_missing_locations(_qualified(expr)))


def _qualified(expr: ast.expr) -> ast.expr:
    """``expr`` with ``ceil``/``floor`` calls written ``math.ceil``/``math.floor`` (a copy; ``expr`` itself
    where it has none)."""
    if not any(_rounds(node) for node in ast.walk(expr)):
        return expr
    out = _copy(expr)
    for node in ast.walk(out):
        if _rounds(node):
            node.func = ast.Attribute(value=name("math"), attr=node.func.id, ctx=ast.Load())  # type: ignore[attr-defined]
    return out


def _rounds(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MATH


def called(module_source: str) -> tuple[bool, bool]:
    """Whether a generated module calls ``math.*`` (so it imports math) and ``make_divisible`` (so it defines
    it)."""
    calls = [n.func for n in ast.walk(ast.parse(module_source)) if isinstance(n, ast.Call)]
    uses_math = any(isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "math"
                    for f in calls)
    return uses_math, any(isinstance(f, ast.Name) and f.id == MAKE_DIVISIBLE for f in calls)


def helper_source() -> str:
    """The ``make_divisible`` a generated module defines: ``cnnspec.ir.make_divisible`` itself."""
    return inspect.getsource(ir.make_divisible)


def is_const(expr: ast.expr) -> bool:
    return not names(expr)


def _copy(expr: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(ast.fix_missing_locations(expr)), mode="eval").body
