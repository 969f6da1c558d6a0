"""The JSON Schema of spec files, for editors and CI: pydantic's schema of the settings models (``cnnspec.settings``,
rebuilt as pydantic models by ``pydantic_model``).

The structure models keep layer lists raw (``str | dict``), so the layer item schema is built here from
the op registry and the structures: one ``oneOf`` entry per op (its settings' schema, summary and
example, all declared by the op), one per structure, a bare op name, and a block call
(``{<block>: {...}}``, any other one-key mapping). Wherever a setting takes a number, boolean or fixed word, a ``$expression`` string is accepted
too. The schema is more lenient than ``cnnspec check`` (it knows no shapes, declared blocks or
parameters), never stricter: a spec the schema rejects, ``check`` rejects.
"""

from __future__ import annotations

import functools
import json
import typing
from types import UnionType
from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, WithJsonSchema, create_model
from pydantic import Field as PydanticField
from pydantic import Tag as PydanticTag
from pydantic_core import PydanticCustomError

from cnnspec import settings
from cnnspec.frontend.spec import STRUCTURES, BlocksFile, Projection, SpecFile
from cnnspec.ops import REGISTRY

# the ops a spec writes as layers (merges are written as the `residual` and `concat` structures)
OPS = {name: op.Settings for name, op in REGISTRY.items() if op.traits.inputs == 1}

# draft-07: what the YAML language server (VS Code, Neovim, ...) validates with; nothing newer is used
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
LAYER_REF = {"$ref": "#/definitions/layer"}
EXPR_REF = {"$ref": "#/definitions/expression"}
# pydantic's schema for the raw `LayerItem = str | dict[str, Any]`, replaced by LAYER_REF
_RAW_LAYER = {"anyOf": [{"type": "string"}, {"additionalProperties": True, "type": "object"}]}
_CORE_KEYS = ("type", "enum", "const", "items", "minimum", "maximum", "exclusiveMinimum")
# lower (and upper) bounds that the shape rules enforce (cnnspec.ops), by setting name, so
# editors flag `stride: 0` as it is typed
BOUNDS: dict[str, dict[str, float]] = {
    "out": {"minimum": 1}, "kernel": {"minimum": 1}, "stride": {"minimum": 1}, "dilation": {"minimum": 1},
    "groups": {"minimum": 1}, "padding": {"minimum": 0}, "repeat": {"minimum": 1},
    "p": {"minimum": 0, "maximum": 1}, "eps": {"exclusiveMinimum": 0},
}

