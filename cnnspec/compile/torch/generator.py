"""Turn an analysed graph into class views (see ``plan``): names, block grouping, fixed weights, and the
facts about the graph the planner asks for (who reads a value, whether a module may run in place)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cnnspec.compile.torch import expr as E
from cnnspec.compile.torch import names as N
from cnnspec.compile.torch.plan import Builder, parallel
from cnnspec.compile.torch.views import REQUIRED, ClassInfo, ClassView, Group, Item, Line, Param, Sym, nodes
from cnnspec.errors import SpecError
from cnnspec.ir import Graph, Node, Scope, training_only
from cnnspec.ops import REGISTRY

ASSIGN = "assign"  # the helper that writes fixed weights (templates/helpers/assign.py.j2)


class Generator:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        validate(graph)
        self.helpers: dict[str, str | None] = {}  # name -> source (None: a backend template), in first use
        self.constants: list[tuple[str, Any]] = []
        self.classes: list[ClassView] = []
        self.py = spec_names(graph)  # spec param / block argument -> its constructor parameter (`out` -> `out_`)
        self.class_names = N.Allocator({*self.py, *self.py.values()})  # never hides a constructor argument
        self.root_builder: Builder | None = None
        self.block_groups: dict[tuple[str, Any], list[Scope]] = {}
        self.block_key: dict[int, tuple[str, Any]] = {}
        self.built: dict[tuple[str, Any], ClassInfo] = {}
        elaborated = graph.elaborated.nodes if graph.elaborated is not None else graph.nodes
        self.structure = {id(n): e.inputs for n, e in zip(graph.nodes, elaborated)}
        self.producer = graph.producers()
        self.readers = graph.readers()
        self.by_name: dict[tuple[str, str], list[Node]] = {}
        self.lane_members: dict[str, int] = {}
        for node in graph.nodes:
            self.by_name.setdefault((node.scope, node.name), []).append(node)
            self.lane_members[node.lane] = self.lane_members.get(node.lane, 0) + 1
        for scope in graph.root.scopes():
            if scope.kind == "block" and scope.block is not None:
                key = (scope.block.kind, signature(scope, elaborated_inputs=self.structure))
                self.block_groups.setdefault(key, []).append(scope)
                self.block_key[id(scope)] = key

    # ---------------------------------------------------------------- graph facts
    def structure_inputs(self, member: Node | Scope) -> tuple[int, ...]:
        """What a member reads as the spec wrote it (a projection that ``auto`` left out still in place)."""
        if isinstance(member, Scope):
            return member.inputs
        return self.structure.get(id(member), member.inputs)

    def alone_on_shortcut(self, node: Node) -> bool:
        """Whether ``node`` is the whole shortcut of a residual (then called inline: ``out += self.sc(x)``)."""
        return node.lane.startswith("identity:") and self.lane_members.get(node.lane) == 1

    def fresh_and_alone(self, value: int, reader: Node) -> bool:
        """Whether ``value`` is a new tensor of ``reader``'s own module that nothing but ``reader`` reads, so
        ``reader`` may overwrite it (autograd needs no copy: its maker's backward does not read it). Through
        pass-through makers (dropout in eval returns its input) every value back to the fresh one must be
        read by the next link alone."""
        outputs = self.outputs()
        holder = reader
        while True:
            if [id(n) for n in self.readers.get(value, ())] != [id(holder)] or value in outputs:
                return False
            maker = self.producer.get(value)
            if maker is None or maker.scope != reader.scope:
                return False
            if not REGISTRY[maker.op].traits.pass_through:
                return REGISTRY[maker.op].traits.fresh_output
            holder, value = maker, maker.inputs[0]

    def outputs(self) -> set[int]:
        return {v for _, v in self.graph.outputs}

    def may_run_in_place(self, group: Group, class_name: str) -> bool:
        """Whether every call of this module, in every instance, may run in place."""
        node = group[0].node
        calls = [n for member in nodes(group) for n in self.by_name.get((member.scope, node.name), [])]
        return bool(calls) and all(self.fresh_and_alone(n.inputs[0], n) for n in calls if n.active)

    def is_chain(self, scope: Scope) -> bool:
        """A scope that ``nn.Sequential`` reproduces exactly: members ``0..n-1``, each reading the one before,
        and only the last one's output read outside (an ``nn.Sequential`` returns one tensor: a scope whose
        inner ``as:`` tensor is read outside needs a class that returns it too)."""
        if scope.kind not in ("sequential", "stage", "model", "projection", "block") or not scope.members:
            return False
        if len(scope.outputs) > 1:
            return False
        previous = scope.inputs[0] if len(scope.inputs) == 1 else None
        for i, member in enumerate(scope.members):
            if member.name != str(i) or previous is None:
                return False
            if isinstance(member, Node):
                if not REGISTRY[member.op].traits.torch_module:
                    return False
                ins, outs = self.structure_inputs(member), member.outputs
            else:
                ins, outs = member.inputs, member.outputs
            if tuple(ins) != (previous,) or len(outs) != 1:
                return False
            previous = outs[0]
        return True

    def env(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Spec values by the constructor parameters that hold them."""
        return {self.py.get(k, k): v for k, v in values.items()}

    def helper(self, name: str, source: str | None) -> None:
        self.helpers.setdefault(name, source)

    # ------------------------------------------------------------- classes
    def root_class(self) -> ClassView:
        graph = self.graph
        view = ClassView(self.class_names.take(N.camel(graph.name)), "nn.Module",
                         graph.description or f"The ``{graph.name}`` network.")
        b = Builder(self, view, {self.py[k] for k in graph.params}, in_name="")
        self.root_builder = b
        group = [Item(graph.root, 0, self.env(graph.params))]
        first = E.name("in_channels") if "in_channels" in graph.params else None
        sym = input_sym(b, group, first)
        if self.is_chain(graph.root) and graph.output_form == "one":
            lines, _, fixups = b.inline_sequential(group, sym, "self")
            lines[0] = Line(0, "super().__init__(")
            view.base, view.sequential = "nn.Sequential", True
            view.init = lines + fixups
        else:
            self.forward(b, group, sym)
        view.params = [Param(self.py[k], _annotation(v), literal(v, graph.root)) for k, v in graph.params.items()]
        self.classes.append(view)
        return view

    def forward(self, b: Builder, group: Group, sym: Sym) -> Sym:
        """The forward of the class built from ``group``'s scopes: ``x`` in, every member, the output out."""
        scope = group[0].node
        assert isinstance(scope, Scope)
        if len(scope.inputs) > 1:
            raise SpecError(f"the torch backend cannot yet emit the scope `{scope.path or 'model'}`, which reads "
                            f"{len(scope.inputs)} tensors made outside it", scope.pos)
        value = scope.inputs[0] if scope.inputs else self.graph.inputs[0]
        b.var[value], b.sym[value] = "x", sym
        b.training_scope = training_only(scope)
        if self.reread(scope, value):  # `from: input`, `size_of: input` after the main path changed x
            b.var[value] = b.fresh("x_in")
            b.view.forward.append(Line(0, f"{b.var[value]} = x  # the input, read again below"))
        b.members(parallel(group, lambda s: s.members))
        if scope is self.graph.root and self.graph.output_form != "one":
            return self.several_outputs(b)
        out = scope.outputs[-1] if scope.outputs else value
        if len(scope.outputs) > 1:  # a backbone whose intermediate features are read outside it
            b.view.returns = f"tuple[{', '.join(['torch.Tensor'] * len(scope.outputs))}]"
            b.view.forward.append(Line(0, f"return {', '.join(b.var[v] for v in scope.outputs)}"))
        else:
            b.view.forward.append(Line(0, f"return {b.var[out]}"))
        return b.sym[out]

    def several_outputs(self, b: Builder) -> Sym:
        """The model's ``outputs:``: a dict (as torchvision's segmentation models return) or a tuple. Where some
        run in training only, training returns them all and inference the others (one: the tensor itself),
        as torchvision's GoogLeNet does."""
        graph = self.graph
        inference = graph.inference_outputs()
        returns = self.returned(b, graph.outputs)
        if len(inference) < len(graph.outputs):
            b.view.forward.append(Line(0, "if self.training:"))
            b.view.forward.append(Line(1, returns[1]))
            one = len(inference) == 1
            evaluated = ("torch.Tensor", f"return {b.var[inference[0][1]]}") if one else self.returned(b, inference)
            b.view.returns = f"{returns[0]} | {evaluated[0]}"
            b.view.forward.append(Line(0, evaluated[1]))
        else:
            b.view.returns = returns[0]
            b.view.forward.append(Line(0, returns[1]))
        return b.sym[graph.outputs[0][1]]

    def returned(self, b: Builder, outputs: tuple[tuple[str, int], ...]) -> tuple[str, str]:
        """The annotation and the return statement of ``outputs``, a dict or a tuple as the spec's form says."""
        if self.graph.output_form == "dict":
            items = ", ".join(f"{name!r}: {b.var[value]}" for name, value in outputs)
            return "dict[str, torch.Tensor]", f"return {{{items}}}"
        return f"tuple[{', '.join(['torch.Tensor'] * len(outputs))}]", f"return {', '.join(b.var[v] for _, v in outputs)}"

    def lane_of(self, scope: Scope, value: int) -> str:
        """A variable name for ``value``, made in ``scope``: the ``as:`` name of the member that makes it."""
        for member in scope.members:
            if value in member.outputs:
                stem = member.lane.partition(":")[0]
                if stem not in ("", "x", "out", "branch") and not member.lane.startswith("identity:"):
                    return stem
                return self.lane_of(member, value) if isinstance(member, Scope) else "features"
        return "features"

    def reread(self, scope: Scope, value: int) -> bool:
        """Whether a member reads ``value`` (the scope's input, ``x``) after a member on the main lane wrote
        ``x``: then the input keeps a variable of its own."""
        written = False
        for member in scope.members:
            if written and value in self.structure_inputs(member):
                return True
            written = written or member.lane.partition(":")[0] == "x"
        return False

    def block_class(self, scope: Scope) -> ClassInfo:
        key = self.block_key[id(scope)]
        if key in self.built:
            return self.built[key]
        instances = self.block_groups[key]
        assert scope.block is not None
        args = block_args(scope)
        arg_names = [self.py[a] for a, _ in args]
        in_name = "in_channels" if "in_channels" not in arg_names else "input_channels"
        name = self.class_names.take(N.camel(scope.block.kind))
        doc = f"Block ``{scope.block.kind}`` of the spec. Shape comments are those of ``{instances[0].path}``."
        group = [Item(s, k, {**self.env(self.graph.params), **self.env(s.block.args), in_name: s.input_shape[0]})  # type: ignore[union-attr]
                 for k, s in enumerate(instances)]
        info = self._build(ClassView(name, "nn.Module", doc), group, in_name, args)
        self.built[key] = info
        return info

    def scope_class(self, group: Group, parent: Builder) -> ClassInfo:
        scope = group[0].node
        assert isinstance(scope, Scope)
        wanted = N.camel(scope.path) if parent is self.root_builder else parent.view.name + N.camel(scope.name)
        name = self.class_names.take(wanted)
        items = [Item(it.node, k, {**it.env, "in_channels": it.node.input_shape[0]}) for k, it in enumerate(group)]
        doc = f"The ``{scope.path}`` scope. Shape comments are those of ``{scope.path}``."
        return self._build(ClassView(name, "nn.Module", doc), items, "in_channels", [])

    def _build(self, view: ClassView, group: Group, in_name: str, args: list[tuple[str, Any]]) -> ClassInfo:
        b = Builder(self, view, {in_name, *(self.py[a] for a, _ in args)}, in_name)
        sym = input_sym(b, group, E.name(in_name))
        if all(self.is_chain(it.node) for it in group):  # type: ignore[arg-type]  # as torchvision's Conv2dNormActivation
            lines, out_sym, fixups = b.inline_sequential(group, sym, "self")
            lines[0] = Line(0, "super().__init__(")
            view.base, view.sequential = "nn.Sequential", True
            view.init = lines + fixups
        else:
            out_sym = self.forward(b, group, sym)
        first = group[0].node
        params = [Param(in_name, "int")]
        params += [Param(self.py[a], _arg_annotation(group, a, d)) for a, d in args if d is REQUIRED]
        params += [Param(self.py[a], _arg_annotation(group, a, d), literal(d, first)) for a, d in args
                   if d is not REQUIRED]
        params += [Param(f, "bool", "False") for f in b.flags]
        needs = sorted(b.needs)
        params += [Param(n, _annotation(group[0].env[n]), keyword_only=True) for n in needs]
        params += [Param(x, _annotation(next(iter(v.values()))), keyword_only=True) for x, v in b.extras.items()]
        view.params = params
        self.classes.append(view)
        return ClassInfo(view=view, in_name=in_name, args=args, index={id(it.node): it.inst for it in group},
                         flags=b.flags, needs=needs, extras=b.extras, out_sym=out_sym,
                         envs={id(it.node): it.env for it in group})

    def call_arg(self, scope: Scope, arg: str) -> Any:
        """The block argument as written at the call site (``$expressions`` kept), or None."""
        assert scope.block is not None
        if arg not in scope.block.written:
            return None
        try:
            return E.written(scope.block.written[arg], self.py)
        except E.Unknown:
            return None

    # ------------------------------------------------------- fixed weights
    def fixups(self, b: Builder, group: Group, ref: str) -> list[Line]:
        node = group[0].node
        assert isinstance(node, Node)
        lines: list[Line] = []
        for k, t in enumerate(node.params):
            target = f"{ref}.{t.key}"
            if t.init.kind == "fixed":
                values = t.init.values
                if any(it.node.params[k].init.values != values for it in group):  # type: ignore[union-attr]
                    raise SpecError("the torch backend needs fixed weights to be equal in every instance "
                                    "of a block", node.pos)
                kernel = repeated_kernel(values)  # one kernel for every (out, in) pair: copy_ broadcasts it
                const = self.constant(b, node, t.key, values if kernel is None else kernel)
                self.helper(ASSIGN, None)
                lines.append(Line(0, f"{ASSIGN}({target}, {const}, trainable={t.trainable!r})"))
            elif t.init.explicit:  # a value the module does not start with (a fixed kernel's zero bias)
                self.helper(ASSIGN, None)
                lines.append(Line(0, f"{ASSIGN}({target}, {E.source(E.const(float(t.init.value)))}, "
                                     f"trainable={t.trainable!r})"))
            elif not t.trainable:
                lines.append(Line(0, f"{target}.requires_grad_(False)"))
        return lines

    def constant(self, b: Builder, node: Node, key: str, values: Any) -> str:
        _check_numbers(values, node)
        hint = node.path if b is self.root_builder else f"{b.view.name}_{node.name}"
        name = self.class_names.take(N.upper(f"{hint}_{key}"))
        self.constants.append((name, _plain(values)))
        return name


