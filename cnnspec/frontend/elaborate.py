"""Stage 4, elaborate: the linked spec to the graph of values (``cnnspec.ir``), without shapes.

Expands blocks and stages, evaluates ``$expressions`` (keeping how each setting was written, for readable
generated code), validates every op's settings, names every node and scope (explicit names, or the
position in the scope as ``nn.Sequential`` does), and lowers ``residual``, ``gate`` and ``concat`` to
``add``, ``mul`` and ``concat`` nodes. A projection shortcut becomes a scope holding a 1x1 conv and a batchnorm whose width and
stride ``infer`` derives from the shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnspec import ir
from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend import ast
from cnnspec.frontend.argtypes import TYPE_WORDS, declared, fits, words
from cnnspec.frontend.expr import CHANNELS_IN, ChannelsIn, ExprError, Late, Shadowed, evaluate, is_expression
from cnnspec.frontend.expr import parse as parse_expression
from cnnspec.frontend.link import Program
from cnnspec.frontend.messages import INPUT_SIZES, suggest, validation_errors
from cnnspec.frontend.names import check_name
from cnnspec.frontend.spec import Projection, SequentialSettings
from cnnspec.frontend.syntax import LAYER_OPS, STRUCTURES, not_a_mapping
from cnnspec.ops import REGISTRY
from cnnspec.ops.base import label as layer_label
from cnnspec.ops.conv import Conv, ConvSettings
from cnnspec.ops.merge import Add, Concat, Label, Mul
from cnnspec.ops.norm import BatchNorm, BatchNormSettings
from cnnspec.settings import ValidationError

MAX_NODES = 50_000  # about 2 s of analysis on a slow machine
INPUT = 0  # the value id of the graph's input


_UNNAMED = {op.name: op.Settings() for op in (Add, Mul, Concat)}  # the settings of the merges of structures


def bind_params(spec: ast.SpecAst, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's ``params`` with ``--set`` overrides, which must name a parameter and keep its type."""
    params = dict(spec.params)
    for key, value in overrides.items():
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(f"--set {key}: the spec has no parameter `{key}`"
                            f"{suggest(key, params) or f' (parameters: {known})'}", spec.spots.pos("params", key=True))
        current = params[key]
        if type(value) is not type(current) and not (isinstance(current, float) and type(value) is int):
            shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:30]}..."
            raise SpecError(f"--set {key}={shown}: `{key}` is {TYPE_WORDS[type(current)]} ({current!r} in the "
                            f"spec), got {TYPE_WORDS.get(type(value), 'a value')}", spec.spots.pos("params", key))
        params[key] = value
    return params


def input_shape(spec: ast.SpecAst, params: Mapping[str, Any]) -> ir.Shape:
    """The spec's ``input``, evaluated and checked (1 to 4 positive sizes)."""
    sizes = []
    for index, written in enumerate(spec.input):
        value = _evaluate(written, params, spec.spots.pos("input", index))
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"`input` sizes must be whole numbers, got {value!r}", spec.spots.pos("input", index))
        sizes.append(value)
    shape = tuple(sizes)
    check_input(shape, spec.spots.pos("input"))
    return shape


def check_input(shape: ir.Shape, pos: SourcePos) -> None:
    if not 1 <= len(shape) <= 4:
        raise SpecError(f"`input` is [C], [C, L], [C, H, W] or [C, D, H, W] (no batch axis); got {len(shape)} "
                        "sizes", pos)
    for size in shape:
        if size < 1:
            raise SpecError(f"`input` sizes must be at least 1, got {list(shape)}", pos)


_AXES = {1: "C", 2: "C,L", 3: "C,H,W", 4: "C,D,H,W"}


def check_input_rank(shape: ir.Shape, own: ir.Shape, pos: SourcePos) -> None:
    """``--input`` must have the rank of the spec's ``input`` (another rank is another network: a 2D one
    for a 3D spec), with a hint where a batch axis seems included or the channels left out."""
    if len(shape) == len(own):
        return
    given = ",".join(map(str, shape))
    message = (f"--input {given}: {len(shape)} size{'s' if len(shape) > 1 else ''}, but the spec's input {list(own)} has {len(own)} "
               f"({_AXES[len(own)]}, no batch axis)")
    if len(shape) == len(own) + 1:
        message += f"; without a batch axis that is --input {','.join(map(str, shape[1:]))}"
    elif len(shape) == len(own) - 1:
        message += f"; with the channels first that is --input {','.join(map(str, (own[0], *shape)))}"
    raise SpecError(message, pos)


