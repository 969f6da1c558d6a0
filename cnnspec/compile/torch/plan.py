"""Plan the generated module: which classes exist, their constructor parameters, and the lines of their
``__init__`` and ``forward``.

* The root becomes the model class; its constructor takes the spec's ``params``.
* Every block kind becomes one class (instances whose structure differs get numbered variants), whose
  constructor takes the block's input channels and its arguments. A projection shortcut that only some
  instances have becomes a ``bool`` constructor flag (torchvision's ``downsample``).
* A scope whose children are ``0, 1, 2, ...`` and run one after the other is an inline ``nn.Sequential``;
  any other scope gets its own small class.

Every value is written as the spec's ``$expression`` (translated to Python) only when evaluating that
expression with each instance's arguments reproduces the analysed value; otherwise it is written as a
number when all instances agree, and as an extra keyword-only constructor argument when they do not.
So the generated code never describes a network other than the analysed one.
"""

from __future__ import annotations

import ast
from typing import Any

from cnnspec.compile.torch import expr as E
from cnnspec.compile.torch import names as N
from cnnspec.compile.torch.ops import EMITTERS, supported
from cnnspec.compile.torch.views import (
    REQUIRED,
    ClassInfo,
    ClassView,
    Group,
    Item,
    Line,
    Sym,
    Val,
    shape_comment,
)
from cnnspec.errors import SpecError
from cnnspec.graph import Graph, Node

_CHAIN_SCOPES = ("sequential", "stage")
# Ops that write a new tensor which their backward does not read: an in-place ReLU or ``+=`` may reuse it
# (torchvision's ``nn.ReLU(inplace=True)`` after BatchNorm, ``out += identity``).
IN_PLACE_SAFE = frozenset({
    "conv", "batchnorm", "linear", "layernorm", "groupnorm", "avgpool", "sumpool", "maxpool",
    "adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool", "add", "concat", "layer_scale",
})
# Ops that may hand back their input tensor itself (at inference): they keep the producer of their input.
PASS_THROUGH = frozenset({"identity", "dropout", "stochastic_depth"})
# Stateless ops written as plain calls when unnamed (index-named) inside a class with a forward.
FUNCTIONAL = {
    "flatten": "torch.flatten({}, 1)",
    "relu": "torch.relu({})",
    "sigmoid": "torch.sigmoid({})",
    "tanh": "torch.tanh({})",
    "silu": "nn.functional.silu({})",
    "gelu": "nn.functional.gelu({})",
}


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


def is_chain(node: Node) -> bool:
    """A scope that ``nn.Sequential`` reproduces exactly: children ``0..n-1`` run in order."""
    if node.op not in (*_CHAIN_SCOPES, "model") or not node.children:
        return False
    for i, child in enumerate(node.children):
        if child.name != str(i) or child.op in ("residual", "concat", "layer_scale"):
            return False
    return True


def parallel(group: Group, nodes_of: Any) -> list[Group]:
    """Children of every item of ``group``, position by position."""
    lists = [nodes_of(it.node) for it in group]
    return [[Item(lst[k], it.inst, it.env) for it, lst in zip(group, lists)] for k in range(len(lists[0]))]