STRUCTURE_EXAMPLES: dict[str, Any] = {
    "sequential": {"name": "features", "layers": [{"conv": {"out": 32, "kernel": 3}}, "relu"]},
    "residual": {"body": [{"conv": {"out": "$width", "kernel": 3, "padding": 1}}, "batchnorm"],
                 "shortcut": {"projection": "auto", "name": "downsample"}},
    "concat": {"branches": [[{"conv": {"out": 16, "kernel": 1}}], [{"conv": {"out": 16, "kernel": 3, "padding": 1}}]]},
    "stage": {"name": "layer2", "block": "basic", "repeat": 2, "args": {"width": 128}, "first": {"stride": 2}},
    "add": {"of": ["skip", "previous"]},
    "mul": {"of": ["features", "previous"]},
    "gate": {"body": [{"global_avgpool": {"name": "avgpool"}}, {"conv": {"out": 16, "kernel": 1, "name": "fc1"}}, "relu",
                      {"conv": {"out": 64, "kernel": 1, "name": "fc2"}}, "sigmoid"]},
}
# options of every layer written as a mapping (`cnnspec.frontend.spec.TENSOR_OPTIONS`)
TENSOR_OPTION_SCHEMAS: dict[str, Any] = {
    "as": {"type": "string", "description": "Name this layer's output, to take it later with `from:` or `of:`.",
           "examples": ["skip1"]},
    "from": {"type": "string", "description": "Take a tensor named earlier with `as:` as this layer's input "
             "(`input`: the spec's input, inside a block the block's).", "examples": ["skip1", "input"]},
    "training_only": {"type": "boolean", "description": "Run this layer only in training (an auxiliary "
                      "classifier): its tensors are in the state_dict and the parameter count, not in the inference "
                      "MACs, the ONNX graph or the eval-mode forward.", "examples": [True]},
}
# structures whose settings are read as written (their layer items are substituted one by one)
UNSUBSTITUTED = frozenset({"residual", "concat", "gate"})
STRUCTURE_SUMMARIES = {
    "sequential": "A named scope running its layers in order (a submodule, nn.Sequential).",
    "residual": "out = body(x) + shortcut(x); the shortcut is the identity, a projection or a layer list.",
    "concat": "Channel concatenation of branches that all read the same input (an empty branch is the input).",
    "stage": "`repeat` instances of a block, numbered 0..repeat-1 (or `prefix` + number); `first` "
             "overrides arguments of instance 0.",
    "add": "The sum of named tensors (`as:` names; `previous` is the layer before's output), of equal or "
           "broadcastable shapes.",
    "mul": "The elementwise product of named tensors (`as:` names, `previous`), broadcast as PyTorch does (a "
           "[C, 1, 1] tensor scales each channel of a [C, H, W] one).",
    "gate": "out = body(x) * x, broadcast (squeeze-and-excitation: the body ends in [C, 1, 1]); the body's "
            "layers are named in the enclosing scope.",
}


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a spec file or a block library."""
    defs: dict[str, Any] = {}
    spec = _model_schema(SpecFile, defs)
    _input(spec)
    blocks = _model_schema(BlocksFile, defs)
    defs.update({"SpecFile": spec, "BlocksFile": blocks, "expression": _expression(), "layer": _layer(defs)})
    defs["Projection"] = _settings(Projection, {}, "A 1x1 conv (+ norm) shortcut, added where needed.")
    schema = {
        "$schema": SCHEMA_DIALECT,
        "title": "cnnspec spec",
        "description": "A CNN architecture (`name`, `input`, `layers`) or a block library (`blocks` only) "
        "for cnnspec. Generated by `cnnspec schema`; `cnnspec check` also checks shapes and budgets.",
        "anyOf": [{"$ref": "#/definitions/SpecFile"}, {"$ref": "#/definitions/BlocksFile"}],
        "definitions": dict(sorted(defs.items())),
    }
    return _replace_layers(schema)


def schema_text() -> str:
    """The schema as written to ``schema/cnnspec.schema.json``: stable order, two-space indent."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"


