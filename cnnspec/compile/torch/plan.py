"""Plan one generated class: its constructor parameters and the lines of its ``__init__`` and ``forward``.

A class is built from one scope of the graph, or from every instance of a block kind at once: the members
of its instances correspond one to one (a :data:`Group` is one member across instances). Every value is
written as the spec's expression only when evaluating that expression with each instance's arguments
reproduces the analysed value; otherwise as a number when all instances agree, and as an extra
keyword-only constructor argument when they do not. So the generated code never describes a network
other than the analysed one.

``forward`` follows the graph's values: each member reads the variables of its inputs and writes the
variable of its *lane* (``x`` along the main path; ``out``, ``identity``, ``branch`` where a residual or
concat branches off, as torchvision names them). Decisions are taken on the graph before any line is
written: a module runs in place (``nn.ReLU(inplace=True)``, ``out += identity``) only where its input is
a fresh tensor that nothing else reads.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cnnspec.compile.torch import expr as E
from cnnspec.compile.torch import names as N
from cnnspec.compile.torch.views import (
    REQUIRED,
    ClassInfo,
    ClassView,
    Group,
    Item,
    Line,
    Sym,
    Val,
    nodes,
    shape_comment,
)
from cnnspec.errors import SpecError
from cnnspec.ir import Node, Scope, training_only
from cnnspec.ops import REGISTRY
from cnnspec.ops.base import SymVal, TorchExpression, TorchModule


class Host(Protocol):
    """What a ``Builder`` asks of the module-wide generator that owns it (``generator.Generator``)."""

    def structure_inputs(self, member: Node | Scope) -> tuple[int, ...]: ...
    def lane_of(self, scope: Scope, value: int) -> str: ...
    def alone_on_shortcut(self, node: Node) -> bool: ...
    def fresh_and_alone(self, value: int, reader: Node) -> bool: ...
    def may_run_in_place(self, group: Group, class_name: str) -> bool: ...
    def is_chain(self, scope: Scope) -> bool: ...
    def helper(self, name: str, source: str | None) -> None: ...
    def block_class(self, scope: Scope) -> ClassInfo: ...
    def scope_class(self, group: Group, parent: Builder) -> ClassInfo: ...
    def call_arg(self, scope: Scope, arg: str) -> Any: ...
    py: dict[str, str]  # spec param / block argument -> constructor parameter
    def fixups(self, b: Builder, group: Group, ref: str) -> list[Line]: ...


def _matches(value: Any, concrete: Any) -> bool:
    if isinstance(concrete, (tuple, list)):
        if isinstance(value, (tuple, list)):
            return len(value) == len(concrete) and all(_matches(v, c) for v, c in zip(value, concrete))
        return all(_matches(value, c) for c in concrete)
    if isinstance(concrete, bool) or isinstance(value, bool):
        return isinstance(concrete, bool) and isinstance(value, bool) and value == concrete
    if isinstance(concrete, str) or isinstance(value, str):
        return value == concrete
    if isinstance(concrete, int):  # an int setting must not be written as a float expression
        return isinstance(value, int) and value == concrete
    return isinstance(value, (int, float)) and value == concrete


def _compress(value: Any) -> Any:
    uniform = isinstance(value, (tuple, list)) and value and all(v == value[0] for v in value)
    return value[0] if uniform and not isinstance(value[0], (tuple, list)) else value


def _same(values: list[Any]) -> bool:
    return all(_matches(v, values[0]) and _matches(values[0], v) for v in values)


def parallel(group: Group, members_of: Callable[[Any], Sequence[Any]]) -> list[Group]:
    """Members of every item of ``group``, position by position."""
    lists = [members_of(it.node) for it in group]
    return [[Item(lst[k], it.inst, it.env) for it, lst in zip(group, lists)] for k in range(len(lists[0]))]


def _stem(lane: str) -> str:
    return lane.partition(":")[0] or "x"


class Builder:
    """Builds one class: resolves values against every instance and accumulates lines."""

    def __init__(self, gen: Host, view: ClassView, own: set[str], in_name: str) -> None:
        self.gen = gen
        self.view = view
        self.own = set(own)
        self.in_name = in_name
        self.needs: set[str] = set()
        self.extras: dict[str, dict[int, Any]] = {}
        self.flags: dict[str, dict[int, bool]] = {}
        self.registered: dict[str, list[str]] = {}  # attribute (with its owner) -> its constructor lines
        self.owner = "self"  # the module that registers members: ``self.upcat_4`` inside an open scope
        self.owner_is_dict = False  # the owner is an open scope's ``nn.ModuleDict``: members by key
        self.hints: dict[str, ast.expr] = {}
        self.local = N.Allocator(own)
        self.vars: set[str] = {"x", "cast"}  # cast: typing.cast, which a nested open scope calls
        self.training_scope = False  # the class's own scope runs in training only (no `if self.training:` inside)
        self.training_block = -1  # where the last `if self.training:` block ends in the forward
        self.var: dict[int, str] = {}  # value (of the first instance) -> the variable or expression holding it
        self.lanes: dict[str, str] = {}  # lane -> its variable
        self.sym: dict[int, Sym] = {}  # value -> symbolic shape
        self.strides: dict[int, list[ast.expr]] = {}  # value -> strides of the layers it went through

    # ----------------------------------------------------------------- values
    def resolve(self, candidate: ast.expr | None, concretes: list[Any], group: Group, label: str | None,
                compress: bool = True) -> ast.expr | None:
        if candidate is not None and self._verifies(candidate, concretes, group):
            self.needs |= E.names(candidate) - self.own
            return candidate
        if _same(concretes):
            return E.const(_compress(concretes[0]) if compress else concretes[0])
        if label is None:
            return None
        name = self.local.take(_snake(label))
        self.extras[name] = {it.inst: _compress(c) if compress else c for it, c in zip(group, concretes)}
        self.own.add(name)
        for it in group:  # later values may be written in terms of this argument
            it.env[name] = self.extras[name][it.inst]
        return E.name(name)

    def _verifies(self, candidate: ast.expr, concretes: list[Any], group: Group) -> bool:
        for it, concrete in zip(group, concretes):
            try:
                value = E.evaluate(candidate, it.env)
            except E.Unknown:
                return False
            if not _matches(value, concrete):
                return False
        return True

    def value(self, group: Group, attr: str, setting: str | None = None, default: Any = REQUIRED,
              hint: str | None = None) -> Val:
        """``attrs.<attr>`` of the group's nodes, written as the spec wrote ``setting`` where that reproduces
        every instance (or as the ``hint`` expression, for layers the front end made: projections)."""
        node = group[0].node
        assert isinstance(node, Node)
        candidate = self.hints.get(hint) if hint else None
        if setting is not None and setting in node.written:
            try:
                candidate = E.written(node.written[setting], self.gen.py)
            except E.Unknown:
                candidate = None
        if candidate is not None and self.in_name and "channels_in" not in self.own:  # a block's $channels_in
            candidate = E.substitute(candidate, {"channels_in": E.name(self.in_name)})
        if isinstance(candidate, ast.Tuple) and candidate.elts and len({ast.dump(e) for e in candidate.elts}) == 1:
            candidate = candidate.elts[0]  # [3, 3] is written 3, as PyTorch takes it
        concretes = [getattr(n.attrs, attr) for n in nodes(group)]
        expr = self.resolve(candidate, concretes, group, f"{node.name}_{attr}")
        assert expr is not None
        if default is not REQUIRED and E.is_const(expr) and _matches(E.evaluate(expr, {}), default):
            return Val(expr, None)
        return Val(expr, E.source(expr))

    def derived(self, group: Group, axis: ast.expr | None, attr: str) -> Val:
        """A size the spec never writes (input channels, features): from the symbolic shape."""
        node = group[0].node
        concretes = [getattr(n.attrs, attr) for n in nodes(group)]
        expr = self.resolve(axis, concretes, group, f"{node.name}_{attr}")
        assert expr is not None
        return Val(expr, E.source(expr))

    def shape(self, group: Group, candidates: Sym) -> Sym:
        """Symbolic output shape: each axis kept only where it reproduces every instance."""
        out: Sym = []
        for k, cand in enumerate(candidates):
            concretes = [it.node.output_shape[k] for it in group]
            if isinstance(cand, int):
                cand = E.const(cand)
            out.append(self.resolve(cand, concretes, group, None))
        return out

    def fresh(self, stem: str) -> str:
        candidate, n = stem, 1
        while candidate in self.vars:
            n += 1
            candidate = f"{stem}{n}"
        self.vars.add(candidate)
        return candidate

    def lane(self, lane: str) -> str:
        """The variable a lane writes: ``x`` for the main path, a fresh ``out``/``identity``/``branch``."""
        found = self.lanes.get(lane)
        if found is None:
            found = self.lanes[lane] = "x" if _stem(lane) == "x" else self.fresh(_stem(lane))
        return found

    # --------------------------------------------------------------- members
    def attr(self, name: str) -> str:
        if self.owner_is_dict:
            return f"{self.owner}[{name!r}]"
        return f"{self.owner}.{name}" if not N.quoted(name) else f"{self.owner}.get_submodule({name!r})"

    def members(self, groups: list[Group]) -> None:
        """The forward statements (and constructor lines) of ``groups``, in order."""
        for group in groups:
            member = group[0].node
            if not all(it.node.active for it in group) and not isinstance(member, Scope):
                continue  # (only projection scopes are partly active; their nodes are handled with them)
            start = len(self.view.forward)
            self.member(group)
            if training_only(member) and not self.training_scope:  # an auxiliary classifier: `if self.training:`
                body = [Line(line.indent + 1, line.code, line.comment) for line in self.view.forward[start:]]
                opened = start > 0 and self.training_block == start
                self.view.forward[start:] = body if opened else [Line(0, "if self.training:"), *body]
                self.training_block = len(self.view.forward)

    def member(self, group: Group) -> None:
        """One member\x27s forward statements (and constructor lines)."""
        member = group[0].node
        if isinstance(member, Scope) and not member.members:
            return  # an empty sequential is the identity: nothing to hold, nothing to call
        if isinstance(member, Scope) and member.projection is not None:
            self.projection(group)
        elif isinstance(member, Scope) and member.block is None and len(self.inputs(member)) > 1:
            self.open_scope(group)
        elif isinstance(member, Scope):
            self.scope_call(group)
        elif member.shortcut and self.gen.alone_on_shortcut(member):
            self.inline(group)
        else:
            self.node(group)

    def inputs(self, node: Node | Scope) -> tuple[int, ...]:
        return self.gen.structure_inputs(node)

    def node(self, group: Group) -> None:
        node = group[0].node
        assert isinstance(node, Node)
        op = REGISTRY[node.op]
        ctx = Context(self, group)
        lowering = op.torch(node.attrs, ctx)
        ins = self.inputs(node)
        out = node.outputs[0]
        comment = shape_comment(node.output_shape)
        if isinstance(lowering, TorchExpression):
            self.expression(group, lowering, ins, out, comment)
        elif lowering.functional and N.is_index(node.name):
            target = self.lane(node.lane)
            self.view.forward.append(Line(0, f"{target} = {lowering.functional.format(self.var[ins[0]])}", comment))
            self.var[out] = target
        else:
            self.register(group, [Line(0, self.constructor(group, lowering), comment)], ctx.fixups())
            target = self.lane(node.lane)
            self.view.forward.append(Line(0, f"{target} = {self.attr(node.name)}({self.var[ins[0]]})", comment))
            self.var[out] = target
        self.sym[out] = lowering.shape
        self.strides[out] = self.strides.get(ins[0], []) + ctx.logged

    def constructor(self, group: Group, lowering: TorchModule) -> str:
        """The module's constructor, in place where every call of the module may run in place."""
        if lowering.in_place and self.gen.may_run_in_place(group, self.view.name):
            return lowering.in_place
        return lowering.constructor

    def expression(self, group: Group, lowering: TorchExpression, ins: tuple[int, ...], out: int, comment: str) -> None:
        node = group[0].node
        assert isinstance(node, Node)
        args = [self.var[v] for v in ins]
        param = None
        if lowering.parameter is not None:
            if node.name not in self.registered:
                if N.quoted(node.name):
                    self.view.init.append(Line(0, f"self.register_parameter({node.name!r}, {lowering.parameter})"))
                else:
                    self.view.init.append(Line(0, f"self.{node.name} = {lowering.parameter}"))
                self.registered[node.name] = [lowering.parameter]
            param = f"self.{node.name}" if not N.quoted(node.name) else f"self.get_parameter({node.name!r})"
        target = self.lane(node.lane)
        fill = {"inputs": ", ".join(args), "param": param}
        if lowering.in_place and args[0] == target and self.gen.fresh_and_alone(ins[0], node):
            self.view.forward.append(Line(0, lowering.in_place.format(*args, **fill), comment))
        else:
            self.view.forward.append(Line(0, f"{target} = {lowering.forward.format(*args, **fill)}", comment))
        self.var[out] = target
        self.sym[out] = lowering.shape
        self.strides[out] = self.strides.get(ins[0], [])

    def register(self, group: Group, lines: list[Line], fixups: list[Line]) -> None:
        """Emit ``self.<name> = ...`` (first use of the name only)."""
        node = group[0].node
        code = [line.code for line in lines]
        key = self.attr(node.name)
        if key in self.registered:  # a stateless layer called again under the same name
            if self.registered[key] != code:
                raise SpecError(f"layers sharing the name `{node.name}` differ ({code[0]} vs "
                                f"{self.registered[key][0]}); one module cannot be both", node.pos)
            return
        self.registered[key] = code
        self.view.init.extend(self._assign(node.name, lines))
        self.view.init.extend(fixups)

    def _assign(self, name: str, lines: list[Line], indent: int = 0) -> list[Line]:
        first, rest = lines[0], lines[1:]
        if self.owner_is_dict:
            head = Line(first.indent + indent, f"{self.owner}[{name!r}] = {first.code}", first.comment if rest else "")
            return [head, *[Line(r.indent + indent, r.code, r.comment) for r in rest]]
        if N.quoted(name):
            head = Line(first.indent + indent, f"{self.owner}.add_module({name!r}, {first.code}", "")
            if rest:
                rest = [*rest[:-1], Line(rest[-1].indent, rest[-1].code + ")", rest[-1].comment)]
            else:
                head.code += ")"
            return [head, *[Line(r.indent + indent, r.code, r.comment) for r in rest]]
        head = Line(first.indent + indent, f"{self.owner}.{name} = {first.code}", first.comment if rest else "")
        return [head, *[Line(r.indent + indent, r.code, r.comment) for r in rest]]

    def inline(self, group: Group) -> None:
        """A shortcut of one module: registered, and called where the add reads it (``out += self.sc(x)``)."""
        node = group[0].node
        assert isinstance(node, Node)
        ctx = Context(self, group)
        lowering = REGISTRY[node.op].torch(node.attrs, ctx)
        ins = self.inputs(node)
        if not isinstance(lowering, TorchModule):
            return self.node(group)
        self.register(group, [Line(0, lowering.constructor, shape_comment(node.output_shape))], ctx.fixups())
        self.var[node.outputs[0]] = f"{self.attr(node.name)}({self.var[ins[0]]})"
        self.sym[node.outputs[0]] = lowering.shape
        self.strides[node.outputs[0]] = self.strides.get(ins[0], [])
        return None

    def scope_call(self, group: Group) -> None:
        scope = group[0].node
        assert isinstance(scope, Scope)
        ins = self.inputs(scope)
        if len(ins) != 1:
            raise SpecError(f"the torch backend cannot yet emit the scope `{scope.path}`, which reads {len(ins)} "
                            "tensors made outside it", scope.pos)
        lines, out_sym, fixups = self.construct(group, self.sym[ins[0]], self.attr(scope.name))
        self.register(group, lines, fixups)
        target = self.lane(scope.lane)
        out = scope.outputs[-1]
        others = [self.fresh(self.gen.lane_of(scope, v)) for v in scope.outputs[:-1]]  # features read outside
        self.view.forward.append(Line(0, f"{', '.join([*others, target])} = {self.attr(scope.name)}({self.var[ins[0]]})",
                                      shape_comment(scope.output_shape)))
        for value, var in zip(scope.outputs, others):
            self.var[value], self.sym[value] = var, [None] * len(out_sym)
        self.var[out] = target
        self.sym[out] = out_sym
        self.strides[out] = self.strides.get(ins[0], [])

    def open_scope(self, group: Group) -> None:
        """A sequential that reads tensors made outside it (a U-Net's up level takes the encoder's tensor): an
        ``nn.ModuleDict`` holding its members, each called in this forward (``x = self.upcat_4["upsample"](x)``,
        ``x = torch.cat([x3, x], dim=1)``, ...), so the state_dict keys stay ``upcat_4.upsample.deconv.weight``
        (a dict, not an empty ``nn.Module``, so that type checkers know each member is a module)."""
        scope = group[0].node
        assert isinstance(scope, Scope)
        owner = self.attr(scope.name) if not self.owner_is_dict else self.nested_dict(group)
        if not self.owner_is_dict:
            self.register(group, [Line(0, "nn.ModuleDict()", "")], [])
        saved = self.owner, self.owner_is_dict
        self.owner, self.owner_is_dict = owner, True
        try:
            self.members(parallel(group, lambda s: s.members))
        finally:
            self.owner, self.owner_is_dict = saved

    def nested_dict(self, group: Group) -> str:
        """An open scope inside another: a local ``nn.ModuleDict`` in the constructor (``up_fuse =
        nn.ModuleDict()``, ``self.up['fuse'] = up_fuse``) and in ``forward`` (``up_fuse =
        cast(nn.ModuleDict, self.up['fuse'])``), whose members are then ``up_fuse['conv']``. mypy types
        ``self.up['fuse']`` as ``nn.Module`` (a ``ModuleDict``'s items), which it can neither index nor call
        through; the local names the dict's type once, and the state_dict keys stay ``up.fuse.conv.weight``."""
        scope = group[0].node
        key = self.attr(scope.name)
        name = self.local.take(_snake(f"{self.owner}_{scope.name}".removeprefix("self.")))
        while name in self.vars:
            name = self.local.take(name)
        self.vars.add(name)
        self.registered[key] = ["nn.ModuleDict()"]
        self.view.init += [Line(0, f"{name} = nn.ModuleDict()"), Line(0, f"{key} = {name}")]
        self.view.forward.append(Line(0, f"{name} = cast(nn.ModuleDict, {key})"))
        return name

    def projection(self, group: Group) -> None:
        """torchvision's ``downsample``: in every instance (``out += self.downsample(x)``), in some (a
        ``bool`` constructor flag, ``identity = x if self.downsample is None else self.downsample(x)``) or in
        none (the shortcut is the input)."""
        scope = group[0].node
        assert isinstance(scope, Scope) and scope.projection is not None
        source, target = scope.projection.source, scope.projection.target
        out = scope.outputs[-1]
        present = [it for it in group if it.node.active]
        if not present:
            self.var[out], self.sym[out] = self.var[source], self.sym[source]
            return
        strides = self.strides.get(target, [])[len(self.strides.get(source, [])):]
        saved, self.hints = self.hints, {"stride": E.product(strides) if strides else E.const(1)}
        channels = self.sym[target][0]
        if channels is not None:
            self.hints["out"] = channels
        try:
            if len(present) == len(group):
                lines, out_sym, fixups = self.construct(group, self.sym[source], self.attr(scope.name))
                self.register(group, lines, fixups)
                self.var[out] = f"{self.attr(scope.name)}({self.var[source]})"
            else:
                out_sym = self.optional(group, present, source)
                self.var[out] = var = self.fresh("identity")
                attr = f"self.{scope.name}"
                self.view.forward.append(Line(0, f"{var} = {self.var[source]} if {attr} is None else "
                                                 f"{attr}({self.var[source]})"))
        finally:
            self.hints = saved
        self.sym[out] = out_sym

    def optional(self, group: Group, present: Group, source: int) -> Sym:
        """A module that only some instances have: a ``bool`` constructor flag."""
        scope = present[0].node
        if N.quoted(scope.name):
            raise SpecError("the torch backend cannot emit a block whose shortcut differs between instances "
                            "unless the shortcut is one named module (like `downsample`)", scope.pos)
        have = {it.inst for it in present}
        flag = self.local.take(scope.name)
        self.flags[flag] = {it.inst: it.inst in have for it in group}
        lines, out_sym, fixups = self.construct(present, self.sym[source], f"self.{scope.name}")
        lines = [Line(line.indent, line.code) for line in lines]  # other instances' shapes: no comments
        self.registered[scope.name] = [line.code for line in lines]
        self.view.init.append(Line(0, f"self.{scope.name}: nn.Module | None = None"))
        self.view.init.append(Line(0, f"if {flag}:"))
        self.view.init.extend(self._assign(scope.name, lines, indent=1))
        self.view.init.extend(Line(f.indent + 1, f.code, f.comment) for f in fixups)
        return out_sym

    def construct(self, group: Group, sym: Sym, ref: str) -> tuple[list[Line], Sym, list[Line]]:
        """Constructor expression lines for a scope, its output shape and any fix-up lines."""
        scope = group[0].node
        assert isinstance(scope, Scope)
        comment = shape_comment(scope.output_shape)
        if scope.block is not None:
            src, out = self.call_class(group, sym, self.gen.block_class(scope))
            return [Line(0, src, comment)], out, []
        if self.gen.is_chain(scope):
            return self.inline_sequential(group, sym, ref)
        src, out = self.call_class(group, sym, self.gen.scope_class(group, self))
        return [Line(0, src, comment)], out, []

    def inline_sequential(self, group: Group, sym: Sym, ref: str) -> tuple[list[Line], Sym, list[Line]]:
        """``nn.Sequential(...)`` with one entry per member, each with its output shape as a comment."""
        lines = [Line(0, "nn.Sequential(")]
        fixups: list[Line] = []
        for k, child_group in enumerate(parallel(group, lambda s: s.members)):
            child = child_group[0].node
            if isinstance(child, Scope):
                child_lines, sym, child_fix = self.construct(child_group, sym, f"{ref}[{k}]")
            else:
                child_lines, sym, child_fix = self.leaf(child_group, sym, f"{ref}[{k}]")
            last = child_lines[-1]
            child_lines[-1] = Line(last.indent, last.code + ",", last.comment)
            lines.extend(Line(c.indent + 1, c.code, c.comment) for c in child_lines)
            fixups.extend(child_fix)
        lines.append(Line(0, ")"))
        return lines, sym, fixups

    def leaf(self, group: Group, sym: Sym, ref: str) -> tuple[list[Line], Sym, list[Line]]:
        """A node inside an inline ``nn.Sequential``: its constructor."""
        node = group[0].node
        assert isinstance(node, Node)
        ctx = Context(self, group, sym)
        lowering = REGISTRY[node.op].torch(node.attrs, ctx)
        if not isinstance(lowering, TorchModule):
            raise SpecError(f"the torch backend cannot put `{node.op}` in an nn.Sequential", node.pos)
        return [Line(0, self.constructor(group, lowering), shape_comment(node.output_shape))], lowering.shape, \
            ctx.fixups(ref)

    # ----------------------------------------------------------------- calls
    def call_class(self, group: Group, sym: Sym, info: ClassInfo) -> tuple[str, Sym]:
        scope = group[0].node
        assert isinstance(scope, Scope)
        in_val = self.resolve(sym[0], [it.node.input_shape[0] for it in group], group, f"{scope.name}_in_channels")
        assert in_val is not None
        positional = [E.source(in_val)]
        keywords: list[str] = []
        mapping: dict[str, ast.expr] = {info.in_name: in_val}
        for arg, default in info.args:
            concretes = [it.node.block.args[arg] for it in group]  # type: ignore[union-attr]
            val = self.resolve(self.gen.call_arg(scope, arg), concretes, group, f"{scope.name}_{arg}")
            assert val is not None
            mapping[self.gen.py[arg]] = val
            if default is REQUIRED:
                positional.append(E.source(val))
            elif not (E.is_const(val) and _matches(E.evaluate(val, {}), default)):
                keywords.append(f"{self.gen.py[arg]}={E.source(val)}")
        for flag, per_inst in info.flags.items():
            val = self.resolve(None, [per_inst[info.index[id(it.node)]] for it in group], group, flag)
            if not (val is not None and E.is_const(val) and E.evaluate(val, {}) is False):
                keywords.append(f"{flag}={E.source(val)}")  # type: ignore[arg-type]
        for need in info.needs:
            inner_env = [info.envs[id(it.node)][need] for it in group]
            val = self.resolve(E.name(need), inner_env, group, need)
            mapping[need] = val  # type: ignore[assignment]
            keywords.append(f"{need}={E.source(val)}")  # type: ignore[arg-type]
        for extra, per_inst in info.extras.items():
            # an extra of an optional shortcut is known only for the instances that have it; the others
            # never read it, so any instance's value serves
            some = next(iter(per_inst.values()))
            val = self.resolve(None, [per_inst.get(info.index[id(it.node)], some) for it in group], group, extra)
            keywords.append(f"{extra}={E.source(val)}")  # type: ignore[arg-type]
        out = [E.substitute(e, mapping) if e is not None else None for e in info.out_sym]
        return f"{info.view.name}({', '.join(positional + keywords)})", self.shape(group, out)