def _evaluate(value: Any, env: Mapping[str, Any], pos: SourcePos) -> Any:
    if not is_expression(value):
        return value
    try:
        return evaluate(value, env)
    except ExprError as exc:
        raise SpecError(str(exc), pos) from None


def substitute(value: Any, spots: ast.Spots, env: Mapping[str, Any], path: tuple[str | int, ...] = (),
               late: set[str] | None = None) -> Any:
    """``value`` (written at ``path`` under ``spots``) with every ``$expression`` evaluated in ``env``. With
    ``late``, a setting that reads ``$channels_in`` holds 1 for now and its key goes into ``late`` (infer
    evaluates it once the block's input is known)."""
    if isinstance(value, dict):
        return {k: substitute(v, spots, env, (*path, k), late) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, spots, env, (*path, i), late) for i, v in enumerate(value)]
    if is_expression(value):
        try:
            return evaluate(value, env)
        except Late as exc:
            if late is None:
                raise SpecError(str(exc), spots.pos(*path)) from None
            late.add(str(path[0]))
            return 1
        except ExprError as exc:  # the position is looked up only here: most values never need it
            raise SpecError(str(exc), spots.pos(*path)) from None
    return value


def written(value: Any) -> ir.Written:
    """A setting as the spec wrote it: expressions parsed, lists as tuples."""
    if isinstance(value, list):
        return tuple(written(v) for v in value)
    if is_expression(value):
        return parse_expression(value)
    return value


@dataclass
class _Frame:
    """The tensor names of one body (the spec's layers or one block instance): those given so far, those
    given anywhere in it (to tell a later tensor from an unknown one), and the body's input."""

    block: str | None
    declared: dict[str, SourcePos]
    input: int
    tensors: dict[str, tuple[int, SourcePos]] = field(default_factory=dict)


def declared_names(items: tuple[ast.Layer, ...], out: dict[str, SourcePos] | None = None) -> dict[str, SourcePos]:
    """Every ``as:`` name in ``items`` and the structures nested in them (not in the blocks they call)."""
    out = {} if out is None else out
    for item in items:
        if isinstance(item, ast.Tap):
            if item.name is not None:
                out.setdefault(item.name, item.spots.pos("as"))
            declared_names((item.layer,), out)
        elif isinstance(item, ast.Sequential):
            declared_names(item.layers, out)
        elif isinstance(item, ast.Residual):
            declared_names(item.body, out)
            if isinstance(item.shortcut, tuple):
                declared_names(item.shortcut, out)
        elif isinstance(item, ast.Gate):
            declared_names(item.body, out)
        elif isinstance(item, ast.Concat):
            for branch in item.branches:
                declared_names(branch, out)
    return out


@dataclass
class _Naming:
    """Names in one scope: explicit ones, or the next position (``nn.Sequential``)."""

    scope: ir.Scope
    chain: tuple[ir.Scope, ...] = ()  # the enclosing scopes, the model first, this one last
    slot: int = 0
    taken: dict[str, tuple[Any, SourcePos]] = field(default_factory=dict)


