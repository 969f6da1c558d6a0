"""Typed settings records: what a spec may write for an op or a structure, declared as annotated class fields
and checked strictly, with every error located by its data path.

    class PoolSettings(Model):
        kernel: int | list[int] = Field(description="Window size.", examples=[2])
        stride: int | list[int] | None = Field(None, description="Step; defaults to the kernel.")

    PoolSettings.model_validate({"kernel": 2})          # PoolSettings(kernel=2, stride=None)
    PoolSettings.model_validate({"kernel": "2"})        # ValidationError: int_type at ('kernel', 'int'), ...

Checking is strict: no value is converted, except a whole number where a float is asked (``eps: 1`` is 1.0);
``true`` is not a number and ``"3"`` not an integer. Unknown keys are refused. A union (``int | list[int]``)
takes the first alternative that fits, and when none does, reports each alternative's error under its name
(``('kernel', 'int')``, ``('kernel', 'list[int]', 1)``).

Why not pydantic, which cnnspec used until this module: the settings are flat records of numbers, words and
lists, and importing pydantic and building its ~60 models took 0.11 s of ``cnnspec check``'s 0.3 s budget, on
every start. This module keeps the part of pydantic's interface that cnnspec used (``model_validate``,
``model_fields``, ``model_dump``, ``model_copy``, ``ValidationError.errors()`` with pydantic's error types,
locations and wording), so the models and the messages built from the errors (``cnnspec.frontend.messages``)
read as before. The JSON Schema is still pydantic's: ``cnnspec.frontend.schema`` rebuilds each model as a
pydantic model when asked (``pydantic_model``), and ``tests/test_settings.py`` checks that the two accept and
refuse the same values with the same errors.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable, Iterable
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, Literal, Union

Loc = tuple[Any, ...]
Check = Callable[[Any], Any]  # returns the value checked, or raises _Invalid


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a field that must be written


class FieldInfo:
    """A field's declaration: default (or ``default_factory``), description, examples and bounds."""

    def __init__(self, default: Any = REQUIRED, *, default_factory: Callable[[], Any] | None = None,
                 description: str | None = None, examples: list[Any] | None = None,
                 ge: float | None = None, gt: float | None = None, le: float | None = None,
                 lt: float | None = None) -> None:
        self.default = default
        self.default_factory = default_factory
        self.description = description
        self.examples = examples
        self.bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
        self.annotation: Any = None  # filled when the model is first used

    def is_required(self) -> bool:
        return self.default is REQUIRED and self.default_factory is None

    def get_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return copy.copy(self.default) if isinstance(self.default, (list, dict)) else self.default


def Field(default: Any = REQUIRED, **info: Any) -> Any:
    """A field's default and documentation: ``out: int = Field(64, description="...", examples=[64])``."""
    return FieldInfo(default, **info)


# -- markers for Annotated[...] ------------------------------------------------------------------------------

class Before:
    """``Annotated[int, Before(f)]``: ``f`` reads the written value first (``2e7`` -> 20000000) and may refuse it
    with :class:`SettingError`."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function


class JsonSchema:
    """``Annotated[T, JsonSchema({...})]``: the JSON Schema written for T (checking ignores it)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema


class Tag:
    """The name of an alternative of a :class:`Pick` union, used in error locations."""

    def __init__(self, name: str) -> None:
        self.name = name


class Pick:
    """``Annotated[Annotated[A, Tag("a")] | Annotated[B, Tag("b")], Pick(f)]``: ``f(value)`` names the one
    alternative checked (its errors are located under that name)."""

    def __init__(self, function: Callable[[Any], str]) -> None:
        self.function = function


# -- errors --------------------------------------------------------------------------------------------------

class SettingError(ValueError):
    """Raised by a :class:`Before` function: the value is refused; ``kind`` is the error type."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ValidationError(ValueError):
    """The errors of one validation, as pydantic reports them: dicts with ``type``, ``loc``, ``msg``,
    ``input`` and, for some types, ``ctx``."""

    def __init__(self, title: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s) for {title}: "
                         + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.title = title
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self._errors]


class _Invalid(Exception):
    """A value refused inside a check: its errors, located relative to that value."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


