"""Stage 2, parse: a loaded file's data to the parsed spec (``ast``), checking everything that needs no
other file and no shapes: the file's structure, every layer's form, every op's settings (names, types,
allowed words) and the syntax of every ``$expression``. Every problem is reported, in file order.

Op settings are checked here as written. A setting given as a ``$expression`` cannot be checked before
``elaborate`` evaluates it, so problems whose value is (or contains) an expression are left to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnspec.errors import SpecError
from cnnspec.frontend import ast
from cnnspec.frontend.argtypes import fits, is_type, is_typed_default, misspelt_type, words
from cnnspec.frontend.expr import ExprError, is_expression
from cnnspec.frontend.expr import parse as parse_expression
from cnnspec.frontend.messages import _data_loc, validation_errors
from cnnspec.frontend.names import check_name
from cnnspec.frontend.read import DataPath, Doc
from cnnspec.frontend.spec import (
    RESERVED_TENSORS,
    STRUCTURES,
    TENSOR_OPTIONS,
    BlocksFile,
    ConcatSettings,
    GateSettings,
    MergeSettings,
    ResidualSettings,
    SequentialSettings,
    SpecFile,
    StageSettings,
)
from cnnspec.ops import REGISTRY
from cnnspec.settings import Model, ValidationError

# the ops a spec writes as layers (merges are written as the `residual` and `concat` structures)
LAYER_OPS = {name: op for name, op in REGISTRY.items() if op.traits.inputs == 1}
# Numbers written in `weights:` (fixed kernels) per file: the torch build writes each into its Python source
# (1,000,000 gave 17 MB of source, 7 s and 0.9 GB to compile it). Counted before anything else reads them.
MAX_FIXED_VALUES = 100_000


def is_library(data: Mapping[str, Any]) -> bool:
    """A file holding only ``blocks`` (and ``use``): a block library, imported by specs."""
    return "layers" not in data and "blocks" in data and "input" not in data


def parse(doc: Doc, what: str | None = None) -> tuple[ast.SpecAst | None, list[SpecError]]:
    """The parsed spec (or block library) and every problem found; None when the file's own structure is
    wrong (a missing ``name``, ``layers`` that is not a list, ...), after parsing what can be parsed.
    ``what`` names the file in messages (``imported file `x.yaml```)."""
    found = doc.parsed.get(what)
    if found is None:  # the parse of a file is a pure function of it, made once (``read.DocMemo``)
        found = doc.parsed[what] = _Parser(doc).file(what)
    spec, errors = found
    return spec, list(errors)


def contains_expression(value: Any) -> bool:
    if isinstance(value, dict):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_expression(v) for v in value)
    return is_expression(value)


class _Parser:
    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.errors: list[SpecError] = []
        self.fixed_values = 0  # numbers in this file's `weights:` so far (MAX_FIXED_VALUES)

    # -- positions --------------------------------------------------------------------------------------
    def pos(self, path: DataPath, key: bool = False) -> Any:
        return self.doc.pos(path, key=key)

    def spots(self, path: DataPath) -> ast.Spots:
        """The positions of everything written under the mapping at ``path``."""
        return ast.Spots(self.pos(path), self.doc, path)

    # -- checking ---------------------------------------------------------------------------------------
    def check(self, model: type[Model], data: Any, path: DataPath, what: str, tolerant: bool = True
              ) -> tuple[Any, bool]:
        """``data`` validated against ``model`` (None when it is not valid as written) and whether it is
        valid apart from its ``$expressions``, which ``elaborate`` checks once evaluated (``tolerant``:
        settings may be expressions; a file's own keys may not)."""
        try:
            return model.model_validate(data), True
        except ValidationError as exc:
            real = [e for e in exc.errors() if not (tolerant and _explained_by_expression(e, data, model))]
            self.errors.extend(validation_errors(real, model, what, lambda loc, key: self.pos((*path, *loc), key),
                                                 lambda loc: _get(data, loc)) if real else [])
            return None, not real

    def check_settings(self, model: type[Model], data: dict[str, Any], path: DataPath, what: str
                       ) -> tuple[Any, bool]:
        """:meth:`check` for an op's settings (a flat mapping, checked for every layer of every block): a
        setting given as an expression is left out, and so not missing."""
        pending = {k for k, v in data.items() if contains_expression(v)}
        written = {k: v for k, v in data.items() if k not in pending} if pending else data
        try:
            return model.model_validate(written), True
        except ValidationError as exc:
            if all(e["type"] == "missing" and e["loc"][:1] and e["loc"][0] in pending for e in exc.errors()):
                return None, True
            found = validation_errors(exc, model, what, lambda loc, key: self.pos((*path, *loc), key),
                                      lambda loc: _get(written, loc))
            real = [e for e in found if not e.message.endswith(tuple(f"needs `{k}`" for k in pending))]
            self.errors.extend(real)
            return None, not real

    def expressions(self, value: Any, path: DataPath) -> None:
        """Report the syntax errors of every ``$expression`` in ``value``."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.expressions(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.expressions(v, (*path, i))
        elif is_expression(value):
            try:
                parse_expression(value)
            except ExprError as exc:
                self.errors.append(SpecError(str(exc), self.pos(path)))

    # -- the file ---------------------------------------------------------------------------------------
    def file(self, what: str | None) -> tuple[ast.SpecAst | None, list[SpecError]]:
        data = self.doc.data
        library = is_library(data)
        model: type[Model] = BlocksFile if library else SpecFile
        top, _ = self.check(model, data, (), what or ("the block library" if library else "the spec"), tolerant=False)
        blocks = tuple(self.blocks(data.get("blocks")))
        layers = self.layers(data["layers"], ("layers",)) if isinstance(data.get("layers"), list) else None
        if not library:
            self.expressions(data.get("params"), ("params",))
            self.expressions(data.get("input"), ("input",))
            self.expressions(data.get("constraints"), ("constraints",))
        if top is None or self.fixed_values > MAX_FIXED_VALUES:  # no positions for a million numbers
            return None, self.errors
        spec = ast.SpecAst(
            file=self.doc.file,
            name=getattr(top, "name", ""),
            description=top.description,
            params=dict(getattr(top, "params", {})),
            input=tuple(getattr(top, "input", ())),
            use=tuple((rel, self.pos(("use", i))) for i, rel in enumerate(top.use)),
            blocks=blocks,
            layers=None if library else layers,
            constraints=self.constraints(getattr(top, "constraints", None)),
            spots=self.spots(()),
            data=data,
            outputs=self.outputs(getattr(top, "outputs", None)),
        )
        return spec, self.errors

    def outputs(self, given: dict[str, str] | list[str] | None) -> dict[str, str] | tuple[str, ...] | None:
        """``outputs:`` with every name checked: output names (the mapping's keys) and tensor names are
        identifiers; a tensor listed twice, or two names for one tensor, is refused."""
        if given is None:
            return None
        pairs = list(given.items()) if isinstance(given, dict) else [(None, t) for t in given]
        if not pairs:
            self.errors.append(SpecError("`outputs` names at least one tensor", self.pos(("outputs",))))
            return None
        seen: dict[str, Any] = {}
        ok = True
        for index, (name, tensor) in enumerate(pairs):
            where = ("outputs", index if name is None else name)
            problem = None if name is None else output_name_problem(name)
            if problem is not None:
                self.errors.append(SpecError(problem, self.pos(where, key=True)))
                ok = False
            problem = tensor_name_problem(tensor, "outputs", previous=True)
            if problem is None and tensor in seen:
                first = seen[tensor]
                problem = (f"tensor `{tensor}` is listed twice in `outputs`; each output is a different tensor"
                           if name is None else f"tensor `{tensor}` is already output `{first}`; each output is a "
                           "different tensor, so give it one name")
            if problem is not None:
                self.errors.append(SpecError(problem, self.pos(where)))
                ok = False
            seen.setdefault(tensor, name)
        if not ok:
            return None
        return dict(given) if isinstance(given, dict) else tuple(given)

    def constraints(self, model: Any) -> dict[str, Any]:
        if model is None:
            return {}
        return model.model_dump(exclude_none=True)

    def blocks(self, table: Any) -> list[ast.BlockDef]:
        if not isinstance(table, dict):
            return []
        out = []
        for name, definition in table.items():
            if not isinstance(definition, dict) or not isinstance(definition.get("layers"), list):
                continue  # the file's model reports it
            args = definition["args"] if isinstance(definition.get("args"), dict) else {}
            args = {key: self.argument(spec, ("blocks", name, "args", key)) for key, spec in args.items()}
            layers = self.layers(definition["layers"], ("blocks", name, "layers"))
            out.append(ast.BlockDef(name, tuple(args.items()), layers, self.pos(("blocks", name), key=True),
                                    self.doc.file))
        return out

    def argument(self, spec: Any, where: DataPath) -> Any:
        """A block argument's declaration; ``{type: ..., default: ...}`` whose default is not of its type is
        reported here (the file's model reports any other malformed mapping), and read as its type alone."""
        meant = misspelt_type(spec)
        if meant is not None:  # read as the type meant, so that the calls are checked as they will be
            self.errors.append(SpecError(f"argument `{where[-1]}` of block `{where[1]}`: `{spec}` is not a type "
                                         f"name; did you mean `{meant}`?", self.pos(where), code="invalid-value"))
            return meant
        if not isinstance(spec, dict):
            return spec
        kind = spec.get("type")
        if not is_typed_default(spec) or not is_type(kind):
            return kind if is_type(kind) else "int"  # reported by the file's model
        if not fits(spec["default"], kind):
            self.errors.append(SpecError(f"the default {spec['default']!r} of argument `{where[-1]}` of block "
                                         f"`{where[1]}` should be {words(kind)}: give a default of that type or "
                                         "widen the type", self.pos((*where, "default"))))
            return kind
        return spec

    # -- layers -----------------------------------------------------------------------------------------
    def layers(self, items: list[Any], path: DataPath) -> tuple[ast.Layer, ...]:
        return tuple(self.layer(item, (*path, index)) for index, item in enumerate(items))

    def layer(self, item: Any, path: DataPath) -> ast.Layer:
        settings: Any  # as written: a mapping, or anything else that is reported
        if isinstance(item, str):
            word, settings, at, pos = item, {}, path, self.pos(path)
        elif isinstance(item, dict) and len(item) == 1:
            word, settings = next(iter(item.items()))
            at = (*path, word)
            pos = self.pos(at, key=True)
            settings = {} if settings is None else settings
        else:
            self.errors.append(SpecError(layer_shape_message(item), self.pos(path)))
            return ast.Broken(self.pos(path))
        options: dict[str, Any] = {}
        if isinstance(settings, dict) and any(k in settings for k in TENSOR_OPTIONS):
            options = {k: settings[k] for k in TENSOR_OPTIONS if k in settings}
            settings = {k: v for k, v in settings.items() if k not in TENSOR_OPTIONS}
        errors = len(self.errors)
        layer = self.word(word, settings, at, pos)
        layer = layer if len(self.errors) == errors and layer is not None else ast.Broken(pos)
        if options:
            return self.tap(layer, options, at)
        return layer

    def word(self, word: str, settings: Any, at: DataPath, pos: Any) -> ast.Layer | None:
        if word in STRUCTURES:
            layer = getattr(self, word)(settings, at, pos)
        elif word in LAYER_OPS:
            layer = self.op_call(word, settings, at, pos)
        else:
            self.expressions(settings, at)
            layer = ast.BlockUse(word, settings, pos, self.spots(at))
        return layer

    def tap(self, layer: ast.Layer, options: dict[str, Any], path: DataPath) -> ast.Layer:
        """A layer with ``as:`` and/or ``from:``: each must be a tensor name (``from`` may also be
        ``input``)."""
        ok = True
        for key, value in options.items():
            if key == "training_only":
                problem = None if isinstance(value, bool) else f"`training_only` is true or false, got {_shown(value)}"
            else:
                problem = tensor_name_problem(value, key)
            if problem is not None:
                self.errors.append(SpecError(problem, self.pos((*path, key))))
                ok = False
        if not ok:
            return layer
        return ast.Tap(layer, options.get("as"), options.get("from"), self.spots(path),
                       options.get("training_only", False))

    def op_call(self, op: str, settings: Any, path: DataPath, pos: Any) -> ast.OpCall | None:
        model = REGISTRY[op].Settings
        if not isinstance(settings, dict):
            self.errors.append(SpecError(not_a_mapping(settings, f"`{op}`", _example_of(model, settings)),
                                         self.pos(path)))
            return None
        if self.too_many_fixed_values(op, settings.get("weights"), (*path, "weights")):
            return None
        self.expressions(settings, path)
        checked, _ = self.check_settings(model, settings, path, f"`{op}`")
        static = None if contains_expression(settings) else checked
        return ast.OpCall(op, settings, pos, self.spots(path), static)

    def too_many_fixed_values(self, op: str, weights: Any, path: DataPath) -> bool:
        """Whether this layer's ``weights`` take the file past ``MAX_FIXED_VALUES`` (reported once)."""
        if not isinstance(weights, list) or self.fixed_values > MAX_FIXED_VALUES:
            return self.fixed_values > MAX_FIXED_VALUES
        count, stack = 0, [weights]
        while stack:
            for item in stack.pop():
                if isinstance(item, list):
                    stack.append(item)
                else:
                    count += 1
        self.fixed_values += count
        if self.fixed_values <= MAX_FIXED_VALUES:
            return False
        here = "" if count == self.fixed_values else f" ({self.fixed_values:,} in this file)"
        self.errors.append(SpecError(
            f"`{op}` `weights` holds {count:,} values{here}; a spec file holds at most {MAX_FIXED_VALUES:,} "
            "fixed weight values, which the PyTorch build writes into its source: for bigger fixed weights "
            "leave `weights` out, set `trainable: false` and load the values from a checkpoint (`--weights`)",
            self.pos(path)))
        return True

    def sequential(self, settings: Any, path: DataPath, pos: Any) -> ast.Sequential | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError(not_a_mapping(settings, "`sequential`"), self.pos(path)))
            return None
        self.expressions({k: v for k, v in settings.items() if k != "layers"}, path)
        _, ok = self.check(SequentialSettings, settings, path, "`sequential`")
        if ok and "layers" in settings and not isinstance(settings["layers"], list):  # `$x` stands for no list
            self.check(SequentialSettings, {"layers": settings["layers"]}, path, "`sequential`", tolerant=False)
        if not ok or not isinstance(settings.get("layers"), list):
            return None
        layers = self.layers(settings["layers"], (*path, "layers"))
        return ast.Sequential(settings.get("name"), layers, pos, self.spots(path))

    def residual(self, settings: Any, path: DataPath, pos: Any) -> ast.Residual | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError("`residual` needs a mapping with `body` (and optionally `shortcut`)",
                                         self.pos(path)))
            return None
        shortcut = settings.get("shortcut", "identity")
        if isinstance(shortcut, dict):
            self.expressions(shortcut, (*path, "shortcut"))
        _, ok = self.check(ResidualSettings, settings, path, "`residual`")
        if not ok:
            return None
        body = self.layers(settings["body"], (*path, "body")) if isinstance(settings.get("body"), list) else ()
        parsed: tuple[ast.Layer, ...] | ast.ProjectionShortcut | None = None
        if isinstance(shortcut, list):
            parsed = self.layers(shortcut, (*path, "shortcut"))
        elif isinstance(shortcut, dict):
            where = (*path, "shortcut")
            parsed = ast.ProjectionShortcut(shortcut.get("projection", "auto"), shortcut.get("name", "downsample"),
                                            shortcut.get("norm", "batchnorm"), self.pos(where, key=True),
                                            self.spots(where))
        return ast.Residual(body, parsed, pos)

    def gate(self, settings: Any, path: DataPath, pos: Any) -> ast.Gate | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError("`gate` needs a mapping with `body` (the layers whose output multiplies "
                                         "the input)", self.pos(path)))
            return None
        _, ok = self.check(GateSettings, settings, path, "`gate`")
        if not ok:
            return None
        return ast.Gate(self.layers(settings["body"], (*path, "body")), pos)

    def concat(self, settings: Any, path: DataPath, pos: Any) -> ast.Concat | ast.Merge | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError("`concat` needs a mapping with `branches`", self.pos(path)))
            return None
        _, ok = self.check(ConcatSettings, settings, path, "`concat`")
        if not ok:
            return None
        if ("of" in settings) == ("branches" in settings):
            self.errors.append(SpecError("`concat` needs either `branches` (layer lists fed the same input) or "
                                         "`of` (named tensors), not both", self.pos(path)))
            return None
        if "of" in settings:
            return self.merge("concat", settings, path, pos)
        if not settings["branches"]:
            self.errors.append(SpecError("`concat` needs at least one branch", self.pos((*path, "branches"))))
            return None
        branches = tuple(self.layers(b, (*path, "branches", i)) for i, b in enumerate(settings["branches"]))
        return ast.Concat(branches, pos)

    def add(self, settings: Any, path: DataPath, pos: Any, op: str = "add") -> ast.Merge | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError(not_a_mapping(settings, f"`{op}`", "{of: [a, b]}"), self.pos(path)))
            return None
        _, ok = self.check(MergeSettings, settings, path, f"`{op}`")
        return self.merge(op, settings, path, pos) if ok else None

    def mul(self, settings: Any, path: DataPath, pos: Any) -> ast.Merge | None:
        return self.add(settings, path, pos, "mul")

    def merge(self, op: str, settings: dict[str, Any], path: DataPath, pos: Any) -> ast.Merge | None:
        names = settings["of"]
        if len(names) < 2:
            self.errors.append(SpecError(f"`{op}` needs at least two tensors in `of`, got {len(names)}",
                                         self.pos((*path, "of"))))
            return None
        ok = True
        for index, name in enumerate(names):
            problem = tensor_name_problem(name, "of", previous=True)
            if problem is not None:
                self.errors.append(SpecError(problem, self.pos((*path, "of", index))))
                ok = False
        return ast.Merge(op, tuple(names), pos, self.spots(path)) if ok else None

    def stage(self, settings: Any, path: DataPath, pos: Any) -> ast.Stage | None:
        if not isinstance(settings, dict):
            self.errors.append(SpecError(not_a_mapping(settings, "`stage`", "{block: basic, repeat: 2}"),
                                         self.pos(path)))
            return None
        self.expressions(settings, path)
        _, ok = self.check(StageSettings, settings, path, "`stage`")
        prefix = settings.get("prefix") if ok else None
        if prefix is not None and (problem := check_name(f"{prefix}{settings.get('start', 0)}")) is not None:
            self.errors.append(SpecError(f"{problem} (a stage names its instances `prefix` + a number)",
                                         self.pos((*path, "prefix"))))
            ok = False
        if not ok:
            return None
        return ast.Stage(settings.get("name"), settings["block"], settings["repeat"], settings.get("args") or {},
                         settings.get("first") or {}, pos, self.spots(path), settings.get("prefix"),
                         settings.get("start", 0), settings.get("first_block"))


