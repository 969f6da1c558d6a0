"""Which spec params a generated module follows as constructor arguments, and the refusal of the others.

The planner writes a value as the spec's expression (``padding=pad``) only where that reproduces the analysed
value, and as a number otherwise; sizes that follow from a param through the shapes (a linear's
``in_features`` after a flatten) are numbers. So ``LeNet(pad=0)`` would build layers that do not fit each
other. A param is *followed* when the source generated for other values of it (``ir.Graph.variant``: the
spec analysed again) is the same code apart from docstrings, comments and the param's default; for every
other param the constructor raises ``ValueError`` for any value but the spec's, naming the command that
generates the module for another value."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable
from typing import Any

from cnnspec.compile.torch import expr as E
from cnnspec.compile.torch.generator import spec_names
from cnnspec.compile.torch.views import Line
from cnnspec.errors import SpecError
from cnnspec.ir import Graph

Render = Callable[[Graph], str]


def unfollowed(graph: Graph, render: Render) -> dict[str, bool]:
    """The spec params (in declaration order) whose other values the generated source does not follow:
    name -> whether that was seen (False: no other value could be tried, a string or a list)."""
    if not graph.params:
        return {}
    reference = _code(render(graph), graph.name)
    found = {name: _followed(graph, render, reference, name, value) for name, value in graph.params.items()}
    return {name: seen for name, (followed, seen) in found.items() if not followed}


def _followed(graph: Graph, render: Render, reference: str, name: str, value: Any) -> tuple[bool, bool]:
    """(whether the source follows ``name``, whether another value was tried)."""
    tried = 0
    for other in _other_values(value):
        try:
            variant = graph.variant({name: other}) if graph.variant is not None else None
        except SpecError:
            continue  # a value the spec itself refuses says nothing about the code
        if variant is None:
            return False, False
        tried += 1
        if _code(render(variant), graph.name) != reference:
            return False, True
    return tried > 0, tried > 0


def _other_values(value: Any) -> list[Any]:
    """Two other values of a param's type (two, so one coincidence of floor division is not enough)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, 2 * value + 3]
    if isinstance(value, float):
        return [value / 2, value * 0.75] if value else [0.25, 0.5]
    return []  # strings, lists: no safe other value to try, so refused


def _code(source: str, name: str) -> str:
    """``source`` without docstrings, comments and the constructor defaults of the model class."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            node.args.defaults = [ast.Constant(None) for _ in node.args.defaults]
    return ast.dump(tree)


def guards(names: dict[str, bool], graph: Graph, class_name: str, command: str) -> list[Line]:
    """``if pad != 2: raise ValueError(...)`` for each unfollowed param; ``command`` builds the module. The
    argument is the constructor's (``self_`` for a param named ``self``), ``--set`` takes the spec's name."""
    py = spec_names(graph)
    lines: list[Line] = []
    for name, seen in names.items():
        spec_value = E.source(E.const(graph.params[name]))
        arg = py.get(name, name)
        why = ("other values change layers or numbers that it writes out" if seen else
               "cnnspec could not check that its code follows other values")
        message = (f"{class_name} was generated for {arg}={spec_value}, and {why}; generate it for another "
                   f"value: {command} --set {name}=VALUE")
        pieces = textwrap.wrap(message, 84, drop_whitespace=False, break_long_words=False, break_on_hyphens=False)
        lines += [Line(0, f"if {arg} != {spec_value}:"), Line(1, "raise ValueError("),
                  Line(2, "f" + repr(f"{arg}={{{arg}!r}}: ")),
                  *(Line(2, repr(piece)) for piece in pieces), Line(1, ")")]
    return lines