def input_sym(b: Builder, group: Group, first: Any) -> Sym:
    shape = group[0].node.input_shape  # () for a network without layers
    cands = [first, *[None] * (len(shape) - 1)][:len(shape)]
    return [b.resolve(c, [it.node.input_shape[k] for it in group], group, None) for k, c in enumerate(cands)]


def signature(scope: Scope, top: bool = True, elaborated_inputs: dict[int, tuple[int, ...]] | None = None) -> Any:
    """Structure that one class must share: ops, names, ranks, layouts, how members connect; not values, and
    not whether a projection shortcut is there (that becomes a constructor flag)."""
    head = (scope.kind, None if top else scope.name, len(scope.input_shape), scope.block.kind if scope.block else None)
    if scope.projection is not None:  # present or not, the same constructor flag
        return head[:2]
    made: dict[int, int] = {}
    members: list[Any] = []
    for index, member in enumerate(scope.members):
        if isinstance(member, Scope):
            ins, entry = member.inputs, signature(member, False, elaborated_inputs)
        else:
            a = member.attrs
            ins = (elaborated_inputs or {}).get(id(member), member.inputs)
            entry = (member.op, member.name, member.lane.partition(":")[0], len(member.input_shape),
                     getattr(a, "over", None), getattr(a, "weights", None) is None,
                     tuple(t.trainable for t in member.params))
        members.append((entry, tuple(made.get(v, -1) for v in ins)))
        for v in member.outputs:
            made[v] = index
    return head, tuple(members)