# -- models as pydantic's ----------------------------------------------------------------------------------
@functools.cache
def pydantic_model(model: type[settings.Model]) -> type[BaseModel]:
    """``model`` as a strict pydantic model with the same fields, defaults, documentation and checks (its JSON
    Schema is pydantic's; ``tests/test_settings.py`` validates with both)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        default: Any = ... if info.is_required() else info.default
        extra: dict[str, Any] = {k: v for k, v in (("description", info.description), ("examples", info.examples),
                                                    *info.bounds.items()) if v is not None}
        declared = PydanticField(default_factory=info.default_factory, **extra) \
            if info.default_factory is not None else PydanticField(default, **extra)
        fields[name] = (_pydantic_type(info.annotation), declared)
    config = ConfigDict(extra="forbid", strict=True)
    made: type[BaseModel] = create_model(model.__name__, __config__=config, __doc__=model.__dict__.get("__doc__"),
                                         __module__=model.__module__, **fields)
    return made


def _pydantic_type(annotation: Any) -> Any:
    """``annotation`` with settings models and markers replaced by their pydantic counterparts."""
    if isinstance(annotation, type) and issubclass(annotation, settings.Model):
        return pydantic_model(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return Annotated[(_pydantic_type(args[0]), *[_pydantic_marker(m) for m in args[1:]])]  # type: ignore[valid-type]
    if origin in (Union, UnionType):
        return Union[tuple(_pydantic_type(a) for a in args)]  # noqa: UP007 (built from a tuple)
    if origin in (list, dict):
        return origin[tuple(_pydantic_type(a) for a in args)]
    return annotation


def _pydantic_marker(marker: Any) -> Any:
    if isinstance(marker, settings.Before):
        return BeforeValidator(_pydantic_before(marker.function))
    if isinstance(marker, settings.JsonSchema):
        return WithJsonSchema(marker.schema)
    if isinstance(marker, settings.Tag):
        return PydanticTag(marker.name)
    if isinstance(marker, settings.Pick):
        return Discriminator(marker.function)
    return marker


def _pydantic_before(function: Any) -> Any:
    def before(value: Any) -> Any:
        try:
            return function(value)
        except settings.SettingError as exc:
            raise PydanticCustomError(exc.kind, exc.message) from None

    before.__name__ = function.__name__
    return before


# -- models --------------------------------------------------------------------------------------------
def _model_schema(model: type[settings.Model], defs: dict[str, Any]) -> dict[str, Any]:
    """``model``'s schema without titles; nested models go to ``defs``."""
    schema = _strip_titles(pydantic_model(model).model_json_schema(ref_template="#/definitions/{model}"))
    defs.update(schema.pop("$defs", {}))
    _fill_examples(schema)
    for sub in defs.values():
        _fill_examples(sub)
    return schema


def _settings(model: type[settings.Model], defs: dict[str, Any], summary: str, expressions: bool = True
              ) -> dict[str, Any]:
    """The schema of an op's or structure's settings; with ``expressions``, every field also accepts a
    ``$expression`` (the resolver substitutes them before validating these settings)."""
    schema = _model_schema(model, defs)
    props = {name: _bounded(field, BOUNDS.get(name, {})) for name, field in schema["properties"].items()}
    schema["properties"] = {name: _with_expr(field) for name, field in props.items()} if expressions else props
    schema["description"] = summary
    return schema


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _fill_examples(schema: dict[str, Any]) -> None:
    """Give every property an example: its declared ones, else its default."""
    for field in schema.get("properties", {}).values():
        if "examples" not in field and field.get("default") not in (None, [], {}):
            field["examples"] = [field["default"]]


def _bounded(field: dict[str, Any], bounds: dict[str, float]) -> dict[str, Any]:
    """``field`` with ``bounds`` on every number it takes (list items included)."""
    if not bounds:
        return field
    if "anyOf" in field:
        return {**field, "anyOf": [_bounded(m, bounds) for m in field["anyOf"]]}
    if field.get("type") in ("integer", "number"):
        return {**field, **bounds}
    if field.get("type") == "array" and isinstance(field.get("items"), dict):
        return {**field, "items": _bounded(field["items"], bounds)}
    return field


def _input(spec: dict[str, Any]) -> None:
    """``input``: 1 to 4 sizes, each a positive whole number or a ``$expression``."""
    field = spec["properties"]["input"]
    field.update(minItems=1, maxItems=4, items={"anyOf": [{"type": "integer", "minimum": 1}, EXPR_REF]})


# -- expressions ---------------------------------------------------------------------------------------
def _expression() -> dict[str, Any]:
    """No ``examples``: the YAML language server offers the examples of every alternative of a setting as
    its values, so `$width` would be offered for every setting of every spec, whatever it declares."""
    return {
        "type": "string",
        "pattern": r"\$",
        "description": "A `$expression`: a parameter or block argument (`$width`) or arithmetic on them "
        "(`$width * 4`, `max($c // 2, 8)`, `ceil(3 * $depth_mult)`, `make_divisible(32 * $width_mult, 8)`), "
        "substituted before the setting is checked.",
    }