class Elaborator:
    def __init__(self, program: Program, params: Mapping[str, Any]) -> None:
        self.blocks = program.blocks
        self.params = dict(params)
        self.nodes: list[ir.Node] = []
        self.errors: list[SpecError] = []
        self.count = 0
        self.values = INPUT + 1
        self.lanes = 0
        self.field_pos: dict[int, Mapping[str, SourcePos]] = {}
        self.writes: dict[int, Mapping[str, ir.Written]] = {}
        self.validated: dict[tuple[int, str], Any] = {}
        self.chains: list[tuple[ir.Scope, ...]] = []  # per node, its enclosing scopes
        self.shortcut = 0  # > 0 while a residual's shortcut branch is elaborated
        self.training = 0  # > 0 while a `training_only` layer is elaborated
        self.stage_blocks = 0  # the instances of the model's own stages (``$blocks``), counted before elaboration
        self.stage_block = 0  # the next one's global index (``$block``)
        self.frames: list[_Frame] = []  # the tensor names of the bodies being elaborated, innermost last
        self.declarations: dict[int, dict[str, SourcePos]] = {}  # per block body, its `as:` names

    # -- values and lanes ------------------------------------------------------------------------------
    def value(self) -> int:
        self.values += 1
        return self.values - 1

    def lane(self, stem: str) -> str:
        self.lanes += 1
        return f"{stem}:{self.lanes}"

    # -- lists and items -------------------------------------------------------------------------------
    def layers(self, items: tuple[ast.Layer, ...], naming: _Naming, x: int, lane: str, env: dict[str, Any],
               stack: tuple[str, ...]) -> int:
        for item in items:
            self.count += 1
            if self.count > MAX_NODES:
                raise SpecError(f"the network has more than {MAX_NODES:,} layers", item.pos)
            try:
                x, lane = self.item(item, naming, x, lane, env, stack)
            except SpecError as exc:
                self.errors.append(exc)
                x = self.value()  # unknown: later layers are still elaborated for their own errors
        return x

    def item(self, item: ast.Layer, naming: _Naming, x: int, lane: str, env: dict[str, Any],
             stack: tuple[str, ...]) -> tuple[int, str]:
        if isinstance(item, ast.OpCall):
            return self.op_call(item, naming, x, lane, env), lane
        if isinstance(item, ast.Residual):
            return self.residual(item, naming, x, env, stack)
        if isinstance(item, ast.Gate):
            return self.gate(item, naming, x, lane, env, stack), lane
        if isinstance(item, ast.Concat):
            return self.concat(item, naming, x, lane, env, stack), lane
        if isinstance(item, ast.Sequential):
            return self.sequential(item, naming, x, lane, env, stack), lane
        if isinstance(item, ast.Stage):
            return self.stage(item, naming, x, lane, env, stack), lane
        if isinstance(item, ast.Tap):
            return self.tap(item, naming, x, lane, env, stack)
        if isinstance(item, ast.Merge):
            return self.named_merge(item, naming, x, lane), lane
        if isinstance(item, ast.Broken):  # reported by parse; it takes its place in the numbering
            naming.slot += 1
            return self.value(), lane
        return self.block_use(item, naming, x, lane, env, stack), lane

    # -- ops -------------------------------------------------------------------------------------------
    def op_call(self, call: ast.OpCall, naming: _Naming, x: int, lane: str, env: dict[str, Any]) -> int:
        late: set[str] = set()
        settings = call.static if call.static is not None else self.settings(call, env, late)
        name, path = self.name(settings.name, call.spots, naming)
        named = tuple(self.lookup(getattr(settings, key), call.spots.pos(key), x)
                      for key in REGISTRY[call.op].tensor_settings if getattr(settings, key) is not None)
        y = self.value()
        node = ir.Node(op=call.op, name=name, path=path, scope=naming.scope.path, inputs=(x, *named), outputs=(y,),
                       settings=settings, pos=call.pos, written=self.written(call), field_pos=self.positions(call),
                       lane=lane, label=layer_label(call.op, path), late=frozenset(late))
        self.claim(node, settings.name is not None, call.spots, naming)
        self.add(node, naming)
        return y

    def settings(self, call: ast.OpCall, env: dict[str, Any], late: set[str]) -> Any:
        model = REGISTRY[call.op].Settings
        concrete = substitute(dict(call.settings), call.spots, env, late=late)
        key = (id(call), repr(concrete))  # instances of a block often evaluate to the same settings
        found = self.validated.get(key)
        if found is not None:
            return found
        try:
            found = self.validated[key] = model.model_validate(concrete)
            return found
        except ValidationError as exc:
            errors = validation_errors(exc, model, f"`{call.op}`", lambda loc, key: call.spots.pos(*loc, key=key),
                                       lambda loc: _get(concrete, loc))
            self.errors.extend(errors[1:])
            raise errors[0] from None

    def written(self, call: ast.OpCall) -> Mapping[str, ir.Written]:
        """How each setting was written (shared by every instance of a block)."""
        found = self.writes.get(id(call))
        if found is None:
            found = self.writes[id(call)] = {k: written(v) for k, v in call.settings.items() if k != "name"}
        return found

    def positions(self, call: ast.OpCall) -> Mapping[str, SourcePos]:
        """Where each setting's value was written (shared by every instance of a block)."""
        found = self.field_pos.get(id(call))
        if found is None:
            found = self.field_pos[id(call)] = {k: call.spots.pos(k) for k in call.settings}
        return found

    def add(self, member: ir.Node | ir.Scope, naming: _Naming) -> None:
        if isinstance(member, ir.Node):
            if self.shortcut:
                member = member.evolve(shortcut=True)
            if self.training:
                member = member.evolve(training_only=True)
            self.nodes.append(member)
            self.chains.append(naming.chain)
        naming.scope.members.append(member)

    def name(self, name: Any, spots: ast.Spots, naming: _Naming) -> tuple[str, str]:
        """The name (its own, checked, or the next position) and path of a member of ``naming``'s scope."""
        if name is None:
            name = naming.slot
        elif (problem := check_name(name)) is not None:
            raise SpecError(problem, spots.pos("name"))
        naming.slot += 1
        text = str(name)
        return text, f"{naming.scope.path}.{text}" if naming.scope.path else text

    def claim(self, member: ir.Node | ir.Scope, explicit: bool, spots: ast.Spots, naming: _Naming) -> None:
        """Record ``member``'s name in its scope; a second use is refused unless both are stateless layers
        of the same op and settings (one module called twice, as torchvision's ResNet calls ``relu``)."""
        other = naming.taken.get(member.name)
        if other is None:
            naming.taken[member.name] = (member, member.pos)
            return
        first, first_pos = other
        if not _shareable(member, first):
            where = spots.pos("name") if explicit else member.pos
            what = "layer" if isinstance(member, ir.Node) else member.kind
            at = f"line {first_pos.line}" if first_pos.file == where.file else str(first_pos)
            raise SpecError(f"{what} name `{member.name}` is already used in this scope (at {at}); only layers "
                            "without parameters and with the same settings may share a name", where)

    def place(self, scope: ir.Scope, name: Any, spots: ast.Spots, naming: _Naming) -> None:
        """Name a scope in ``naming``'s scope."""
        scope.name, scope.path = self.name(name, spots, naming)
        self.claim(scope, name is not None, spots, naming)

    # -- structures ------------------------------------------------------------------------------------
    def sequential(self, item: ast.Sequential, naming: _Naming, x: int, lane: str, env: dict[str, Any],
                   stack: tuple[str, ...]) -> int:
        name = substitute(item.name, item.spots, env, ("name",))
        _validate(SequentialSettings, {"name": name, "layers": []}, item.spots, "`sequential`")
        scope = ir.Scope("sequential", "", "", item.pos, lane=lane)
        self.place(scope, name, item.spots, naming)
        return self.scope(scope, naming, lambda inner: self.layers(item.layers, inner, x, self.lane("x"), env, stack))

    def scope(self, scope: ir.Scope, naming: _Naming, body: Any) -> int:
        """Add ``scope`` to ``naming``'s scope and fill it by ``body(inner naming)``; returns its output."""
        self.add(scope, naming)
        return int(body(_Naming(scope, (*naming.chain, scope))))

    def residual(self, item: ast.Residual, naming: _Naming, x: int, env: dict[str, Any], stack: tuple[str, ...]
                 ) -> tuple[int, str]:
        body_lane = self.lane("out")
        body = self.layers(item.body, naming, x, body_lane, env, stack)
        shortcut, roles = x, ("the body", "the shortcut")
        self.shortcut += 1
        try:
            if isinstance(item.shortcut, tuple):
                shortcut = self.layers(item.shortcut, naming, x, self.lane("identity"), env, stack)
            elif isinstance(item.shortcut, ast.ProjectionShortcut):
                shortcut = self.projection(item.shortcut, naming, x, body, env)
        finally:
            self.shortcut -= 1
        label = Label("residual add", roles, suggest_projection=item.shortcut is None, exact=True)
        return self.merge(Add.name, (body, shortcut), item.pos, naming, body_lane, label), body_lane

    def projection(self, item: ast.ProjectionShortcut, naming: _Naming, x: int, body: int, env: dict[str, Any]
                   ) -> int:
        given = substitute({"projection": item.mode, "name": item.name, "norm": item.norm}, item.spots, env)
        settings = _validate(Projection, given, item.spots, "`shortcut`")
        scope = ir.Scope("projection", "", "", item.pos, projection=ir.Projection(settings.projection, x, body))
        self.place(scope, settings.name, item.spots, naming)

        def fill(inner: _Naming) -> int:
            y = self.value()
            conv = ir.Node(op=Conv.name, name="0", path=f"{scope.path}.0", scope=scope.path, inputs=(x,),
                           outputs=(y,), settings=ConvSettings(out=1, kernel=1, bias=False), pos=item.pos, lane="x",
                           label=layer_label(Conv.name, f"{scope.path}.0"))
            self.add(conv, inner)
            if settings.norm == BatchNorm.name:
                z = self.value()
                self.add(ir.Node(op=BatchNorm.name, name="1", path=f"{scope.path}.1", scope=scope.path, inputs=(y,),
                                 outputs=(z,), settings=BatchNormSettings(), pos=item.pos, lane="x",
                                 label=layer_label(BatchNorm.name, f"{scope.path}.1")), inner)
                return z
            return y

        return self.scope(scope, naming, fill)

    def merge(self, op: str, inputs: tuple[int, ...], pos: SourcePos, naming: _Naming, lane: str, label: str) -> int:
        """An ``add`` or ``concat`` the spec wrote as a structure: unnamed, in the enclosing scope."""
        y = self.value()
        self.add(ir.Node(op=op, name="", path=naming.scope.path, scope=naming.scope.path, inputs=inputs,
                         outputs=(y,), settings=_UNNAMED[op], pos=pos, lane=lane, label=label), naming)
        return y

    def gate(self, item: ast.Gate, naming: _Naming, x: int, lane: str, env: dict[str, Any],
             stack: tuple[str, ...]) -> int:
        """``body(x) * x`` (torchvision's ``scale * input``): the body's layers in the enclosing scope."""
        scale = self.layers(item.body, naming, x, self.lane("scale"), env, stack)
        label = Label("gate", ("the gate", "its input"),
                      hint="; a gate's body must give the input's shape or 1 along each axis (squeeze-and-"
                      "excitation: [C, 1, 1] for a [C, H, W] input)")
        return self.merge(Mul.name, (scale, x), item.pos, naming, lane, label)

    def concat(self, item: ast.Concat, naming: _Naming, x: int, lane: str, env: dict[str, Any],
               stack: tuple[str, ...]) -> int:
        outs = tuple(self.layers(branch, naming, x, self.lane("branch"), env, stack) if branch else x
                     for branch in item.branches)
        label = Label(Concat.name, tuple(f"branch {i}" for i in range(1, len(outs) + 1)))
        return self.merge(Concat.name, outs, item.pos, naming, lane, label)

    # -- named tensors ---------------------------------------------------------------------------------
    def tap(self, item: ast.Tap, naming: _Naming, x: int, lane: str, env: dict[str, Any], stack: tuple[str, ...]
            ) -> tuple[int, str]:
        """A layer with ``from:`` (its input is a named tensor) and/or ``as:`` (its output gets a name)."""
        frame = self.frames[-1]
        if item.name is not None and item.name in frame.tensors:
            first = frame.tensors[item.name][1]
            raise SpecError(f"tensor name `{item.name}` is already given at line {first.line}; each `as:` name "
                            "must be new in its block", item.spots.pos("as"))
        try:
            if item.source is not None:
                x, lane = self.lookup(item.source, item.spots.pos("from"), x), self.lane("x")
            # a named output gets its own variable in generated code (the lane continues after it)
            self.training += item.training_only
            try:
                y, _ = self.item(item.layer, naming, x, self.lane(item.name) if item.name else lane, env, stack)
            finally:
                self.training -= item.training_only
        except SpecError:
            if item.name is not None:  # known by name, if not by value: later references are not errors
                frame.tensors[item.name] = (self.value(), item.spots.pos("as"))
            raise
        if item.name is not None:
            frame.tensors[item.name] = (y, item.spots.pos("as"))
        return y, lane

    def lookup(self, name: str, pos: SourcePos, previous: int) -> int:
        """The value a tensor name refers to, or a SpecError saying why none."""
        frame = self.frames[-1]
        if name == "previous":
            return previous
        if name == "input":
            return frame.input
        if name in frame.tensors:
            return frame.tensors[name][0]
        if name in frame.declared:
            raise SpecError(f"`{name}` is the output of a later layer (line {frame.declared[name].line}); a layer "
                            "can only take tensors made before it", pos)
        here = f"block `{frame.block}`" if frame.block else "the spec's layers"
        for outer in reversed(self.frames[:-1]):
            if name in outer.tensors or name in outer.declared:
                where = f"block `{outer.block}`" if outer.block else "the spec's layers"
                raise SpecError(f"`{name}` is a tensor of {where}, outside {here}; a block sees only its own "
                                "tensors (merge it outside the block)", pos)
        known = ", ".join(sorted(frame.tensors)) or "none yet"
        raise SpecError(f"no tensor is named `{name}` in {here}; name one with `as: {name}` on an earlier layer"
                        f"{suggest(name, [*frame.tensors, 'input']) or f' (named so far: {known})'}", pos)

    def named_merge(self, item: ast.Merge, naming: _Naming, x: int, lane: str) -> int:
        inputs = tuple(self.lookup(name, item.spots.pos("of", index), x) for index, name in enumerate(item.of))
        label = Label(f"{item.op} of {', '.join(item.of)}", tuple(f"`{name}`" for name in item.of))
        return self.merge(item.op, inputs, item.pos, naming, lane, label)

    # -- blocks ----------------------------------------------------------------------------------------
    def stage(self, item: ast.Stage, naming: _Naming, x: int, lane: str, env: dict[str, Any],
              stack: tuple[str, ...]) -> int:
        spots = item.spots
        name = substitute(item.name, spots, env, ("name",))
        repeat = substitute(item.repeat, spots, env, ("repeat",))
        if isinstance(repeat, float):  # a scaled depth, `3 * $depth_mult`
            raise SpecError(f"`repeat` of `stage` should be a whole number of block instances, got {repeat}; round it "
                            "with `ceil(...)` or `floor(...)` (EfficientNet: `ceil(3 * $depth_mult)`)",
                            spots.pos("repeat"))
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise SpecError(f"`repeat` of `stage` must be at least 1, got {repeat}", spots.pos("repeat"))
        if repeat > MAX_NODES:
            raise SpecError(f"`repeat` of `stage` is {repeat:,}; a network has at most {MAX_NODES:,} layers",
                            spots.pos("repeat"))
        block = self.find_block(item.block, spots.pos("block"))
        opening = block if item.first_block is None else self.find_block(item.first_block, spots.pos("first_block"))
        scope = ir.Scope("stage", "", "", item.pos, lane=lane)
        self.place(scope, name, spots, naming)
        own = not stack  # a stage of the model's layers, not inside a block: it numbers its instances globally

        def fill(inner: _Naming) -> int:
            y, inner_lane = x, self.lane("x")
            for index in range(repeat):
                local = {**env, **self.instance_values(index, own)}
                given = substitute(dict(item.args), spots, local, ("args",))
                if index == 0 and item.first:
                    given.update(substitute(dict(item.first), spots, local, ("first",)))
                where = "first" if index == 0 and item.first else "args"
                writes = {**item.args, **item.first} if index == 0 else dict(item.args)
                kind = opening if index == 0 else block
                call = self.bind(kind, given, writes, spots, (where,), item.pos, stack)
                before = len(self.errors)
                own_name = None if item.prefix is None else f"{item.prefix}{item.start + index}"
                y = self.instance(kind, call, own_name, spots, inner, y, inner_lane, item.pos, stack)
                if index > (opening is not block) and len(self.errors) > before:
                    break  # later instances take the same arguments, so they would repeat these errors
            return y

        return self.scope(scope, naming, fill)

    def instance_values(self, index: int, own: bool) -> dict[str, int]:
        """What a stage's ``args`` see of one instance: ``$index`` (in the stage, from 0), and for the
        model's own stages ``$block`` (across all of them, from 0) and ``$blocks`` (their instances in all)."""
        if not own:
            return {"index": index}
        self.stage_block += 1
        return {"index": index, "block": self.stage_block - 1, "blocks": self.stage_blocks}

    def block_use(self, item: ast.BlockUse, naming: _Naming, x: int, lane: str, env: dict[str, Any],
                  stack: tuple[str, ...]) -> int:
        if item.block not in self.blocks:
            choices = [*LAYER_OPS, *STRUCTURES, *self.blocks]
            hint = suggest(item.block, choices) or f" (ops: {', '.join(sorted(LAYER_OPS))})"
            raise SpecError(f"unknown layer `{item.block}`{hint}", item.pos)
        if not isinstance(item.args, dict):
            raise SpecError(not_a_mapping(item.args, f"block `{item.block}`"), item.spots.pos())
        given = substitute(dict(item.args), item.spots, env)
        name = given.pop("name", None)
        block = self.blocks[item.block]
        writes = {k: v for k, v in item.args.items() if k != "name"}
        call = self.bind(block, given, writes, item.spots, (), item.pos, stack, missing_at=item.pos)
        return self.instance(block, call, name, item.spots, naming, x, lane, item.pos, stack)

    def find_block(self, name: str, pos: SourcePos) -> ast.BlockDef:
        if name not in self.blocks:
            known = ", ".join(sorted(self.blocks)) or "none defined"
            raise SpecError(f"unknown block `{name}`{suggest(name, self.blocks) or f' (blocks: {known})'}", pos)
        return self.blocks[name]

    def bind(self, block: ast.BlockDef, given: dict[str, Any], writes: Mapping[str, Any], spots: ast.Spots,
             where: tuple[str, ...], pos: SourcePos, stack: tuple[str, ...],
             missing_at: SourcePos | None = None) -> ir.BlockCall:
        if block.name in stack:
            chain = " -> ".join((*stack[stack.index(block.name):], block.name))
            raise SpecError(f"block `{block.name}` uses itself: {chain}", pos)
        args = bind_args(block, given, spots, where, missing_at)
        signature = tuple((name, kind, ir.REQUIRED if default is None else default)
                          for name, (kind, default) in ((name, declared(spec)) for name, spec in block.args))
        return ir.BlockCall(block.name, signature, args, {k: written(v) for k, v in writes.items()})

    def instance(self, block: ast.BlockDef, call: ir.BlockCall, name: Any, spots: ast.Spots, naming: _Naming,
                 x: int, lane: str, pos: SourcePos, stack: tuple[str, ...]) -> int:
        scope = ir.Scope("block", "", "", pos, block=call, lane=lane)
        self.place(scope, name, spots, naming)
        shadowed = {name: Shadowed(name, self.params[name], block.name) for name in INPUT_SIZES & set(self.params)}
        env = {**self.params, **shadowed, CHANNELS_IN: ChannelsIn(block.name), **call.args}
        self.frames.append(_Frame(block.name, self.declared(block.layers), x))
        try:
            return self.scope(scope, naming, lambda inner: self.layers(block.layers, inner, x, self.lane("x"), env,
                                                                        (*stack, block.name)))
        finally:
            self.frames.pop()

    def declared(self, items: tuple[ast.Layer, ...]) -> dict[str, SourcePos]:
        found = self.declarations.get(id(items))
        if found is None:
            found = self.declarations[id(items)] = declared_names(items)
        return found

    # -- the graph -------------------------------------------------------------------------------------
    def graph(self, program: Program, name: str, source: str) -> ir.Graph:
        spec = program.spec
        root = ir.Scope("model", "", "", spec.spots.pos("layers", key=True))
        self.stage_blocks = count_stage_blocks(spec.layers or (), self.params)
        self.frames.append(_Frame(None, declared_names(spec.layers or ()), INPUT))
        out = self.layers(spec.layers or (), _Naming(root, (root,)), INPUT, self.lane("x"), dict(self.params), ())
        outputs, form = self.outputs(spec, out)
        nodes = tuple(self.nodes)
        self.errors.extend(_reads_of_training_only(nodes))
        _boundaries(nodes, self.chains, tuple(v for _, v in outputs))
        return ir.Graph(name=name, source=source, description=spec.description, params=self.params, root=root,
                        nodes=nodes, inputs=(INPUT,), outputs=outputs, output_form=form)

    def outputs(self, spec: ast.SpecAst, last: int) -> tuple[tuple[tuple[str, int], ...], str]:
        """The graph's outputs: ``outputs:`` (a mapping: named, a dict in generated code; a list: a tuple,
        each named after its tensor), or the last layer's output, unnamed."""
        if spec.outputs is None:
            return (("", last),), "one"
        pairs = spec.outputs.items() if isinstance(spec.outputs, Mapping) else ((t, t) for t in spec.outputs)
        found = []
        for index, (name, tensor) in enumerate(pairs):
            where = spec.spots.pos("outputs", name if isinstance(spec.outputs, Mapping) else index)
            try:
                found.append((name, self.lookup(tensor, where, last)))
            except SpecError as exc:
                self.errors.append(exc)
        return tuple(found) or (("", last),), "dict" if isinstance(spec.outputs, Mapping) else "tuple"


