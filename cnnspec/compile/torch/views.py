"""The generated module's pieces as plain data: the planner fills them, the templates print them."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from cnnspec.ir import REQUIRED, Node, Scope

__all__ = ["REQUIRED", "ClassInfo", "ClassView", "Group", "Item", "Line", "Param", "Sym", "Val", "nodes"]

Sym = list[ast.expr | None]  # a symbolic shape: one expression per axis, None where none reproduces it


@dataclass
class Item:
    """One instance's copy of a member (a node or a scope), with the names its values may be written in."""

    node: Node | Scope
    inst: int
    env: dict[str, Any]


Group = list[Item]


def nodes(group: Group) -> list[Node]:
    """The members of a group of nodes (one member across instances: all nodes, or all scopes)."""
    out = [it.node for it in group if isinstance(it.node, Node)]
    assert len(out) == len(group), "a group of scopes, where one of nodes was expected"
    return out


@dataclass
class Val:
    expr: ast.expr
    src: str | None  # None: equal to PyTorch's default, left out of the call


MAX_LINE = 110  # characters: the repository's ruff line length, which generated calls keep to when split


def split_call(code: str) -> tuple[str, list[str], str] | None:
    """``code`` ending in one call (``self.a = nn.Conv2d(x, y, kernel_size=3)``, with a trailing comma as an
    item of a list) as (text up to its ``(``, its arguments, ``)`` and what follows), or None when it ends
    otherwise or has no arguments.

    >>> split_call("nn.Conv2d(c, make_divisible(c * w, 8), kernel_size=(1, 7)),")
    ('nn.Conv2d(', ['c', 'make_divisible(c * w, 8)', 'kernel_size=(1, 7)'], '),')
    >>> split_call("x = torch.cat([a, b], 1)"), split_call("x = f(a) + g(b)")
    (('x = torch.cat(', ['[a, b]', '1'], ')'), None)
    """
    trailing = "," if code.endswith(",") else ""
    body = code[:len(code) - len(trailing)]
    if not body.endswith(")"):
        return None
    depth, quote, opened, start = 0, "", -1, 0
    args: list[str] = []
    for i, ch in enumerate(body):
        if quote:
            quote = "" if ch == quote and body[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            if depth == 1 and opened < 0:
                if ch != "(":
                    return None
                opened, start = i, i + 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and i != len(body) - 1:
                return None  # the call closes before the line ends (`f(a) + g(b)`)
        elif ch == "," and depth == 1:
            args.append(body[start:i].strip())
            start = i + 1
    last = body[start:-1].strip()
    args += [last] if last else []
    return (body[:opened + 1], args, ")" + trailing) if opened >= 0 and args else None


@dataclass
class Line:
    indent: int
    code: str
    comment: str = ""

    def render(self, base: int) -> str:
        """The line at ``base`` indents; a call longer than :data:`MAX_LINE` has its arguments on the lines
        below, all on one where they fit, else one each (as ruff format and black write it)."""
        pad = " " * (4 * (base + self.indent))
        comment = f"  # {self.comment}" if self.comment else ""
        line = pad + self.code + comment
        split = split_call(self.code) if len(line) > MAX_LINE else None
        if split is None:
            return line
        opening, args, closing = split
        inner = pad + "    "
        together = inner + ", ".join(args)
        body = [together] if len(together) <= MAX_LINE else [inner + arg + "," for arg in args]
        return "\n".join([pad + opening, *body, pad + closing + comment])


@dataclass
class Param:
    name: str
    annotation: str
    default: str | None = None
    keyword_only: bool = False

    def render(self) -> str:
        return f"{self.name}: {self.annotation}" + (f" = {self.default}" if self.default is not None else "")


@dataclass
class ClassView:
    """What the class template needs; filled by :class:`Builder`."""

    name: str
    base: str
    doc: str
    params: list[Param] = field(default_factory=list)
    init: list[Line] = field(default_factory=list)
    forward: list[Line] = field(default_factory=list)
    sequential: bool = False  # body is ``super().__init__(...)`` of an nn.Sequential
    returns: str = "torch.Tensor"  # the forward's return annotation
    guards: list[Line] = field(default_factory=list)  # refusals of arguments, before ``super().__init__``

    def signature(self) -> str:
        parts = ["self"]
        star = False
        for p in self.params:
            if p.keyword_only and not star:
                parts.append("*")
                star = True
            parts.append(p.render())
        one_line = f"    def __init__({', '.join(parts)}) -> None:"
        if len(one_line) <= 110:
            return one_line
        inner = "".join(f"        {p},\n" for p in parts)
        return f"    def __init__(\n{inner}    ) -> None:"


@dataclass
class ClassInfo:
    """A generated class as its callers see it."""

    view: ClassView
    in_name: str
    args: list[tuple[str, Any]]  # (name, default or REQUIRED), in signature order
    index: dict[int, int]  # id(instance node) -> instance number
    flags: dict[str, dict[int, bool]] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    extras: dict[str, dict[int, Any]] = field(default_factory=dict)
    out_sym: Sym = field(default_factory=list)
    envs: dict[int, dict[str, Any]] = field(default_factory=dict)


def shape_comment(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"