def block_args(scope: Scope) -> list[tuple[str, Any]]:
    """The block's arguments as (name, default or REQUIRED): required first, then defaulted, each in
    definition order."""
    assert scope.block is not None
    out = [(name, default) for name, _, default in scope.block.signature]
    return [x for x in out if x[1] is REQUIRED] + [x for x in out if x[1] is not REQUIRED]


def _arg_annotation(group: Group, arg: str, default: Any) -> str:
    """The constructor annotation of a block argument. A list argument arrives as a tuple literal
    (``(1, 7)``): ``tuple[int, int]`` where every instance passes the same length (what ``nn.Conv2d``'s
    ``kernel_size`` is typed as), ``tuple[int, ...]`` otherwise. A union argument (``int | list[int]``) is
    annotated with the members its instances and default use: ``int | tuple[int, int]`` in inception_v3."""
    scope = group[0].node
    assert isinstance(scope, Scope) and scope.block is not None
    type_name = next(t for name, t, _ in scope.block.signature if name == arg)
    values = [it.node.block.args[arg] for it in group if isinstance(it.node, Scope) and it.node.block is not None]
    if type_name in ("list[int]", "list[float]"):
        return _tuple_annotation(type_name[5:-1], values)
    if " | " in type_name:
        item = type_name.partition(" | ")[0]
        used = [*values, *([] if default is REQUIRED else [default])]
        lists = [v for v in used if isinstance(v, (list, tuple))]
        parts = ([item] if len(lists) < len(used) else []) + ([_tuple_annotation(item, lists)] if lists else [])
        return " | ".join(parts)
    return type_name