def tensor_name_problem(value: Any, key: str, previous: bool = False) -> str | None:
    """Why ``value`` (written under ``key``) cannot name a tensor, or None. Tensor names become variables
    of the generated ``forward``, so they are Python identifiers."""
    import keyword

    reserved = RESERVED_TENSORS if previous else ("input",) if key == "from" else ()
    if not isinstance(value, str):
        return f"`{key}` takes a tensor name such as `skip1`, got {_shown(value)}"
    if value == "input" and key == "as":
        return ("`as: input` is reserved: `input` is the input of the spec (inside a block, of the block), which "
                "`from: input` takes again")
    if value in RESERVED_TENSORS and value not in reserved:
        if key == "as":
            return (f"`as: {value}` is reserved (`previous` is the layer before's output in a merge's `of`, `input` "
                    "the block's input)")
        return "`previous` is only written in a merge's `of`; a layer without `from` already takes it"
    if not value.isidentifier() or keyword.iskeyword(value) or value in ("self", "torch", "nn", "F"):
        return (f"tensor name `{value}` must be a Python identifier (letters, digits, `_`; not starting with a "
                "digit), as it names a variable of the generated forward")
    return None


def output_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an output (a key of the generated forward's dict, an ONNX graph output)."""
    import keyword

    if not name.isidentifier() or keyword.iskeyword(name) or name in ("input", "previous"):
        return (f"output name `{name}` must be a Python identifier other than `input` and `previous`, as "
                "torchvision's `out` and `aux`: it keys the generated forward's dict and names an ONNX output")
    return None


def _shown(value: Any) -> str:
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else f"`{value}`"


def _explained_by_expression(error: Any, data: Any, model: type[Model]) -> bool:
    """Whether a validation error is about a value that is, or holds, a ``$expression`` (checked by
    ``elaborate`` once evaluated). Unknown and missing keys never are."""
    if error["type"] in ("extra_forbidden", "missing"):
        return False
    value = _get(data, _data_loc(error["loc"], model))
    if isinstance(value, str) and error["loc"] and error["loc"][0] in _LAYER_LISTS:
        return False  # layer lists are never evaluated: `layers: $w` is not a list of layers
    return value is not None and contains_expression(value)


_LAYER_LISTS = frozenset({"layers", "body", "branches", "shortcut"})  # the structures' layer-list settings


def _get(data: object, loc: tuple[object, ...]) -> object:
    for part in loc:
        try:
            data = data[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _example_of(model: type[Model], value: Any) -> str:
    """The mapping a bare value was probably meant as (``dropout: 0.5`` -> ``{p: 0.5}``): the op's first
    required setting, else its first setting, given that value; the generic example otherwise."""
    fields = {name: info for name, info in model.model_fields.items() if name != "name"}
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not fields:
        return "{name: x}"
    first = next((name for name, info in fields.items() if info.is_required()), next(iter(fields)))
    return f"{{{first}: {value}}}"


def not_a_mapping(settings: Any, what: str, example: str = "{name: x}") -> str:
    shown = "a list" if isinstance(settings, list) else f"`{settings}`"
    return f"the settings of {what} should be a mapping such as `{example}`, got {shown}"


def layer_shape_message(item: Any) -> str:
    text = "a layer is an op name (`- relu`) or a mapping with one op (`- conv: {out: 16, kernel: 3}`)"
    if not isinstance(item, dict):
        return f"{text}, not {'a list' if isinstance(item, list) else f'`{item}`'}"
    keys = list(item)
    text += f"; this one has {len(keys)} keys: {', '.join(map(str, keys))}" if keys else "; this one is empty"
    if len(keys) > 1 and item[keys[0]] is None:
        text += f" (indent {', '.join(f'`{k}`' for k in keys[1:])} below `{keys[0]}`?)"
    return text
