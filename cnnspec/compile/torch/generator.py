"""Turn an analysed graph into class views (see ``plan``): validation, block grouping, fixed weights."""

from __future__ import annotations

import math
from typing import Any

from cnnspec.compile.torch import expr as E
from cnnspec.compile.torch import names as N
from cnnspec.compile.torch.plan import Builder, check_supported, is_chain, parallel
from cnnspec.compile.torch.views import REQUIRED, ClassInfo, ClassView, Group, Item, Line, Param, Sym
from cnnspec.errors import SpecError
from cnnspec.graph import Graph, Node

HELPERS_ORDER = ("ChannelLayerNorm", "PointwiseLinear", "Permute", "StochasticDepth", "SumPool1d", "assign")


class Generator:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        validate(graph)
        check_supported(graph)
        self.helpers: set[str] = set()
        self.constants: list[tuple[str, Any]] = []
        self.classes: list[ClassView] = []
        self.class_names = N.Allocator(set(HELPERS_ORDER))
        self.const_names = N.Allocator()
        self.parent: dict[int, Node] = {}
        self.block_groups: dict[tuple[str, Any], list[Node]] = {}
        self.block_key: dict[int, tuple[str, Any]] = {}
        self.built: dict[tuple[str, Any], ClassInfo] = {}
        self.root_builder: Builder | None = None
        self._index(graph.root)

    # ------------------------------------------------------------ indexing
    def _index(self, node: Node) -> None:
        for child in node.child_nodes():
            self.parent[id(child)] = node
            self._index(child)
        if node.op == "block" and node.block is not None:
            key = (node.block.kind, signature(node, shortcuts=False))
            self.block_groups.setdefault(key, []).append(node)
            self.block_key[id(node)] = key

    # ------------------------------------------------------------- classes
    def root_class(self) -> ClassView:
        graph = self.graph
        for name in graph.params:
            N.check_parameter_name(name, graph.root.pos, "spec param")
        view = ClassView(self.class_names.take(N.camel(graph.name)), "nn.Module",
                         graph.description or f"The ``{graph.name}`` network.")
        b = Builder(self, view, set(graph.params), in_name="")
        self.root_builder = b
        group = [Item(graph.root, 0, dict(graph.params))]
        first = E.name("in_channels") if "in_channels" in graph.params else None
        sym = input_sym(b, group, first)
        if is_chain(graph.root):
            lines, _, fixups = b.inline_sequential(group, sym, "self")
            lines[0] = Line(0, "super().__init__(")
            view.base, view.sequential = "nn.Sequential", True
            view.init = lines + fixups
        else:
            _, v = b.chain(parallel(group, lambda n: n.children), sym, "x", "x")
            view.forward.append(Line(0, f"return {v}"))
        b.finish()
        view.params = [Param(k, _annotation(v), literal(v, graph.root)) for k, v in graph.params.items()]
        self.classes.append(view)
        return view

    def block_class(self, node: Node) -> ClassInfo:
        key = self.block_key[id(node)]
        if key in self.built:
            return self.built[key]
        instances = self.block_groups[key]
        assert node.block is not None
        args = block_args(node)
        arg_names = [a for a, _ in args]
        in_name = "in_channels" if "in_channels" not in arg_names else "input_channels"
        name = self.class_names.take(N.camel(node.block.kind))
        doc = (f"Block ``{node.block.kind}`` of the spec. Shape comments are those of "
               f"``{instances[0].path}``.")
        group = [Item(n, k, {**self.graph.params, **n.block.args, in_name: n.input_shape[0]})  # type: ignore
                 for k, n in enumerate(instances)]
        info = self._build(ClassView(name, "nn.Module", doc), group, in_name, args)
        self.built[key] = info
        return info

    def scope_class(self, group: Group, parent: Builder) -> ClassInfo:
        node = group[0].node
        wanted = N.camel(node.path) if parent is self.root_builder else parent.view.name + N.camel(node.name)
        name = self.class_names.take(wanted)
        items = [Item(it.node, k, {**it.env, "in_channels": it.node.input_shape[0]})
                 for k, it in enumerate(group)]
        doc = f"The ``{node.path}`` scope. Shape comments are those of ``{node.path}``."
        return self._build(ClassView(name, "nn.Module", doc), items, "in_channels", [])

    def _build(self, view: ClassView, group: Group, in_name: str, args: list[tuple[str, Any]]) -> ClassInfo:
        b = Builder(self, view, {in_name, *(a for a, _ in args)}, in_name)
        sym = input_sym(b, group, E.name(in_name))
        out_sym, v = b.chain(parallel(group, lambda n: n.children), sym, "x", "x")
        view.forward.append(Line(0, f"return {v}"))
        b.finish()
        first = group[0].node
        params = [Param(in_name, "int")]
        params += [Param(a, _arg_annotation(first, a, d)) for a, d in args if d is REQUIRED]
        params += [Param(a, _arg_annotation(first, a, d), literal(d, first)) for a, d in args if d is not REQUIRED]
        params += [Param(f, "bool", "False") for f in b.flags]
        needs = sorted(b.needs)
        params += [Param(n, _annotation(group[0].env[n]), keyword_only=True) for n in needs]
        params += [Param(x, _annotation(next(iter(v.values()))), keyword_only=True) for x, v in b.extras.items()]
        view.params = params
        self.classes.append(view)
        return ClassInfo(view=view, in_name=in_name, args=args, index={id(it.node): it.inst for it in group},
                         flags=b.flags, needs=needs, extras=b.extras, out_sym=out_sym,
                         instances=[it.node for it in group], envs={id(it.node): it.env for it in group})

    def instance_env(self, info: ClassInfo, node: Node) -> dict[str, Any]:
        return info.envs[id(node)]

    def call_arg(self, node: Node, arg: str) -> Any:
        """The block argument as written at the call site (``$expressions`` kept), or None."""
        raw: Any = None
        if arg in node.raw:
            raw = node.raw[arg]
        elif isinstance(node.raw.get("args"), dict) and arg in node.raw["args"]:
            raw = node.raw["args"][arg]
        else:
            parent = self.parent.get(id(node))
            if parent is not None and parent.op == "stage":
                first = parent.raw.get("first") if node.name == "0" else None
                if isinstance(first, dict) and arg in first:
                    raw = first[arg]
                elif isinstance(parent.raw.get("args"), dict) and arg in parent.raw["args"]:
                    raw = parent.raw["args"][arg]
        if raw is None:
            return None
        try:
            return E.parse(raw)
        except E.Unknown:
            return None

    # ------------------------------------------------------- fixed weights
    def fixups(self, b: Builder, group: Group, ref: str) -> list[Line]:
        node = group[0].node
        lines: list[Line] = []
        for k, t in enumerate(node.params):
            target = f"{ref}.{t.key}"
            if t.init.kind == "fixed":
                values = t.init.values
                if any(it.node.params[k].init.values != values for it in group):
                    raise SpecError("the torch backend needs fixed weights to be equal in every instance "
                                    "of a block", node.pos)
                const = self.constant(b, node, t.key, values)
                self.helpers.add("assign")
                lines.append(Line(0, f"assign({target}, {const}, trainable={t.trainable!r})"))
            elif t.init.kind == "constant" and node.op in ("conv", "linear"):  # torch's default is uniform
                self.helpers.add("assign")
                value = E.source(E.const(float(t.init.value)))
                lines.append(Line(0, f"assign({target}, {value}, trainable={t.trainable!r})"))
            elif not t.trainable:
                lines.append(Line(0, f"{target}.requires_grad_(False)"))
        return lines

    def constant(self, b: Builder, node: Node, key: str, values: Any) -> str:
        _check_numbers(values, node)
        hint = node.path if b is self.root_builder else f"{b.view.name}_{node.name}"
        name = self.const_names.take(N.upper(f"{hint}_{key}"))
        self.constants.append((name, _plain(values)))
        return name