def _with_expr(field: dict[str, Any]) -> dict[str, Any]:
    """``field`` also accepting a ``$expression`` wherever it takes a number, boolean or fixed word."""
    if "anyOf" in field:
        members = [_with_expr(m) if m.get("type") == "array" else m for m in field["anyOf"]]
        if any(_scalar(m) for m in members):
            members.append(EXPR_REF)
        return {**field, "anyOf": members}
    if _scalar(field):
        core = {k: field[k] for k in _CORE_KEYS if k in field}
        rest = {k: v for k, v in field.items() if k not in core}
        return {"anyOf": [core, EXPR_REF], **rest}
    if field.get("type") == "array" and isinstance(field.get("items"), dict):
        return {**field, "items": _with_expr(field["items"])}
    return field


def _scalar(schema: dict[str, Any]) -> bool:
    return "enum" in schema or "const" in schema or schema.get("type") in ("integer", "number", "boolean")


# -- layers --------------------------------------------------------------------------------------------
def _layer(defs: dict[str, Any]) -> dict[str, Any]:
    names = sorted([*OPS, *STRUCTURES])
    entries: list[dict[str, Any]] = [{"title": "op or block name", **_bare(names)}]
    for op, model in OPS.items():
        defs[f"op.{op}"] = _with_tensor_options(_settings(model, defs, model.summary))
        optional = not any(f.is_required() for f in model.model_fields.values())
        entries.append(_mapping(op, f"#/definitions/op.{op}", model.summary, optional, model.example))
    for name, structure in STRUCTURES.items():
        summary = STRUCTURE_SUMMARIES[name]
        defs[f"structure.{name}"] = _with_tensor_options(_settings(structure, defs, summary,
                                                                   expressions=name not in UNSUBSTITUTED))
        entries.append(_mapping(name, f"#/definitions/structure.{name}", summary, False, STRUCTURE_EXAMPLES[name]))
    entries.append({"title": "block call", **_block_call(names)})
    return {"description": "A layer: an op name (`- relu`), an op with settings (`- conv: {out: 16, kernel: 3}`), "
            "a structure (sequential, residual, concat, stage) or a block call (`- basic: {width: 64}`).",
            "oneOf": entries}


def _with_tensor_options(schema: dict[str, Any]) -> dict[str, Any]:
    """A layer's settings schema that also takes ``as:`` and ``from:``."""
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {**schema["properties"], **TENSOR_OPTION_SCHEMAS}
    return schema


def _bare(names: list[str]) -> dict[str, Any]:
    """A bare word: an op whose settings are all optional, or a block taking no required arguments."""
    words = [{"const": op, "description": model.summary} for op, model in OPS.items()
             if not any(f.is_required() for f in model.model_fields.values())]
    block = {"not": {"enum": names}, "description": "A block whose arguments all have defaults."}
    return {"type": "string", "description": "An op with default settings, or a block.", "anyOf": [*words, block]}


def _mapping(name: str, ref: str, summary: str, optional: bool, example: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"anyOf": [{"$ref": ref}, {"type": "null"}]} if optional else {"$ref": ref}
    return {
        "title": name,  # the YAML language server labels the alternative by it (else `object(cnnspec spec)`)
        "type": "object",
        "description": summary,
        "properties": {name: {**settings, "description": summary}},
        "required": [name],
        "additionalProperties": False,
        "examples": [{name: example}],
    }


def _block_call(names: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A block call: `{<block name>: {argument: value, name: ...}}`.",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"not": {"enum": names}},
        "additionalProperties": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "examples": [{"basic": {"width": 64, "stride": 2, "name": "block1"}}],
    }


def _replace_layers(node: Any) -> Any:
    """Point every raw layer item of the structure models at ``#/definitions/layer``."""
    if node == _RAW_LAYER:
        return dict(LAYER_REF)
    if isinstance(node, dict):
        return {k: _replace_layers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_layers(v) for v in node]
    return node