def elaborate(program: Program, params: Mapping[str, Any], source: str) -> tuple[ir.Graph, list[SpecError]]:
    """The graph of ``program`` with ``params`` bound, and every problem found on the way."""
    elaborator = Elaborator(program, params)
    try:
        graph = elaborator.graph(program, program.spec.name, source)
    except SpecError as exc:  # the layer limit
        elaborator.errors.append(exc)
        graph = ir.Graph(program.spec.name, source, program.spec.description, dict(params),
                         ir.Scope("model", "", "", program.spec.spots.at), (), (INPUT,), ())
    return graph, _once(elaborator.errors)


def count_stage_blocks(items: tuple[ast.Layer, ...], params: Mapping[str, Any]) -> int:
    """The instances of the stages written in the model's layers (through sequential, residual and concat,
    not inside blocks): ``$blocks``. A ``repeat`` that cannot be evaluated counts nothing (it is reported
    where the stage is elaborated)."""
    total = 0
    for item in items:
        if isinstance(item, ast.Stage):
            try:
                repeat = substitute(item.repeat, item.spots, params, ("repeat",))
            except SpecError:
                continue
            total += repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 0 else 0
        elif isinstance(item, ast.Sequential):
            total += count_stage_blocks(item.layers, params)
        elif isinstance(item, ast.Residual):
            total += count_stage_blocks(item.body, params)
            total += count_stage_blocks(item.shortcut, params) if isinstance(item.shortcut, tuple) else 0
        elif isinstance(item, ast.Gate):
            total += count_stage_blocks(item.body, params)
        elif isinstance(item, ast.Concat):
            total += sum(count_stage_blocks(branch, params) for branch in item.branches if branch)
    return total