_MESSAGES = {
    "int_type": "Input should be a valid integer",
    "float_type": "Input should be a valid number",
    "bool_type": "Input should be a valid boolean",
    "string_type": "Input should be a valid string",
    "list_type": "Input should be a valid list",
    "dict_type": "Input should be a valid dictionary",
    "none_type": "Input should be None",
    "missing": "Field required",
    "extra_forbidden": "Extra inputs are not permitted",
}
_BOUND_ERRORS = {
    "ge": ("greater_than_equal", "greater than or equal to"), "gt": ("greater_than", "greater than"),
    "le": ("less_than_equal", "less than or equal to"), "lt": ("less_than", "less than"),
}


def _error(kind: str, value: Any, loc: Loc = (), msg: str | None = None, ctx: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    error = {"type": kind, "loc": loc, "msg": msg or _MESSAGES[kind], "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return error


def _fail(kind: str, value: Any) -> Any:
    raise _Invalid([_error(kind, value)])


def _under(errors: Iterable[dict[str, Any]], *prefix: Any) -> list[dict[str, Any]]:
    return [{**e, "loc": (*prefix, *e["loc"])} for e in errors]


# -- checks by type ------------------------------------------------------------------------------------------

def _int(value: Any) -> Any:
    return value if type(value) is int else _fail("int_type", value)


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    return float(value) if kind is int else _fail("float_type", value)


def _bool(value: Any) -> Any:
    return value if type(value) is bool else _fail("bool_type", value)


def _str(value: Any) -> Any:
    return value if type(value) is str else _fail("string_type", value)


def _none(value: Any) -> Any:
    return value if value is None else _fail("none_type", value)


def _any(value: Any) -> Any:
    return value


Compiled = tuple[Check, str, frozenset[type] | None]  # a check, its name in locations, the types it may take
ANY_TYPE = None  # a check that may take a value of any type (Any, a Before function, a picked union)

_SIMPLE: dict[Any, Compiled] = {
    int: (_int, "int", frozenset({int})), float: (_float, "float", frozenset({float, int})),
    bool: (_bool, "bool", frozenset({bool})), str: (_str, "str", frozenset({str})),
    NoneType: (_none, "none", frozenset({NoneType})), None: (_none, "none", frozenset({NoneType})),
    Any: (_any, "any", ANY_TYPE),
}


def _literal(values: tuple[Any, ...]) -> Compiled:
    shown = [repr(v) for v in values]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    allowed = {(type(v), v) for v in values}

    def check(value: Any) -> Any:
        try:
            if (type(value), value) in allowed:
                return value
        except TypeError:  # an unhashable value (a list)
            pass
        raise _Invalid([_error("literal_error", value, msg=f"Input should be {expected}", ctx={"expected": expected})])

    return check, f"literal[{','.join(shown)}]", frozenset(type(v) for v in values)


def _list(item: Check) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not list:
            _fail("list_type", value)
        out, errors = [], []
        for index, v in enumerate(value):
            try:
                out.append(item(v))
            except _Invalid as exc:
                errors.extend(_under(exc.errors, index))
        if errors:
            raise _Invalid(errors)
        return out

    return check


def _dict(key: Check, item: Check) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not dict:
            _fail("dict_type", value)
        out, errors = {}, []
        for k, v in value.items():
            try:
                k = key(k)
            except _Invalid as exc:
                errors.extend(_under(exc.errors, k, "[key]"))
            try:
                out[k] = item(v)
            except _Invalid as exc:
                errors.extend(_under(exc.errors, k))
        if errors:
            raise _Invalid(errors)
        return out

    return check


def _union(members: list[Compiled]) -> Check:
    """The first member that takes the value. The members that may take a value of its type are tried first
    (most values fit the first of them: no error is made); when none does, every member's errors."""
    by_type: dict[type, list[Check]] = {}

    def candidates(kind: type) -> list[Check]:
        found = by_type.get(kind)
        if found is None:
            found = by_type[kind] = [m for m, _, types in members if types is ANY_TYPE or kind in types]
        return found

    def check(value: Any) -> Any:
        for member in candidates(type(value)):
            try:
                return member(value)
            except _Invalid:
                pass
        errors = []
        for member, tag, _ in members:
            try:
                return member(value)
            except _Invalid as exc:
                errors.extend(_under(exc.errors, tag))
        raise _Invalid(errors)

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def _before(function: Callable[[Any], Any], inner: Check) -> Check:
    def check(value: Any) -> Any:
        try:
            value = function(value)
        except SettingError as exc:
            raise _Invalid([_error(exc.kind, value, msg=exc.message)]) from None
        return inner(value)

    return check


def _pick(function: Callable[[Any], str], members: dict[str, Check]) -> Check:
    def check(value: Any) -> Any:
        tag = function(value)
        try:
            return members[tag](value)
        except _Invalid as exc:
            raise _Invalid(_under(exc.errors, tag)) from None

    return check


def _bounded(inner: Check, bounds: dict[str, float]) -> Check:
    tests = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}

    def check(value: Any) -> Any:
        value = inner(value)
        for name, bound in bounds.items():
            if isinstance(value, (int, float)) and not tests[name](value, bound):
                kind, words = _BOUND_ERRORS[name]
                raise _Invalid([_error(kind, value, msg=f"Input should be {words} {bound}", ctx={name: bound})])
        return value

    return check


def compile_type(annotation: Any) -> Compiled:
    """The check of ``annotation``, its name in error locations (pydantic's: ``int``, ``list[int]``,
    ``literal['same','valid']``, ``union[str,dict[str,any]]``, a model's class name) and the Python types of
    the values it may take."""
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return annotation._check, annotation.__name__, frozenset({dict, annotation})
    if origin is Literal:
        return _literal(args)
    if origin is list:
        item, tag, _ = compile_type(args[0] if args else Any)
        return _list(item), f"list[{tag}]", frozenset({list})
    if origin is dict:
        (key, key_tag, _), (item, tag, _) = compile_type(args[0]), compile_type(args[1])
        return _dict(key, item), f"dict[{key_tag},{tag}]", frozenset({dict})
    if origin in (Union, UnionType):
        members = [a for a in args if a is not NoneType]
        inner, tag, types = compile_type(members[0]) if len(members) == 1 else _compile_union(members)
        if len(members) == len(args):
            return inner, tag, types
        return _nullable(inner), f"nullable[{tag}]", None if types is ANY_TYPE else types | {NoneType}
    if origin is Annotated:
        return _compile_annotated(args[0], args[1:])
    raise TypeError(f"settings fields cannot be of type {annotation!r}")


def _compile_union(members: list[Any]) -> Compiled:
    compiled = []
    for member in members:
        check, tag, types = compile_type(member)
        if typing.get_origin(member) is Annotated:
            tag = next((m.name for m in typing.get_args(member)[1:] if isinstance(m, Tag)), tag)
        compiled.append((check, tag, types))
    accepted = [types for _, _, types in compiled]
    union = ANY_TYPE if ANY_TYPE in accepted else frozenset().union(*accepted)  # type: ignore[arg-type]
    return _union(compiled), f"union[{','.join(tag for _, tag, _ in compiled)}]", union


def _compile_annotated(base: Any, markers: tuple[Any, ...]) -> Compiled:
    pick = next((m for m in markers if isinstance(m, Pick)), None)
    if pick is not None:
        members = typing.get_args(base)
        tagged = {next(m.name for m in typing.get_args(a)[1:] if isinstance(m, Tag)): compile_type(a)[0]
                  for a in members}
        return _pick(pick.function, tagged), "tagged-union", ANY_TYPE
    check, tag, types = compile_type(base)
    for marker in reversed(markers):
        if isinstance(marker, Before):
            check = _before(marker.function, check)
            tag, types = f"function-before[{marker.function.__name__}(), {tag}]", ANY_TYPE
    return check, tag, types


# -- models --------------------------------------------------------------------------------------------------

class _Plan:
    """A model's fields, compiled on first use: their declarations and checks in declaration order, and the
    defaults an instance starts from."""

    def __init__(self, model: type) -> None:
        hints = typing.get_type_hints(model, include_extras=True)
        self.fields: dict[str, FieldInfo] = {}
        for klass in reversed(model.__mro__):
            for name in inspect.get_annotations(klass):
                hint = hints[name]
                if name.startswith("_") or typing.get_origin(hint) is ClassVar or hint is ClassVar:
                    continue
                declared = getattr(model, name, REQUIRED)
                info = copy.copy(declared) if isinstance(declared, FieldInfo) else FieldInfo(declared)
                info.annotation = hint
                self.fields[name] = info
        self.checks: dict[str, Check] = {}
        for name, info in self.fields.items():
            check = compile_type(info.annotation)[0]
            self.checks[name] = _bounded(check, info.bounds) if info.bounds else check
        # every field in order, holding its default; a placeholder where the default is made per instance
        self.template = {name: info.default if _shared(info) else _MADE for name, info in self.fields.items()}
        self.made = [(name, info) for name, info in self.fields.items() if not _shared(info)]
        self.order = {name: index for index, name in enumerate(self.fields)}


_MADE: Any = object()  # in a plan's template: a default that each instance gets its own of (or none: required)


def _shared(info: FieldInfo) -> bool:
    """Whether every instance may hold the very default object (it cannot be changed in place)."""
    return info.default_factory is None and not info.is_required() and not isinstance(info.default, (list, dict))


_PLANS: dict[type, _Plan] = {}


def _plan_of(model: type) -> _Plan:
    plan = _PLANS.get(model)
    if plan is None:
        plan = _PLANS[model] = _Plan(model)
    return plan


class _ModelType(type):
    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        """Every field by name, in declaration order (inherited ones first)."""
        return _plan_of(cls).fields


class Model(metaclass=_ModelType):
    """A record of settings, checked strictly on :meth:`model_validate` (see the module docstring)."""

    __slots__ = ("__dict__", "_fields_set")

    def __init__(self, **data: Any) -> None:
        valid = type(self).model_validate(data)
        object.__setattr__(self, "__dict__", valid.__dict__)
        self._fields_set = valid._fields_set

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """An instance from ``data`` (a mapping), or :class:`ValidationError` with every error."""
        try:
            return cls._check(data)
        except _Invalid as exc:
            raise ValidationError(cls.__name__, exc.errors) from None

    @classmethod
    def _check(cls, data: Any) -> Any:
        if type(data) is not dict:
            if isinstance(data, cls):
                return data
            raise _Invalid([_error("model_type", data, msg=f"Input should be a valid dictionary or instance of "
                                   f"{cls.__name__}", ctx={"class_name": cls.__name__})])
        plan = _plan_of(cls)
        values = plan.template.copy()
        errors: list[tuple[int, list[dict[str, Any]]]] = []
        extra: list[dict[str, Any]] = []
        for key, value in data.items():
            check = plan.checks.get(key)
            if check is None:
                extra.append(_error("extra_forbidden", value, (key,)))
                continue
            try:
                values[key] = check(value)
            except _Invalid as exc:
                errors.append((plan.order[key], _under(exc.errors, key)))
        for name, info in plan.made:
            if name not in data:
                if info.is_required():
                    errors.append((plan.order[name], [_error("missing", data, (name,))]))
                else:
                    values[name] = info.get_default()
        if errors or extra:  # in pydantic's order: the fields' errors in the fields' order, then unknown keys
            raise _Invalid([e for _, found in sorted(errors, key=lambda item: item[0]) for e in found] + extra)
        made = object.__new__(cls)
        made.__dict__.update(values)
        made._fields_set = frozenset(data)
        return made

    @property
    def model_fields_set(self) -> frozenset[str]:
        """The fields the input wrote (the others took their defaults)."""
        return self._fields_set

    def model_dump(self, *, exclude_unset: bool = False, exclude_none: bool = False,
                   exclude: Iterable[str] | None = None) -> dict[str, Any]:
        """The fields as plain values (nested models as mappings), in declaration order."""
        left_out = set(exclude or ())
        return {k: _plain(v, exclude_none) for k, v in self.__dict__.items()
                if k not in left_out and not (exclude_unset and k not in self._fields_set)
                and not (exclude_none and v is None)}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        """A shallow copy, with ``update``'s values (not checked) set."""
        made = object.__new__(type(self))
        made.__dict__.update(self.__dict__)
        made.__dict__.update(update or {})
        made._fields_set = self._fields_set | frozenset(update or ())
        return made

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable records, as pydantic's

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __getstate__(self) -> dict[str, Any]:
        return {"values": self.__dict__, "set": self._fields_set}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state["values"])
        self._fields_set = state["set"]


def _plain(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, list):
        return [_plain(v, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, exclude_none) for k, v in value.items()}
    return value
