"""Turn validation errors (``cnnspec.settings``, in pydantic's form) into one-line messages a student understands, located in the file."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from cnnspec.errors import SourcePos, SpecError
from cnnspec.settings import Model, ValidationError

_EXPECTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


# settings whose alternatives (a word, a mapping, a list) pydantic reports apart: every accepted form at once
_FORMS = {
    "shortcut": (("`residual`",), ("`identity`, a projection `{projection: auto}` or `{projection: always}` (with "
                 "optional `name` and `norm: batchnorm|none`), or a list of layers")),
}

# names of a layer's or block's input size: never written in a layer, refused as spec params inside a block
INPUT_SIZES = frozenset({"in", "in_channels", "in_features", "input", "inputs", "cin", "c_in", "channels",
                         "channels_in", "input_channels"})


# names other libraries give to cnnspec's ops (PyTorch, Keras, papers): suggested before spelling matches
_ALIASES = {
    "dense": "linear", "fc": "linear", "fully_connected": "linear",
    "unflatten": "reshape", "view": "reshape",
    "deconv": "conv_transpose", "convtranspose": "conv_transpose", "transposed_conv": "conv_transpose",
    "interpolate": "upsample", "resize": "upsample",
    "center_crop": "crop", "centre_crop": "crop", "centercrop": "crop", "narrow": "slice",
}


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` when a close match exists, else an empty string. A known alias of one of
    ``choices`` (``dense`` for ``linear``) is the suggestion even when another spelling is closer."""
    options = list(choices)
    alias = _ALIASES.get(word.lower())
    if alias in options:
        return f"; did you mean `{alias}`?"
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`" if len(value) < 40 else f"`{value[:37]}...`"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


def _data_loc(loc: tuple[Any, ...], model: type[Model]) -> tuple[Any, ...]:
    """Keep the parts of a pydantic location that index data (field names, list indices, dict keys),
    dropping union-member tags such as ``'int'`` or ``'list[int]'``."""
    out: list[Any] = []
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and "[" not in part and part not in _TAGS):
            out.append(part)
    return tuple(out)


_TAGS = {"int", "str", "float", "bool", "list", "dict", "Projection", "literal['identity']", "function-after",
         "ArgDefault", "TypedDefault"}


def validation_errors(
    exc: ValidationError | list[Any],
    model: type[Model],
    what: str,
    pos_of: Callable[[tuple[Any, ...], bool], SourcePos],
    value_of: Callable[[tuple[Any, ...]], Any],
) -> list[SpecError]:
    """One :class:`SpecError` per setting at fault in ``exc``, in the order pydantic reports them.

    ``what`` names the thing validated (``conv `conv1```); ``pos_of(loc, key)`` locates a data path (its key
    when ``key``); ``value_of(loc)`` fetches the written value. The alternatives of a union (``kernel``: a
    number or a list) are one setting: a problem is reported once, in the words of all alternatives.
    ``exc`` may also be the list of pydantic's error dicts to report (some left out)."""
    errors = exc.errors() if isinstance(exc, ValidationError) else exc
    # a misspelt key also leaves the key it meant missing: report the misspelling only
    misspelt = {_data_loc(e["loc"], model)[:-1] for e in errors if e["type"] == "extra_forbidden"}
    groups: list[tuple[tuple[Any, ...], list[Any]]] = []
    for error in errors:
        loc = _data_loc(error["loc"], model)
        if error["type"] == "missing" and loc[:-1] in misspelt:
            continue
        for key, members in groups:
            if loc[:len(key)] == key or key[:len(loc)] == loc:
                members.append(error)
                break
        else:
            groups.append((loc, [error]))
    return [_message(errors, model, what, pos_of, value_of) for _, errors in groups]


def _message(
    errors: list[Any],
    model: type[Model],
    what: str,
    pos_of: Callable[[tuple[Any, ...], bool], SourcePos],
    value_of: Callable[[tuple[Any, ...]], Any],
) -> SpecError:
    """The message for one setting's errors (the alternatives of a union included)."""
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    missing = [e for e in errors if e["type"] == "missing"]
    first = (extra or missing or errors)[0]
    loc = _data_loc(first["loc"], model)
    field = str(loc[-1]) if loc else ""
    if len(loc) >= 3 and loc[0] == "blocks":
        what = f"block `{loc[1]}`"
    if first["type"] == "extra_forbidden":
        known = sorted(_fields(model, loc[:-1]))
        word, prep = ("option", "for") if what.startswith("`") else ("key", "in")
        message = f"unknown {word} `{field}` {prep} {what}"
        key, colon, rest = field.partition(":")
        if colon and key in known:
            message += f": write a space after the colon (`{key}: {rest.strip()}`)"
        elif field in INPUT_SIZES and what.startswith("`"):
            message += ": the input size is never written, each layer takes it from the layer before"
        elif field in ("activation", "act") and what.startswith("`"):
            written = value_of(loc)
            layer = written if isinstance(written, str) and written.isidentifier() else "relu"
            message += f": an activation is a layer of its own; write `- {layer}` on the line after this layer"
        else:
            message += suggest(field, known) or f" ({word}s: {', '.join(known)})"
        return SpecError(message, pos_of(loc, True))
    if first["type"] == "missing":
        return SpecError(f"{what} needs `{field}`", pos_of(loc[:-1], True))
    value = value_of(loc)
    if not loc:
        return SpecError(f"the settings of {what} should be a mapping such as `{{name: x}}`, got {_show(value)}",
                         pos_of(loc, False))
    if field in _FORMS and what in _FORMS[field][0]:
        return SpecError(f"`{field}` of {what} must be one of {_FORMS[field][1]}; got {_show(value)}", pos_of(loc, False))
    if first["type"] == "literal_error":
        allowed = first.get("ctx", {}).get("expected", "")
        return SpecError(f"`{field}` of {what} must be one of {allowed}; got {_show(value)}", pos_of(loc, False))
    expected = _expected_for(errors, first)
    label = f"`{field}`" if isinstance(loc[-1], str) else f"item {loc[-1]} of `{_last_field(loc)}`"
    hint = " (one item per `- ` line)" if expected == "a list" and isinstance(value, dict) else ""
    if expected.startswith("a whole number") and isinstance(value, float) and value.is_integer():
        hint = "; `/` and float values make a float in `$expressions`: use `//` to divide whole numbers"
    if isinstance(value, str) and _is_number(value) and "string" not in expected and first["type"] != "budget_count":
        return SpecError(f"{label} of {what} should be {expected}, got the string `\"{value}\"`; write the number "
                         "without quotes", pos_of(loc, False))
    return SpecError(f"{label} of {what} should be {expected}, got {_show(value)}{hint}", pos_of(loc, False))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c.isdigit() for c in text)