def _reads_of_training_only(nodes: tuple[ir.Node, ...]) -> list[SpecError]:
    """A layer that runs at inference cannot read what a `training_only` layer makes (it is not made then)."""
    made = {value: node for node in nodes if node.training_only for value in node.outputs}
    errors = []
    for node in nodes:
        source = next((made[v] for v in node.inputs if v in made), None)
        if source is not None and not node.training_only:
            errors.append(SpecError(f"{node.label or node.op} runs at inference but reads the output of "
                                    f"{source.label or source.op}, which runs only in training (`training_only`); "
                                    "take an earlier tensor with `from:`", node.pos))
    return errors


def _once(errors: list[SpecError]) -> list[SpecError]:
    """``errors`` without repeats: a mistake inside a block is found once per instance, and said once."""
    seen: set[tuple[str, SourcePos | None]] = set()
    kept = []
    for error in errors:
        key = (str(error), error.pos)
        if key not in seen:
            seen.add(key)
            kept.append(error)
    return kept


def _boundaries(nodes: tuple[ir.Node, ...], chains: list[tuple[ir.Scope, ...]], graph_outputs: tuple[int, ...]
                ) -> None:
    """Each scope's inputs (values read inside, made outside) and outputs (made inside, read outside, or the
    graph's output), in order of first use: along every edge, the scopes its reader is in and its maker is
    not take the value as an input; those its maker is in and its reader is not, as an output."""
    made = {value: index for index, node in enumerate(nodes) for value in node.outputs}
    inputs: dict[int, dict[int, None]] = {}
    outputs: dict[int, dict[int, None]] = {}
    for reader, node in enumerate(nodes):
        inner = chains[reader]
        for value in node.inputs:
            maker = made.get(value)
            outer: tuple[ir.Scope, ...] = () if maker is None else chains[maker]
            if outer is inner:
                continue
            common = 0
            while common < len(inner) and common < len(outer) and inner[common] is outer[common]:
                common += 1
            for scope in inner[common:]:
                inputs.setdefault(id(scope), {})[value] = None
            for scope in outer[common:]:
                outputs.setdefault(id(scope), {})[value] = None
    for output in graph_outputs:
        if output in made:
            for scope in chains[made[output]]:
                outputs.setdefault(id(scope), {})[output] = None
    for chain in {id(c): c for c in chains}.values():
        for scope in chain:
            scope.inputs = tuple(inputs.get(id(scope), ()))
            # in the order they are made: a scope's last output is its main one (a backbone's deepest features)
            scope.outputs = tuple(sorted(outputs.get(id(scope), ()), key=lambda v: made.get(v, -1)))