def input_sym(b: Builder, group: Group, first: Any) -> Sym:
    shape = group[0].node.input_shape
    cands = [first, *[None] * (len(shape) - 1)]
    return [b.resolve(c, [it.node.input_shape[k] for it in group], group, None) for k, c in enumerate(cands)]


def signature(node: Node, shortcuts: bool = True, top: bool = True) -> Any:
    """Structure that one class must share: ops, names, ranks, layouts; not values. ``shortcuts=False``
    ignores residual shortcuts (a projection only some instances have becomes a constructor flag)."""
    a = node.attrs
    head = (node.op, None if top else node.name, len(node.input_shape), a.get("over"),
            a.get("weights") is None, tuple(t.trainable for t in node.params),
            node.block.kind if node.block else None)
    kids = tuple(signature(c, shortcuts, False) for c in node.children)
    branches: list[Any] = []
    for k, branch in enumerate(node.branches):
        if node.op == "residual" and k == 1 and not shortcuts:
            branches.append("shortcut")
        else:
            branches.append(tuple(signature(c, shortcuts, False) for c in branch))
    return (head, kids, tuple(branches))


def block_args(node: Node) -> list[tuple[str, Any]]:
    """The block's arguments as (name, default or REQUIRED): required first, then defaulted, each in
    definition order."""
    assert node.block is not None
    definition = node.block.definition
    declared = getattr(definition, "args", None)
    if isinstance(definition, dict):
        declared = definition.get("args")
    if not isinstance(declared, dict):
        declared = {name: REQUIRED for name in node.block.args}
    out = []
    for name, spec in declared.items():
        out.append((name, REQUIRED if _is_type(spec) else spec))
    return [x for x in out if x[1] is REQUIRED] + [x for x in out if x[1] is not REQUIRED]


def _is_type(spec: Any) -> bool:
    return isinstance(spec, type) or spec in ("int", "float", "bool", "str") or spec is None


def _arg_annotation(node: Node, arg: str, default: Any) -> str:
    assert node.block is not None
    declared = getattr(node.block.definition, "args", None)
    spec = declared.get(arg) if isinstance(declared, dict) else None
    if isinstance(spec, type):
        return spec.__name__
    if spec in ("int", "float", "bool", "str"):
        return str(spec)
    return _annotation(default if default is not REQUIRED else node.block.args[arg])


def _annotation(value: Any) -> str:
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t.__name__
    if isinstance(value, (tuple, list)):
        return "tuple[int, ...]" if all(isinstance(v, int) for v in value) else "tuple"
    return "object"


def validate(graph: Graph) -> None:
    for node in graph.root.walk():
        if node is graph.root or node.op in ("residual", "concat"):
            continue
        N.check_layer_name(node.name, node.pos)
        if node.block is not None:
            for arg in node.block.args:
                N.check_parameter_name(arg, node.pos, f"argument of block {node.block.kind!r}")
            N.check_identifier(node.block.kind, node.pos, "block kind")


def literal(value: Any, node: Node) -> str:
    """A default value as Python source: literals only (numbers, booleans, strings, tuples of them)."""
    try:
        return E.source(E.const(value))
    except E.Unknown:
        raise SpecError(f"the torch backend cannot write {type(value).__name__} value {value!r} as a "
                        "constructor default", node.pos) from None


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