class Builder:
    """Builds one class: resolves values against every instance and accumulates lines."""

    def __init__(self, gen: Any, view: ClassView, own: set[str], in_name: str) -> None:
        self.gen = gen
        self.view = view
        self.own = set(own)
        self.in_name = in_name
        self.needs: set[str] = set()
        self.extras: dict[str, dict[int, Any]] = {}
        self.flags: dict[str, dict[int, bool]] = {}
        self.registered: dict[str, list[str]] = {}  # attribute -> its constructor lines
        self.hints: dict[str, ast.expr] = {}
        self.producer: dict[str, str | None] = {}  # variable -> op that wrote it (None: may be shared)
        self.relu_lines: dict[str, Line] = {}
        self.relu_shared_input: set[str] = set()
        self.stride_log: list[ast.expr] = []
        self.vars: set[str] = {"x"}
        self.local = N.Allocator(own)

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

    def value(self, group: Group, attr: str, raw_key: str | None = None, default: Any = REQUIRED,
              hint: str | None = None) -> Val:
        """``attr`` of the group's nodes, written as the spec wrote ``raw_key`` where that reproduces every
        instance (or as the ``hint`` expression, for layers the front end generated: projections)."""
        node = group[0].node
        candidate = self.hints.get(hint) if hint else None
        if raw_key is not None and raw_key in node.raw:
            try:
                candidate = E.parse(node.raw[raw_key])
            except E.Unknown:
                candidate = None
        if isinstance(candidate, ast.Tuple) and candidate.elts and len(
                {ast.dump(e) for e in candidate.elts}) == 1:
            candidate = candidate.elts[0]  # [3, 3] is written 3, as PyTorch takes it
        concretes = [it.node.attrs[attr] for it in group]
        expr = self.resolve(candidate, concretes, group, f"{node.name}_{attr}")
        assert expr is not None
        if default is not REQUIRED and E.is_const(expr) and _matches(E.evaluate(expr, {}), default):
            return Val(expr, None)
        return Val(expr, E.source(expr))

    def derived(self, group: Group, axis: ast.expr | None, attr: str) -> Val:
        """A size the spec never writes (input channels, features): from the symbolic shape."""
        node = group[0].node
        concretes = [it.node.attrs[attr] for it in group]
        expr = self.resolve(axis, concretes, group, f"{node.name}_{attr}")
        assert expr is not None
        return Val(expr, E.source(expr))

    def shape(self, group: Group, candidates: Sym) -> Sym:
        """Symbolic output shape: each axis kept only where it reproduces every instance."""
        out: Sym = []
        for k, cand in enumerate(candidates):
            concretes = [it.node.output_shape[k] for it in group]
            out.append(self.resolve(cand, concretes, group, None))
        return out

    def log_stride(self, stride: Val) -> None:
        """Remember a strided layer, so a projection shortcut can write its stride as the body's."""
        if not (E.is_const(stride.expr) and _matches(E.evaluate(stride.expr, {}), 1)):
            self.stride_log.append(stride.expr)

    def helper(self, name: str) -> None:
        self.gen.helpers.add(name)

    def fresh(self, stem: str) -> str:
        candidate, n = stem, 1
        while candidate in self.vars:
            n += 1
            candidate = f"{stem}{n}"
        self.vars.add(candidate)
        return candidate

    # --------------------------------------------------------------- members
    def chain(self, groups: list[Group], sym: Sym, v_in: str, v_work: str) -> tuple[Sym, str]:
        """Forward statements for ``groups`` run one after another, reading ``v_in`` and writing ``v_work``
        (a residual switches the working variable to its body's). Returns the output shape and variable."""
        v = v_in
        self.producer[v_in] = None  # the chain's input may be shared (a shortcut reads it too)
        for group in groups:
            op = group[0].node.op
            if op == "residual":
                sym, v = self.residual(group, sym, v)
                v_work = v
            elif op == "concat":
                sym = self.concat(group, sym, v, v_work)
                v = v_work
            elif op == "layer_scale":
                sym = self.layer_scale(group, sym, v, v_work)
                self.producer[v_work] = "layer_scale"
                v = v_work
            else:
                sym = self.module(group, sym, v, v_work)
                v = v_work
        return sym, v

    def finish(self) -> None:
        """ReLU modules whose every call reads a fresh tensor nobody else needs run in place, as torchvision's."""
        for name, line in self.relu_lines.items():
            if name not in self.relu_shared_input:
                line.code = line.code.replace("nn.ReLU()", "nn.ReLU(inplace=True)", 1)

    def _attr(self, name: str) -> str:
        return f"self.{name}" if not N.is_index(name) else f"self.get_submodule({name!r})"

    def register(self, group: Group, sym: Sym) -> Sym:
        """Emit ``self.<name> = ...`` (first use of the name only) and return the output shape."""
        node = group[0].node
        lines, out, fixups = self.construct(group, sym, self._attr(node.name))
        code = [line.code for line in lines]
        if node.name in self.registered:  # a stateless layer called again under the same name
            if self.registered[node.name] != code:
                raise SpecError(f"layers sharing the name `{node.name}` differ ({code[0]} vs "
                                f"{self.registered[node.name][0]}); one module cannot be both", node.pos)
            return out
        self.registered[node.name] = code
        assigned = self._assign(node.name, lines)
        if node.op == "relu" and len(assigned) == 1:
            self.relu_lines[node.name] = assigned[0]
        self.view.init.extend(assigned)
        self.view.init.extend(fixups)
        return out

    def _assign(self, name: str, lines: list[Line], indent: int = 0) -> list[Line]:
        first, rest = lines[0], lines[1:]
        if N.is_index(name):
            head = Line(first.indent + indent, f"self.add_module({name!r}, {first.code}", "")
            if rest:
                rest = [*rest[:-1], Line(rest[-1].indent, rest[-1].code + ")", rest[-1].comment)]
            else:
                head.code += ")"
            return [head, *[Line(r.indent + indent, r.code, r.comment) for r in rest]]
        head = Line(first.indent + indent, f"self.{name} = {first.code}", first.comment if rest else "")
        return [head, *[Line(r.indent + indent, r.code, r.comment) for r in rest]]

    def module(self, group: Group, sym: Sym, v_in: str, v_out: str) -> Sym:
        node = group[0].node
        comment = shape_comment(node.output_shape)
        functional = FUNCTIONAL.get(node.op)
        if functional and N.is_index(node.name) and node.attrs.get("approximate", "none") == "none":
            # an unnamed stateless op is a plain call, as torchvision writes torch.flatten(x, 1)
            _, out = EMITTERS[node.op](self, group, sym)
            self.view.forward.append(Line(0, f"{v_out} = {functional.format(v_in)}", comment))
            self.producer[v_out] = node.op
            return out
        if node.op == "relu" and self.producer.get(v_in) not in IN_PLACE_SAFE:
            self.relu_shared_input.add(node.name)
        out = self.register(group, sym)
        if node.op in PASS_THROUGH:
            self.producer[v_out] = self.producer.get(v_in)
        else:
            self.producer[v_out] = node.op if node.is_leaf else None
        self.view.forward.append(Line(0, f"{v_out} = {self._attr(node.name)}({v_in})", comment))
        return out

    def construct(self, group: Group, sym: Sym, ref: str) -> tuple[list[Line], Sym, list[Line]]:
        """Constructor expression lines for a leaf or scope, its output shape and any fix-up lines."""
        node = group[0].node
        comment = shape_comment(node.output_shape)
        if node.is_leaf:
            src, out = EMITTERS[node.op](self, group, sym)
            return [Line(0, src, comment)], out, self.gen.fixups(self, group, ref)
        if node.op == "block":
            src, out = self.call_class(group, sym, self.gen.block_class(node))
            return [Line(0, src, comment)], out, []
        if is_chain(node):
            return self.inline_sequential(group, sym, ref)
        src, out = self.call_class(group, sym, self.gen.scope_class(group, self))
        return [Line(0, src, comment)], out, []

    def inline_sequential(self, group: Group, sym: Sym, ref: str) -> tuple[list[Line], Sym, list[Line]]:
        """``nn.Sequential(...)`` with one entry per child, each with its output shape as a comment."""
        lines = [Line(0, "nn.Sequential(")]
        fixups: list[Line] = []
        previous: str | None = None
        for k, child_group in enumerate(parallel(group, lambda n: n.children)):
            child_lines, sym, child_fix = self.construct(child_group, sym, f"{ref}[{k}]")
            op = child_group[0].node.op
            if op == "relu" and previous in IN_PLACE_SAFE:
                child_lines[0].code = "nn.ReLU(inplace=True)"
            previous = op if child_group[0].node.is_leaf else None
            last = child_lines[-1]
            child_lines[-1] = Line(last.indent, last.code + ",", last.comment)
            lines.extend(Line(c.indent + 1, c.code, c.comment) for c in child_lines)
            fixups.extend(child_fix)
        lines.append(Line(0, ")"))
        return lines, sym, fixups

    def residual(self, group: Group, sym: Sym, v: str) -> tuple[Sym, str]:
        node = group[0].node
        body_var = self.fresh("out")
        mark = len(self.stride_log)
        body_sym, body_var = self.chain(parallel(group, lambda n: n.branches[0]), sym, v, body_var)
        strides = self.stride_log[mark:]
        shortcut = [it for it in group if len(it.node.branches) > 1 and it.node.branches[1]]
        comment = shape_comment(node.output_shape)
        saved, self.hints = self.hints, {"stride": E.product(strides) if strides else E.const(1)}
        if body_sym[0] is not None:
            self.hints["out"] = body_sym[0]
        if not shortcut:
            added = v
        elif len(shortcut) == len(group):
            added = self._shortcut(parallel(shortcut, lambda n: n.branches[1]), sym, v)
        else:
            added = self._optional_shortcut(group, shortcut, sym, v)
        self.hints = saved
        if self.producer.get(body_var) in IN_PLACE_SAFE:  # a fresh tensor whose backward does not need it
            self.view.forward.append(Line(0, f"{body_var} += {added}", comment))
        else:
            self.view.forward.append(Line(0, f"{body_var} = {body_var} + {added}", comment))
        self.producer[body_var] = "add"
        return self.shape(group, body_sym), body_var

    def _shortcut(self, groups: list[Group], sym: Sym, v: str) -> str:
        if len(groups) == 1 and groups[0][0].node.op not in ("residual", "concat", "layer_scale"):
            self.register(groups[0], sym)
            return f"{self._attr(groups[0][0].node.name)}({v})"
        var = self.fresh("identity")
        _, var = self.chain(groups, sym, v, var)
        return var

    def _optional_shortcut(self, group: Group, present: Group, sym: Sym, v: str) -> str:
        groups = parallel(present, lambda n: n.branches[1])
        node = groups[0][0].node
        if len(groups) != 1 or node.op in ("residual", "concat", "layer_scale") or N.is_index(node.name):
            raise SpecError("the torch backend cannot emit a block whose shortcut differs between instances "
                            "unless the shortcut is one named module (like `downsample`)", node.pos)
        have = {it.inst for it in present}
        flag = self.local.take(node.name)
        self.flags[flag] = {it.inst: it.inst in have for it in group}
        lines, _, fixups = self.construct(groups[0], sym, f"self.{node.name}")
        lines = [Line(line.indent, line.code) for line in lines]  # other instances' shapes: no comments
        self.registered[node.name] = [line.code for line in lines]
        self.view.init.append(Line(0, f"self.{node.name}: nn.Module | None = None"))
        self.view.init.append(Line(0, f"if {flag}:"))
        self.view.init.extend(self._assign(node.name, lines, indent=1))
        self.view.init.extend(Line(f.indent + 1, f.code, f.comment) for f in fixups)
        var = self.fresh("identity")
        attr = f"self.{node.name}"
        self.view.forward.append(Line(0, f"{var} = {v} if {attr} is None else {attr}({v})"))
        return var

    def concat(self, group: Group, sym: Sym, v: str, v_work: str) -> Sym:
        node = group[0].node
        parts: list[str] = []
        outputs: list[Sym] = []
        for b in range(len(node.branches)):
            if not node.branches[b]:  # an empty branch passes the input through (DenseNet)
                parts.append(v)
                outputs.append(sym)
                continue
            var = self.fresh("branch")
            branch_sym, var = self.chain(parallel(group, lambda n, b=b: n.branches[b]), sym, v, var)
            parts.append(var)
            outputs.append(branch_sym)
        comment = shape_comment(node.output_shape)
        self.view.forward.append(Line(0, f"{v_work} = torch.cat([{', '.join(parts)}], dim=1)", comment))
        self.producer[v_work] = "concat"
        channels = [out[0] for out in outputs]
        total = E.total(channels) if all(c is not None for c in channels) else None  # type: ignore[arg-type]
        return self.shape(group, [total, *outputs[0][1:]])

    def layer_scale(self, group: Group, sym: Sym, v: str, v_work: str) -> Sym:
        node = group[0].node
        channels = self.derived(group, sym[0], "channels")
        init = self.value(group, "init", "init")
        shape = [channels.src, *["1"] * (len(node.input_shape) - 1)]
        shape_src = f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(shape)})"
        if node.name not in self.registered:
            param = f"nn.Parameter(torch.full({shape_src}, {init.src}))"
            if N.is_index(node.name):
                self.view.init.append(Line(0, f"self.register_parameter({node.name!r}, {param})"))
            else:
                self.view.init.append(Line(0, f"self.{node.name} = {param}"))
            self.registered[node.name] = [param]
        attr = f"self.{node.name}" if not N.is_index(node.name) else f"self.get_parameter({node.name!r})"
        self.view.forward.append(Line(0, f"{v_work} = {attr} * {v}", shape_comment(node.output_shape)))
        return list(sym)

    # ----------------------------------------------------------------- calls
    def call_class(self, group: Group, sym: Sym, info: ClassInfo) -> tuple[str, Sym]:
        node = group[0].node
        in_val = self.resolve(sym[0], [it.node.input_shape[0] for it in group], group,
                              f"{node.name}_in_channels")
        assert in_val is not None
        positional = [E.source(in_val)]
        keywords: list[str] = []
        mapping: dict[str, ast.expr] = {info.in_name: in_val}
        for arg, default in info.args:
            concretes = [it.node.block.args[arg] for it in group]  # type: ignore[union-attr]
            candidate = self.gen.call_arg(group[0].node, arg)
            val = self.resolve(candidate, concretes, group, f"{node.name}_{arg}")
            assert val is not None
            mapping[arg] = val
            if default is REQUIRED:
                positional.append(E.source(val))
            elif not (E.is_const(val) and _matches(E.evaluate(val, {}), default)):
                keywords.append(f"{arg}={E.source(val)}")
        for flag, per_inst in info.flags.items():
            val = self.resolve(None, [per_inst[info.index[id(it.node)]] for it in group], group, flag)
            if not (val is not None and E.is_const(val) and E.evaluate(val, {}) is False):
                keywords.append(f"{flag}={E.source(val)}")  # type: ignore[arg-type]
        for need in info.needs:
            inner_env = [self.gen.instance_env(info, it.node)[need] for it in group]
            val = self.resolve(E.name(need), inner_env, group, need)
            mapping[need] = val  # type: ignore[assignment]
            keywords.append(f"{need}={E.source(val)}")  # type: ignore[arg-type]
        for extra, per_inst in info.extras.items():
            # an extra of an optional shortcut is known only for the instances that have it; the others
            # never read it, so any instance's value serves (a KeyError here before)
            some = next(iter(per_inst.values()))
            val = self.resolve(None, [per_inst.get(info.index[id(it.node)], some) for it in group], group, extra)
            keywords.append(f"{extra}={E.source(val)}")  # type: ignore[arg-type]
        out = [E.substitute(e, mapping) if e is not None else None for e in info.out_sym]
        return f"{info.view.name}({', '.join(positional + keywords)})", self.shape(group, out)


def _snake(label: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in label).strip("_").lower() or "value"
    return out if not out[0].isdigit() else f"layer{out}"


def check_supported(graph: Graph) -> None:
    for node in graph.root.walk():
        if node.is_leaf and not supported(node.op):
            raise SpecError(f"the torch backend has no emitter for op {node.op!r}", node.pos)
