"""Stage 3, resolve: layer lists to a tree of :class:`~cnnspec.graph.Node`.

Expands blocks and stages, substitutes ``$expressions``, validates every op's settings, and names every
node (explicit names, or the position in the scope as ``nn.Sequential`` does). Shapes are not known yet:
``analyse`` infers channels and sizes afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import SpecError
from cnnspec.graph import BlockCall, Node, SourcePos
from cnnspec.resolve.expr import ExprError, evaluate, is_expression
from cnnspec.resolve.imports import BlockEntry, Src, validated
from cnnspec.resolve.names import check_name
from cnnspec.validate.messages import suggest
from cnnspec.validate.ops import OPS
from cnnspec.validate.spec import (
    STRUCTURES,
    ConcatSettings,
    ResidualSettings,
    SequentialSettings,
    StageSettings,
)

MAX_NODES = 50_000  # about 2 s of analysis on a slow machine
TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str}
_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
STATELESS_OPS = frozenset(
    {"relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "identity", "dropout", "flatten",
     "stochastic_depth", "maxpool", "avgpool", "sumpool", "adaptive_avgpool", "adaptive_maxpool",
     "global_avgpool", "global_maxpool", "permute"}
)


@dataclass
class Scope:
    """A naming scope (the model, a sequential, a block instance, a stage)."""

    path: str
    slot: int = 0
    taken: dict[str, Node] = field(default_factory=dict)

    def child_path(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


def substitute(value: Any, src: Src, env: dict[str, Any]) -> Any:
    """Replace every ``$expression`` in ``value`` (written at ``src``) by its value in ``env``."""
    if isinstance(value, dict):
        return {k: substitute(v, src.at(k), env) if _may_hold_expression(v) else v for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, src.at(i), env) if _may_hold_expression(v) else v for i, v in enumerate(value)]
    if is_expression(value):
        try:
            return evaluate(value, env)
        except ExprError as exc:
            raise SpecError(str(exc), src.pos()) from None
    return value


def _may_hold_expression(value: Any) -> bool:
    return isinstance(value, (dict, list)) or is_expression(value)


class Resolver:
    def __init__(self, blocks: dict[str, BlockEntry], params: dict[str, Any]) -> None:
        self.blocks = blocks
        self.params = params
        self.count = 0

    # -- lists and items -------------------------------------------------------------------------
    def layers(self, items: list[Any], src: Src, scope: Scope, env: dict[str, Any], stack: tuple[str, ...]
               ) -> list[Node]:
        if not isinstance(items, list):
            raise SpecError("expected a list of layers", src.pos())
        return [self.item(item, src.at(i), scope, env, stack) for i, item in enumerate(items)]

    def item(self, item: Any, src: Src, scope: Scope, env: dict[str, Any], stack: tuple[str, ...]) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(f"the network has more than {MAX_NODES:,} layers", src.pos())
        if isinstance(item, str):
            op, settings, settings_src = item, {}, src
        elif isinstance(item, dict) and len(item) == 1:
            op, settings = next(iter(item.items()))
            settings_src = src.at(op)
            settings = {} if settings is None else settings
        else:
            raise SpecError(_layer_shape_message(item), src.pos())
        pos = src.pos(key=False) if isinstance(item, str) else settings_src.pos(key=True)
        if op in OPS:
            return self.op_node(op, settings, settings_src, pos, scope, env)
        if op in STRUCTURES:
            return getattr(self, op)(settings, settings_src, pos, scope, env, stack)
        if op in self.blocks:
            return self.block_call(op, settings, settings_src, pos, scope, env, stack)
        choices = [*OPS, *STRUCTURES, *self.blocks]
        hint = suggest(op, choices) or f" (ops: {', '.join(sorted(OPS))})"
        raise SpecError(f"unknown layer `{op}`{hint}", pos)

    def settings(self, settings: Any, src: Src, env: dict[str, Any], what: str) -> dict[str, Any]:
        if not isinstance(settings, dict):
            shown = "a list" if isinstance(settings, list) else f"`{settings}`"
            raise SpecError(f"the settings of {what} should be a mapping such as `{{name: x}}`, got {shown}",
                            src.pos())
        return substitute(settings, src, env)

    # -- ops -------------------------------------------------------------------------------------
    def op_node(self, op: str, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any]
                ) -> Node:
        concrete = self.settings(settings, src, env, f"`{op}`")
        model = validated(OPS[op], concrete, src, f"`{op}`")
        node = Node(op=op, name="", path="", pos=pos, settings=model.model_dump(exclude={"name"}), raw=dict(settings),
                    field_pos=src.positions(settings))
        self.place(node, model.name, src, scope)
        return node

    def place(self, node: Node, name: str | int | None, src: Src, scope: Scope) -> None:
        """Name ``node`` in ``scope``: its own name, or its position."""
        explicit = name is not None
        if name is None:
            name = scope.slot
        elif (problem := check_name(name)) is not None:
            raise SpecError(problem, src.at("name").pos())
        scope.slot += 1
        text = str(name)
        node.name, node.path = text, scope.child_path(text)
        other = scope.taken.get(text)
        if other is None:
            scope.taken[text] = node
            return
        shareable = node.op in STATELESS_OPS and other.op == node.op and other.settings == node.settings
        if not shareable:
            where = src.at("name").pos() if explicit else node.pos
            what = "layer" if node.is_leaf else node.op
            first = f"line {other.pos.line}" if other.pos.file == where.file else str(other.pos)
            raise SpecError(
                f"{what} name `{text}` is already used in this scope (at {first}); only layers without "
                "parameters and with the same settings may share a name",
                where,
            )

    # -- structures --------------------------------------------------------------------------------
    def sequential(self, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any],
                   stack: tuple[str, ...]) -> Node:
        model = validated(SequentialSettings, self.settings(settings, src, env, "`sequential`"), src, "`sequential`")
        node = Node(op="sequential", name="", path="", pos=pos)
        self.place(node, model.name, src, scope)
        inner = Scope(node.path)
        node.children = self.layers(settings["layers"], src.at("layers"), inner, env, stack)
        return node

    def residual(self, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any],
                 stack: tuple[str, ...]) -> Node:
        if not isinstance(settings, dict):
            raise SpecError("`residual` needs a mapping with `body` (and optionally `shortcut`)", src.pos())
        shallow = {k: (v if k != "shortcut" or not isinstance(v, dict) else substitute(v, src.at(k), env))
                   for k, v in settings.items()}
        model = validated(ResidualSettings, shallow, src, "`residual`")
        node = Node(op="residual", name="", path=scope.path, pos=pos, attrs={"projection": None})
        body = self.layers(settings["body"], src.at("body"), scope, env, stack)
        shortcut: list[Node] = []
        if isinstance(model.shortcut, list):
            shortcut = self.layers(settings["shortcut"], src.at("shortcut"), scope, env, stack)
        elif model.shortcut != "identity":
            proj = model.shortcut
            holder = Node(op="sequential", name="", path="", pos=src.at("shortcut").pos(key=True))
            self.place(holder, proj.name, src.at("shortcut"), scope)
            node.attrs["projection"] = {"mode": proj.projection, "name": holder.name, "path": holder.path,
                                        "norm": proj.norm, "pos": holder.pos}
        node.branches = [body, shortcut]
        return node

    def concat(self, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any],
               stack: tuple[str, ...]) -> Node:
        if not isinstance(settings, dict):
            raise SpecError("`concat` needs a mapping with `branches`", src.pos())
        validated(ConcatSettings, settings, src, "`concat`")
        if not settings["branches"]:
            raise SpecError("`concat` needs at least one branch", src.at("branches").pos())
        node = Node(op="concat", name="", path=scope.path, pos=pos)
        node.branches = [self.layers(b, src.at("branches", i), scope, env, stack)
                         for i, b in enumerate(settings["branches"])]
        return node

    def stage(self, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any],
              stack: tuple[str, ...]) -> Node:
        shallow = self.settings({k: v for k, v in settings.items() if k not in ("args", "first")}, src, env,
                                "`stage`") if isinstance(settings, dict) else settings
        if isinstance(settings, dict):
            shallow.update({k: settings[k] for k in ("args", "first") if k in settings})
        model = validated(StageSettings, shallow, src, "`stage`")
        if not isinstance(model.repeat, int) or model.repeat < 1:
            raise SpecError(f"`repeat` of `stage` must be at least 1, got {model.repeat}", src.at("repeat").pos())
        if model.repeat > MAX_NODES:
            raise SpecError(f"`repeat` of `stage` is {model.repeat:,}; a network has at most {MAX_NODES:,} layers",
                            src.at("repeat").pos())
        entry = self.find_block(model.block, src.at("block"))
        node = Node(op="stage", name="", path="", pos=pos, raw=dict(settings))
        self.place(node, model.name, src, scope)
        written_args, written_first = settings.get("args") or {}, settings.get("first") or {}
        inner = Scope(node.path)
        args = substitute(model.args, src.at("args"), env)
        first = substitute(model.first, src.at("first"), env)
        for index in range(model.repeat):
            given = {**args, **first} if index == 0 else args
            arg_src = src.at("first") if index == 0 and first else src.at("args")
            instance = self.instantiate(entry, given, arg_src, pos, stack)
            instance.raw = {**written_args, **written_first} if index == 0 else dict(written_args)
            self.place(instance, None, src, inner)
            self.expand(instance, entry, inner_env(self.params, instance.block.args), stack)  # type: ignore[union-attr]
            node.children.append(instance)
        return node

    def block_call(self, kind: str, settings: Any, src: Src, pos: SourcePos, scope: Scope, env: dict[str, Any],
                   stack: tuple[str, ...]) -> Node:
        given = self.settings(settings, src, env, f"block `{kind}`")
        name = given.pop("name", None)
        node = self.instantiate(self.blocks[kind], given, src, pos, stack, missing_at=pos)
        node.raw = {k: v for k, v in (settings or {}).items() if k != "name"}
        self.place(node, name, src, scope)
        self.expand(node, self.blocks[kind], inner_env(self.params, node.block.args), stack)  # type: ignore[union-attr]
        return node

    # -- blocks ------------------------------------------------------------------------------------
    def find_block(self, name: str, src: Src) -> BlockEntry:
        if name not in self.blocks:
            known = ", ".join(sorted(self.blocks)) or "none defined"
            raise SpecError(f"unknown block `{name}`{suggest(name, self.blocks) or f' (blocks: {known})'}", src.pos())
        return self.blocks[name]

    def instantiate(self, entry: BlockEntry, given: dict[str, Any], src: Src, pos: SourcePos,
                    stack: tuple[str, ...], missing_at: SourcePos | None = None) -> Node:
        if entry.name in stack:
            chain = " -> ".join((*stack[stack.index(entry.name):], entry.name))
            raise SpecError(f"block `{entry.name}` uses itself: {chain}", pos)
        args = bind_args(entry, given, src, missing_at)
        return Node(op="block", name="", path="", pos=pos, block=BlockCall(entry.name, args, entry.definition))

    def expand(self, node: Node, entry: BlockEntry, env: dict[str, Any], stack: tuple[str, ...]) -> None:
        inner = Scope(node.path)
        node.children = self.layers(entry.definition.layers, entry.src.at("layers"), inner, env,
                                    (*stack, entry.name))


def _layer_shape_message(item: Any) -> str:
    text = "a layer is an op name (`- relu`) or a mapping with one op (`- conv: {out: 16, kernel: 3}`)"
    if not isinstance(item, dict):
        return f"{text}, not {'a list' if isinstance(item, list) else f'`{item}`'}"
    keys = list(item)
    text += f"; this one has {len(keys)} keys: {', '.join(map(str, keys))}" if keys else "; this one is empty"
    if len(keys) > 1 and item[keys[0]] is None:
        text += f" (indent {', '.join(f'`{k}`' for k in keys[1:])} below `{keys[0]}`?)"
    return text


def inner_env(params: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Names visible inside a block: its arguments, then the spec's params."""
    return {**params, **args}


def bind_args(entry: BlockEntry, given: dict[str, Any], src: Src, missing_at: SourcePos | None = None
              ) -> dict[str, Any]:
    """Bind a block call's arguments (written at ``src``) to the block's declared ones, filling defaults and
    checking types; a missing argument is reported at ``missing_at`` (the call), else at ``src``."""
    declared = entry.definition.args
    for key in given:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise SpecError(
                f"block `{entry.name}` has no argument `{key}`{suggest(key, declared) or f' (arguments: {known})'}",
                src.at(key).pos(key=True),
            )
    bound: dict[str, Any] = {}
    for key, spec in declared.items():
        required = isinstance(spec, str) and spec in TYPE_NAMES
        want = TYPE_NAMES[spec] if required else type(spec)
        if key not in given:
            if required:
                raise SpecError(f"block `{entry.name}` needs argument `{key}` ({spec})", missing_at or src.pos())
            bound[key] = spec
            continue
        value = given[key]
        ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise SpecError(f"argument `{key}` of block `{entry.name}` should be {_TYPE_WORDS[want]} "
                            f"({want.__name__}), got {value!r}", src.at(key).pos())
        bound[key] = value
    return bound