def _tuple_annotation(item: str, values: list[Any]) -> str:
    lengths = {len(v) for v in values}
    if len(lengths) == 1 and 0 < (n := lengths.pop()) <= 3:
        return f"tuple[{', '.join([item] * n)}]"
    return f"tuple[{item}, ...]"


def _annotation(value: Any) -> str:
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t.__name__
    if isinstance(value, (tuple, list)):
        return "tuple[int, ...]" if all(isinstance(v, int) for v in value) else "tuple"
    return "object"


def validate(graph: Graph) -> None:
    for scope in graph.root.scopes():
        for member in scope.members:
            if isinstance(member, Node) and not member.name:
                continue  # a merge the spec wrote as a structure: no attribute
            N.check_layer_name(member.name, member.pos)


def spec_names(graph: Graph) -> dict[str, str]:
    """Every spec param and block argument name -> its constructor parameter (:func:`names.python_names`)."""
    blocks = [s.block for s in graph.root.scopes() if s.block is not None]
    return N.python_names([*graph.params, *(a for b in blocks for a, _, _ in b.signature), *(a for b in blocks for a in b.args)])


def literal(value: Any, member: Node | Scope) -> str:
    """A default value as Python source: literals only (numbers, booleans, strings, tuples of them)."""
    try:
        return E.source(E.const(value))
    except E.Unknown:
        raise SpecError(f"the torch backend cannot write {type(value).__name__} value {value!r} as a "
                        "constructor default", member.pos) from None


def repeated_kernel(values: Any) -> Any:
    """The kernel of a fixed ``[out, in/groups, *k]`` array that holds one kernel for every (out, in) pair of
    two or more (as ``weights: [[1, 0, -1], ...]`` with ``out`` expands), else None. The analysis shares one
    row between output channels, so the comparison is by identity first and costs O(out + in)."""
    if not (isinstance(values, list) and values and isinstance(values[0], list) and values[0]):
        return None
    first = values[0][0]
    if len(values) * len(values[0]) < 2 or not isinstance(first, list):
        return None
    if all(row is values[0] or row == values[0] for row in values) and all(k == first for k in values[0]):
        return first
    return None


def _check_numbers(values: Any, node: Node) -> None:
    if isinstance(values, (list, tuple)):
        for v in values:
            _check_numbers(v, node)
        return
    if isinstance(values, bool) or not isinstance(values, (int, float)) or not math.isfinite(values):
        raise SpecError("fixed weights must be finite numbers", node.pos)


def _plain(values: Any) -> Any:
    if isinstance(values, (list, tuple)):
        return [_plain(v) for v in values]
    return float(values)