class Context:
    """One node group's view of the class builder: the ``TorchContext`` of ``cnnspec.ops.base``."""

    def __init__(self, b: Builder, group: Group, sym: Sym | None = None) -> None:
        node = group[0].node
        assert isinstance(node, Node)
        self.b = b
        self.group = group
        self.node = node
        ins = b.inputs(node)
        self.inputs: list[Sym] = [sym] if sym is not None else [b.sym[v] for v in ins]
        self.input = self.inputs[0]
        self.rank = max(len(node.input_shape) - 1, 1)
        self.attrs = [n.attrs for n in nodes(group)]
        self.logged: list[ast.expr] = []

    def value(self, attr: str, setting: str | None = None, default: Any = REQUIRED, hint: str | None = None) -> Val:
        return self.b.value(self.group, attr, setting, default if default is not ... else REQUIRED, hint)

    def derived(self, attr: str, axis: Any) -> Val:
        return self.b.derived(self.group, axis, attr)

    def shape(self, axes: Sym) -> Sym:
        return self.b.shape(self.group, axes)

    def product(self, axes: Sym) -> Any:
        return E.product(list(axes)) if all(a is not None for a in axes) else None  # type: ignore[arg-type]

    def total(self, axes: Sym) -> Any:
        return E.total(list(axes)) if all(a is not None for a in axes) else None  # type: ignore[arg-type]

    def quotient(self, axis: Any, divisor: SymVal) -> Any:
        if axis is None:
            return None
        return E.fold(ast.BinOp(left=axis, op=ast.FloorDiv(), right=divisor.expr))

    def stride(self, value: SymVal) -> None:
        if not (E.is_const(value.expr) and _matches(E.evaluate(value.expr, {}), 1)):
            self.logged.append(value.expr)

    def helper(self, name: str, source: str) -> None:
        self.b.gen.helper(name, source)

    def call(self, func: str, positional: Sequence[SymVal | str], keywords: Sequence[tuple[str, SymVal | str]]) -> str:
        args = [p if isinstance(p, str) else str(p.src) for p in positional]
        for key, value in keywords:
            src = value if isinstance(value, str) else value.src
            if src is not None:
                args.append(f"{key}={src}")
        return f"{func}({', '.join(args)})"

    def same(self, attr: str, message: str) -> Any:
        first = getattr(self.attrs[0], attr)
        if any(getattr(a, attr) != first for a in self.attrs):
            raise SpecError(message, self.node.pos)
        return first

    def fixups(self, ref: str | None = None) -> list[Line]:
        return self.b.gen.fixups(self.b, self.group, ref or self.b.attr(self.node.name))


def _snake(label: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in label).strip("_").lower() or "value"
    return out if not out[0].isdigit() else f"layer{out}"