def _last_field(loc: tuple[Any, ...]) -> str:
    return next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")


def _expected_for(errors: list[Any], first: Any) -> str:
    """Words for what a field accepts, merging the alternatives of a union."""
    same_field = [e for e in errors if e["loc"][:1] == first["loc"][:1]]
    words: list[str] = []
    for err in same_field:
        if err["type"] == "literal_error":
            word = "one of " + err.get("ctx", {}).get("expected", "")
        elif err["type"] in _EXPECTED:
            word = _EXPECTED[err["type"]]
            if len(err["loc"]) > 1 and "list[" in str(err["loc"][1]):
                word = "a list of " + ("whole numbers" if "int" in str(err["loc"][1]) else "values")
        else:
            word = err["msg"].removeprefix("Input should be ").lower()
        if word not in words:
            words.append(word)
    text = " or ".join(words)
    return text.replace("a whole number or a string", "a whole number or a `$expression`")


def _fields(model: type[Model], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at data path ``loc`` under ``model`` (through optional fields, dicts
    of models such as ``blocks`` and lists), or [] when there is none."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if _is_model(current):
            if not isinstance(part, str) or part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Model)


def _unwrap(annotation: Any) -> Any:
    """From a union (``Constraints | None``, a block argument's value or ``{type, default}``), the member that
    holds a model, else one that is a container."""
    if _is_model(annotation) or get_origin(annotation) in (dict, list):
        return annotation
    members = _members(annotation)
    return next((m for m in members if _is_model(m)),
                next((m for m in members if get_origin(m) in (dict, list)), annotation))


def _members(annotation: Any) -> list[Any]:
    """The members of a union, through ``Annotated`` and nested unions."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]
