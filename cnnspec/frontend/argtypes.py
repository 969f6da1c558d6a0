"""The types of block arguments: their names, what values fit them, and how a declaration reads.

A block declares each argument as a type name (required), a value (the default; its type is the value's),
or ``{type: <type name>, default: <value>}`` (a default of a wider type, such as a kernel that is ``1`` by
default and may be ``[1, 7]``). The union names ``int | list[int]`` and ``float | list[float]`` take either
a single value or a list of them (a square kernel ``3`` or a rectangular ``[1, 7]``).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeGuard

SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
LISTS = ("list[int]", "list[float]")
UNIONS = ("int | list[int]", "float | list[float]")
TYPE_NAMES = (*SCALARS, *LISTS, *UNIONS)
TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
LIST_WORDS = {"list[int]": "a list of whole numbers", "list[float]": "a list of numbers"}


# a string written as a type expression (`lst[int]`, `int|list[int]`, `list[int] | intt`): a misspelt type, not a
# string default, when each part is a word or `word[word]` and some word is close to a type's
_TYPE_PART = re.compile(r"\s*(\w+)\s*(?:\[\s*(\w+)\s*\])?\s*")
_BASE_WORDS = ("int", "float", "bool", "str", "list")


def misspelt_type(spec: Any) -> str | None:
    """The type name a string declaration was meant to be, when it is shaped like one but is not
    (``lst[int]``), or None (a type name, or a plain string default).

    >>> misspelt_type("lst[int]"), misspelt_type("list[intt] | int"), misspelt_type("int|list[int]")
    ('list[int]', 'int | list[int]', 'int | list[int]')
    >>> misspelt_type("nearest"), misspelt_type("a|b"), misspelt_type("int")
    (None, None, None)
    """
    if not isinstance(spec, str) or is_type(spec) or ("[" not in spec and "|" not in spec):
        return None
    parts = [_TYPE_PART.fullmatch(part) for part in spec.split("|")]
    if not all(parts):
        return None
    words = [w for match in parts if match for w in match.groups() if w]
    if not any(difflib.get_close_matches(w, _BASE_WORDS, n=1, cutoff=0.6) for w in words):
        return None
    written = sorted((match.group(0).replace(" ", "") for match in parts if match), key=lambda p: "[" in p)
    found = difflib.get_close_matches(" | ".join(written), TYPE_NAMES, n=1, cutoff=0.6)
    return found[0] if found else None


def is_type(spec: Any) -> TypeGuard[str]:
    """Whether a declaration is a bare type name (a required argument)."""
    return isinstance(spec, str) and spec in TYPE_NAMES


def is_typed_default(spec: Any) -> bool:
    """Whether a declaration is ``{type: ..., default: ...}``."""
    return isinstance(spec, dict) and set(spec) == {"type", "default"}


def declared(spec: Any) -> tuple[str, Any]:
    """(type name, default or ``None`` when required) of an argument's declaration."""
    if is_type(spec):
        return spec, None
    if is_typed_default(spec):
        return spec["type"], spec["default"]
    return kind_of(spec), spec


def kind_of(default: Any) -> str:
    """The type name of a default value: a list's by its items (``[1, 7]`` is ``list[int]``)."""
    if isinstance(default, list):
        return "list[int]" if all(fits(v, "int") for v in default) else "list[float]"
    return type(default).__name__


def fits(value: Any, kind: str) -> bool:
    """Whether ``value`` is of the type named ``kind`` (a whole number fits a float).

    >>> fits(3, "int | list[int]"), fits([1, 7], "int | list[int]"), fits(1.5, "int | list[int]")
    (True, True, False)
    """
    if " | " in kind:
        return any(fits(value, part) for part in kind.split(" | "))
    if kind.startswith("list["):
        return isinstance(value, list) and all(fits(v, kind[5:-1]) for v in value)
    want = SCALARS[kind]
    if isinstance(value, bool):
        return want is bool
    return isinstance(value, want) or (want is float and isinstance(value, int))


def words(kind: str) -> str:
    """What a value of the type named ``kind`` is, for messages: ``a whole number or a list of whole
    numbers (int | list[int])``."""
    if " | " in kind:
        return " or ".join(_plain(part) for part in kind.split(" | ")) + f" ({kind})"
    return LIST_WORDS.get(kind) or f"{_plain(kind)} ({kind})"


def _plain(kind: str) -> str:
    return LIST_WORDS.get(kind) or TYPE_WORDS[SCALARS[kind]]


def shown(name: str, spec: Any) -> str:
    """An argument as a signature shows it: ``width: int``, ``stride: int = 1``, ``kernel: int | list[int] = 1``."""
    kind, default = declared(spec)
    if default is None:
        return f"{name}: {kind}"
    value = str(default).lower() if isinstance(default, bool) else repr(default)
    return f"{name}: {kind} = {value}"