def bind_args(block: ast.BlockDef, given: Mapping[str, Any], spots: ast.Spots, where: tuple[str, ...],
              missing_at: SourcePos | None = None) -> dict[str, Any]:
    """Bind a block call's arguments (written under ``where``) to the block's declared ones, filling
    defaults and checking types; a missing argument is reported at ``missing_at`` (the call)."""
    declared_args = dict(block.args)
    for key in given:
        if key not in declared_args:
            known = ", ".join(declared_args) or "none"
            raise SpecError(
                f"block `{block.name}` has no argument `{key}`{suggest(key, declared_args) or f' (arguments: {known})'}",
                spots.pos(*where, key, key=True),
            )
    bound: dict[str, Any] = {}
    for key, spec in declared_args.items():
        kind, default = declared(spec)
        if key not in given:
            if default is None:
                raise SpecError(f"block `{block.name}` needs argument `{key}` ({kind})", missing_at or spots.pos(*where))
            bound[key] = default
            continue
        value = given[key]
        if not fits(value, kind):
            raise SpecError(f"argument `{key}` of block `{block.name}` should be {words(kind)}, got {value!r}",
                            spots.pos(*where, key))
        bound[key] = value
    return bound


def _shareable(member: Any, other: Any) -> bool:
    """Two stateless layers of the same op and settings may share a name (one module called twice)."""
    if not isinstance(member, ir.Node) or not isinstance(other, ir.Node) or member.op != other.op:
        return False
    if not REGISTRY[member.op].traits.stateless:
        return False
    mine, theirs = dict(member.settings.__dict__), dict(other.settings.__dict__)
    mine.pop("name", None)
    theirs.pop("name", None)
    return mine == theirs


def _validate(model: Any, data: dict[str, Any], spots: ast.Spots, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_errors(exc, model, what, lambda loc, key: spots.pos(*loc, key=key),
                                lambda loc: _get(data, loc))[0] from None


def _get(data: object, loc: tuple[object, ...]) -> object:
    for part in loc:
        try:
            data = data[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data
