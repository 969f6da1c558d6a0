"""The contract between cnnspec's front end and its backends: a graph of values.

``elaborate`` builds a :class:`Graph` from a spec (blocks expanded, ``$expressions`` evaluated, names
given, every op's settings validated); ``infer`` returns a new one with every value's shape and every
node's attributes, tensors and costs. Backends (PyTorch source, ONNX, diagrams) and reports read only
this module's types and the ops (``cnnspec.ops``): they never see YAML, the parser or validation errors.

* A :class:`Node` is one op applied to a list of input values, producing output values (integers that
  index ``Graph.shapes``). ``residual`` and ``concat`` in a spec are sugar: they become ``add`` and
  ``concat`` nodes with two or more inputs.
* A :class:`Scope` is a module in PyTorch's sense (the model, a ``sequential``, a stage, a block
  instance, a projection shortcut): its ``path`` prefixes ``state_dict`` keys, its members (nodes and
  sub-scopes) are in registration and execution order, and block instances record the block's kind and
  arguments so the torch backend can emit one class per block kind.
* Shapes never include the batch axis: ``(C, L)`` is 1D, ``(C, H, W)`` 2D, ``(C, D, H, W)`` 3D, ``(F,)``
  a flat feature vector; channel-first unless a ``permute`` moved the axes.

Paths are PyTorch ``state_dict`` prefixes: a node's tensor ``t`` has the key ``f"{path}.{t.key}"``, or
just ``path`` when ``t.key`` is empty (ConvNeXt's ``layer_scale``, a parameter of the enclosing module).
Two stateless nodes in one scope may share a name (torchvision's ResNet calls ``self.relu`` twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cnnspec.errors import SourcePos

Shape = tuple[int, ...]
RFValue = int | Fraction  # a receptive field's size or stride, in input pixels: a Fraction only after upsampling
BYTES_PER_ELEMENT = 4  # activations and weights are counted as float32


# --- symbolic values: how the spec wrote a setting (``$width * 4``), for readable generated code --------

@dataclass(frozen=True)
class Num:
    value: int | float


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // %
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    fn: str  # min, max, ceil, floor, make_divisible (frontend/expr.py)
    args: tuple[Expr, ...]


Expr = Num | Ref | Unary | BinOp | Call


def make_divisible(v: float, divisor: int) -> int:
    """``v`` rounded to the nearest multiple of ``divisor``, at least ``divisor`` and never more than 10%
    below ``v``: how MobileNet and EfficientNet round scaled widths (torchvision's ``_make_divisible``)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


Written = Any
"""A setting as the spec wrote it: a number, a word, ``None``, an :data:`Expr`, or a tuple of these."""


# --- tensors ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Init:
    """How a tensor starts: PyTorch's default distribution, a constant, or fixed values.

    kind ``uniform``: U(-bound, bound) (PyTorch's default for conv/linear weights and biases, with
    bound = 1/sqrt(fan_in)); ``constant``: every element equals ``value``; ``fixed``: ``values`` is a
    nested list in the tensor's shape (fixed-kernel filters). ``explicit``: the framework's module does not
    start with these values by itself, so a backend must write them (a fixed kernel, a zero bias)."""

    kind: str
    bound: float = 0.0
    value: float = 0.0
    values: Any = None
    explicit: bool = False


@dataclass(frozen=True)
class TensorSpec:
    """One parameter or buffer of a node."""

    key: str
    shape: Shape
    init: Init
    trainable: bool = True
    dtype: str = "float32"
    numel: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = 1
        for d in self.shape:
            n *= d
        object.__setattr__(self, "numel", n)


# --- nodes and scopes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockCall:
    """What a block instance was made from: the block's kind, its signature (name, type name, default or
    ``REQUIRED``), the bound argument values, and how each argument was written at the call site."""

    kind: str
    signature: tuple[tuple[str, str, Any], ...]
    args: Mapping[str, Any]
    written: Mapping[str, Written]  # only the arguments written at the call site


REQUIRED = object()  # a block argument without default


@dataclass(frozen=True)
class Projection:
    """A projection shortcut (torchvision's ``downsample``): a scope whose 1x1 conv (+ norm) maps the
    value ``source`` onto the shape of ``target``. ``auto``: only where the shapes differ."""

    mode: str  # "auto" | "always"
    source: int
    target: int


@dataclass(frozen=True)
class Node:
    """One op applied to ``inputs``, giving ``outputs`` (value ids).

    ``settings`` is the op's validated settings model (``$`` evaluated); ``written`` how the spec wrote
    each setting; ``field_pos`` where. ``lane`` names the variable chain the node's output continues in
    generated code (``x``, ``out``, ``identity``, ``branch``): a naming hint from the spec's structure.
    The fields after ``lane`` are filled by ``infer``: ``active`` is False for the nodes of a projection
    shortcut that ``auto`` left out."""

    op: str
    name: str
    path: str
    scope: str  # the path of the enclosing scope
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    settings: Any
    pos: SourcePos
    written: Mapping[str, Written] = field(default_factory=dict)
    field_pos: Mapping[str, SourcePos] = field(default_factory=dict)
    lane: str = ""
    label: str = ""  # how messages name it: ``layer `layer1.0.conv1` (conv)``, ``residual add``
    shortcut: bool = False  # part of a residual's shortcut branch (diagrams draw it so)
    training_only: bool = False
    late: frozenset[str] = frozenset()  # settings that read ``$channels_in``: evaluated by infer
    # filled by infer
    attrs: Any = None
    params: tuple[TensorSpec, ...] = ()
    buffers: tuple[TensorSpec, ...] = ()
    macs: int = 0
    active: bool = True
    input_shapes: tuple[Shape, ...] = ()
    output_shapes: tuple[Shape, ...] = ()
    rf_size: tuple[RFValue, ...] = ()
    rf_stride: tuple[RFValue, ...] = ()

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0] if self.input_shapes else ()

    @property
    def output_shape(self) -> Shape:
        return self.output_shapes[0] if self.output_shapes else ()

    @property
    def total_params(self) -> int:
        return sum(t.numel for t in self.params)

    @property
    def total_trainable(self) -> int:
        return sum(t.numel for t in self.params if t.trainable)

    @property
    def total_buffers(self) -> int:
        return sum(t.numel for t in self.buffers)

    @property
    def total_macs(self) -> int:
        return self.macs

    def tensor_key(self, t: TensorSpec) -> str:
        return f"{self.path}.{t.key}" if t.key else self.path

    def evolve(self, **changes: Any) -> Node:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-call field introspection (the
        front end makes one per node per analysis)."""
        new = object.__new__(Node)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


@dataclass
class Scope:
    """A module: the model, a ``sequential``, a stage, a block instance or a projection shortcut. Its
    ``members`` (nodes and scopes) are in registration and execution order. Totals are filled by
    ``infer``."""

    kind: str  # model | sequential | stage | block | projection
    name: str
    path: str
    pos: SourcePos
    members: list[Node | Scope] = field(default_factory=list)
    block: BlockCall | None = None
    projection: Projection | None = None
    lane: str = ""  # the variable chain its call writes to in the parent's generated forward
    inputs: tuple[int, ...] = ()  # values read inside and made outside, in order of first use
    outputs: tuple[int, ...] = ()  # values made inside and read outside (or graph outputs)
    # filled by infer
    active: bool = True
    input_shape: Shape = ()
    output_shape: Shape = ()
    total_params: int = 0
    total_trainable: int = 0
    total_buffers: int = 0
    total_macs: int = 0
    activation_elems: int = 0
    rf_size: tuple[RFValue, ...] = ()  # the receptive field of its output
    rf_stride: tuple[RFValue, ...] = ()

    @property
    def op(self) -> str:  # a scope is drawn and listed by its kind
        return self.kind

    def nodes(self) -> Iterator[Node]:
        """Every node under this scope, in execution order."""
        for member in self.members:
            if isinstance(member, Scope):
                yield from member.nodes()
            else:
                yield member

    def scopes(self) -> Iterator[Scope]:
        """This scope and every scope under it, pre-order."""
        yield self
        for member in self.members:
            if isinstance(member, Scope):
                yield from member.scopes()


@dataclass
class Graph:
    """A spec as a graph of values: its nodes in execution order, its scope tree, its inputs and
    outputs. ``shapes`` (value id -> shape) is empty until ``infer`` has run."""

    name: str
    source: str
    description: str
    params: dict[str, Any]
    root: Scope
    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]
    outputs: tuple[tuple[str, int], ...]  # (output name, value id); one unnamed output is ("", id)
    output_form: str = "one"  # "one" (a tensor), "dict" (`outputs:` a mapping), "tuple" (`outputs:` a list)
    input_shape: Shape = ()
    shapes: Mapping[int, Shape] = field(default_factory=dict)
    # a digest of everything that determines the network (the ONNX metadata's ``cnnspec.spec_hash``), made
    # when asked: check never asks
    digest: Callable[[], str] | None = field(default=None, compare=False, repr=False)
    # budgets from the spec's `constraints`: name -> (limit, where it was written)
    constraints: dict[str, tuple[Any, SourcePos]] = field(default_factory=dict)
    # per input_sizes item, where it was written
    constraint_items: dict[tuple[str, int], SourcePos] = field(default_factory=dict)
    elaborated: Graph | None = None  # the graph before shapes, which infer can run on again
    files: tuple[str, ...] = ()  # real paths of every file read for it: the spec, then its imports
    # the same spec analysed with some params changed (raises SpecError), set by the front end: backends ask
    # it which params their output follows without importing the front end
    variant: Callable[[Mapping[str, Any]], Graph] | None = field(default=None, compare=False, repr=False)

    @property
    def spec_hash(self) -> str:
        """16 hex digits that change whenever the spec, a block it can call, its params or input change."""
        return self.digest() if self.digest is not None else ""

    @property
    def output_shape(self) -> Shape:
        """The shape of the (first) output."""
        return self.shapes[self.outputs[0][1]] if self.outputs and self.shapes else ()

    @property
    def output_shapes(self) -> dict[str, Shape]:
        return {name: self.shapes[value] for name, value in self.outputs}

    def inference_outputs(self) -> tuple[tuple[str, int], ...]:
        """The outputs made at inference: those of ``training_only`` layers left out."""
        made = {v for node in self.nodes if node.training_only for v in node.outputs}
        return tuple((name, value) for name, value in self.outputs if value not in made)

    @property
    def activation_bytes(self) -> int:
        """Forward activation memory at batch 1 (every node's output, float32)."""
        return self.root.activation_elems * BYTES_PER_ELEMENT

    @property
    def rank(self) -> int:
        """Number of spatial dimensions of the input (1, 2 or 3; 0 for a flat vector input)."""
        return len(self.input_shape) - 1

    def leaves(self) -> list[Node]:
        """The nodes that run, in execution order (projections ``auto`` left out are not listed)."""
        return [n for n in self.nodes if n.active]

    def producers(self) -> dict[int, Node]:
        """The node that makes each value."""
        return {value: node for node in self.nodes for value in node.outputs}

    def readers(self) -> dict[int, list[Node]]:
        """The nodes that read each value, in execution order."""
        out: dict[int, list[Node]] = {}
        for node in self.nodes:
            for value in node.inputs:
                out.setdefault(value, []).append(node)
        return out

    def state_dict_keys(self) -> list[tuple[str, Shape, str]]:
        """``(key, shape, dtype)`` in PyTorch's ``state_dict`` order: a module's own parameters, then its own
        buffers, then its children in registration order. A node's tensor with an empty key belongs to the
        enclosing scope and therefore comes before that scope's children."""
        out: list[tuple[str, Shape, str]] = []
        _state_dict(self.root, out)
        return out


def training_only(member: Node | Scope) -> bool:
    """Whether ``member`` runs in training only (``training_only: true``; a scope: every node in it)."""
    if isinstance(member, Node):
        return member.training_only
    return any(True for _ in member.nodes()) and all(n.training_only for n in member.nodes())


def _state_dict(scope: Scope, out: list[tuple[str, Shape, str]]) -> None:
    if not scope.active:
        return
    members = scope.members
    for node in members:  # the scope's own parameters (layer_scale-like tensors)
        if isinstance(node, Node) and node.active:
            out.extend((node.path, t.shape, t.dtype) for t in node.params if not t.key)
    seen: set[str] = set()
    for member in members:
        if member.path in seen or not member.active:
            continue
        seen.add(member.path)
        if isinstance(member, Scope):
            _state_dict(member, out)
        else:
            out.extend((member.tensor_key(t), t.shape, t.dtype) for t in (*member.params, *member.buffers)
                       if t.key)
