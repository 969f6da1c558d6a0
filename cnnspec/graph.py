"""The analysed graph: the single contract between cnnspec's front end and its backends.

``resolve`` builds a tree of :class:`Node` (blocks expanded, ``$params`` substituted, names given);
``analyse`` fills in every node's shapes, tensors, MACs and receptive field. Backends (PyTorch source,
ONNX, diagrams) read only this module's types: they never see YAML.

Shapes never include the batch dimension: ``(C, L)`` is 1D, ``(C, H, W)`` 2D, ``(C, D, H, W)`` 3D,
``(F,)`` a flat feature vector. Channel-first unless a ``permute`` moved the axes.

Tree shape
----------
* ``model`` (the root), ``sequential``, ``block`` and ``stage`` nodes are *scopes*: their ``name`` is a
  path segment and their ``children`` run one after the other.
* ``residual`` and ``concat`` nodes are *transparent*: they add no path segment. Their ``branches`` all
  receive the node's input; ``residual`` adds ``branches[0]`` (the body) and ``branches[1]`` (the shortcut,
  empty for identity); ``concat`` concatenates every branch along the channel axis (an empty branch passes
  the input through, DenseNet style).
* Every other node is a leaf (an op).

``settings`` holds an op's validated settings as the spec gave them (``$`` substituted); ``attrs`` the
normalised values ``analyse`` derived from them and the input (one entry per spatial axis, inferred
channels, explicit pads). ``raw`` is what the spec wrote, expressions included.

Paths are PyTorch ``state_dict`` prefixes: a leaf's tensor ``t`` has the key ``f"{path}.{t.key}"``, or
just ``path`` when ``t.key`` is empty (ConvNeXt's ``layer_scale``, a parameter owned by the enclosing
module). Two stateless leaves in one scope may share a name (torchvision's ResNet calls ``self.relu``
twice); they then share the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import SourcePos

Shape = tuple[int, ...]
BYTES_PER_ELEMENT = 4  # activations and weights are counted as float32

SCOPE_OPS = frozenset({"model", "sequential", "block", "stage"})
BRANCH_OPS = frozenset({"residual", "concat"})


@dataclass(frozen=True)
class Init:
    """How a tensor starts: PyTorch's default distribution, a constant, or fixed values.

    kind ``uniform``: U(-bound, bound) (PyTorch's default for conv/linear weights and biases, with
    bound = 1/sqrt(fan_in)); ``constant``: every element equals ``value``; ``fixed``: ``values`` is a
    nested list in the tensor's shape (fixed-kernel filters).
    """

    kind: str
    bound: float = 0.0
    value: float = 0.0
    values: Any = None


@dataclass(frozen=True)
class TensorSpec:
    """One parameter or buffer of a leaf."""

    key: str
    shape: Shape
    init: Init
    trainable: bool = True
    dtype: str = "float32"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class BlockCall:
    """What a ``block``/stage-repetition node was instantiated from, for backends that emit one class
    per block kind. ``args`` are the bound values (defaults filled in); ``definition`` is the block's
    validated definition (arguments, defaults and the unexpanded layer list, values still written as
    ``$expressions``)."""

    kind: str
    args: dict[str, Any]
    definition: Any


@dataclass
class Node:
    op: str
    name: str
    path: str
    pos: SourcePos
    attrs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    branches: list[list[Node]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    field_pos: dict[str, SourcePos] = field(default_factory=dict)
    block: BlockCall | None = None
    # filled by analyse
    input_shape: Shape = ()
    output_shape: Shape = ()
    params: list[TensorSpec] = field(default_factory=list)
    buffers: list[TensorSpec] = field(default_factory=list)
    macs: int = 0
    rf_size: tuple[int, ...] = ()
    rf_stride: tuple[int, ...] = ()
    # totals over the subtree (equal to the node's own figures for leaves)
    total_params: int = 0
    total_trainable: int = 0
    total_buffers: int = 0
    total_macs: int = 0
    activation_elems: int = 0

    @property
    def is_leaf(self) -> bool:
        return self.op not in SCOPE_OPS and self.op not in BRANCH_OPS

    @property
    def is_scope(self) -> bool:
        return self.op in SCOPE_OPS

    def child_nodes(self) -> Iterator[Node]:
        """Direct children in execution order (scope children, or every branch in turn)."""
        yield from self.children
        for branch in self.branches:
            yield from branch

    def walk(self) -> Iterator[Node]:
        """Pre-order traversal in execution order, this node first."""
        yield self
        for child in self.child_nodes():
            yield from child.walk()

    def leaves(self) -> Iterator[Node]:
        return (n for n in self.walk() if n.is_leaf)

    def tensor_key(self, t: TensorSpec) -> str:
        return f"{self.path}.{t.key}" if t.key else self.path


@dataclass
class Graph:
    """A resolved, analysed spec."""

    name: str
    source: str
    root: Node
    input_shape: Shape
    params: dict[str, Any]
    description: str = ""
    spec_hash: str = ""
    # budgets from the spec's `constraints`: name -> (limit, where it was written)
    constraints: dict[str, tuple[Any, SourcePos]] = field(default_factory=dict)

    @property
    def output_shape(self) -> Shape:
        return self.root.output_shape

    @property
    def activation_bytes(self) -> int:
        """Forward activation memory at batch 1 (every leaf output and merge output, float32)."""
        return self.root.activation_elems * BYTES_PER_ELEMENT

    @property
    def rank(self) -> int:
        """Number of spatial dimensions of the input (1, 2 or 3; 0 for a flat vector input)."""
        return len(self.input_shape) - 1

    def leaves(self) -> list[Node]:
        return list(self.root.leaves())

    def state_dict_keys(self) -> list[tuple[str, Shape, str]]:
        """``(key, shape, dtype)`` in PyTorch's ``state_dict`` order: a module's own parameters, then its own
        buffers, then its children in registration order. A leaf's tensor with an empty key belongs to the
        enclosing scope and therefore comes before that scope's children."""
        out: list[tuple[str, Shape, str]] = []
        _state_dict(self.root, out)
        return out


def _state_dict(scope: Node, out: list[tuple[str, Shape, str]]) -> None:
    seen: set[str] = set()
    members = list(_scope_members(scope))
    for leaf in members:  # the scope's own parameters (layer_scale-like tensors)
        if leaf.is_leaf:
            for t in leaf.params:
                if not t.key:
                    out.append((leaf.path, t.shape, t.dtype))
    for member in members:
        if member.path in seen:
            continue
        seen.add(member.path)
        if member.is_leaf:
            for t in (*member.params, *member.buffers):
                if t.key:
                    out.append((member.tensor_key(t), t.shape, t.dtype))
        else:
            _state_dict(member, out)


def _scope_members(scope: Node) -> Iterator[Node]:
    """Leaves and sub-scopes registered directly in ``scope`` (looking through transparent nodes)."""
    for child in scope.child_nodes():
        if child.op in BRANCH_OPS:
            yield from _scope_members(child)
        else:
            yield child
