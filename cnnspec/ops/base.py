"""The op interface: everything cnnspec knows about one op, declared in one class.

An op declares
* ``name`` (what specs write) and ``family`` (conv, pool, resample, norm, activation, linear, scale,
  reshape, regularisation, merge: diagram colours and the legend group by it);
* ``Settings``: a settings model (``cnnspec.settings``) of what a spec may write, with a one-line ``summary`` and a validating
  ``example`` (the JSON Schema, "did you mean" suggestions and the registry test read them);
* ``traits``: facts the backends act on (below);
* ``infer(settings, inputs, label)``: the pure shape rule. It returns the output shape, normalised
  attributes, parameters, buffers, MACs and the window it applies for the receptive field, and refuses,
  with the reason, what PyTorch would refuse (``RuleError``);
* ``caption(attrs)``: the op in the lecture's words, for tables and diagrams (``conv 3x3, 64, stride 2``);
* ``torch(attrs, ctx)`` and ``onnx(attrs, ctx)``: its lowerings, written against the small context
  protocols below, so no op module imports torch, onnx or a backend;
* ``reference(attrs, inputs)``: a PyTorch expression (``nn.ReLU()``) computing the op, independent of the
  lowering, for the parity tests.

Counting conventions (stated once, here and in docs/conventions.md): **params** are the elements of
every parameter tensor, frozen ones included; **buffers** are counted apart; **MACs** are the
multiply-accumulates of convolutions and linear layers, bias excluded (``FlopCounterMode`` / 2);
everything else (norms, activations, pools, adds) counts 0 MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Protocol

from cnnspec.ir import Shape, TensorSpec
from cnnspec.settings import Field, Model

Name = str | int
IntOrList = int | list[int]

NAME_FIELD = Field(
    None,
    description="Name of the layer: an identifier, or a non-negative index. It becomes the dotted path, "
    "the state_dict prefix and the ONNX node name. Unnamed layers take their position in their scope.",
    examples=["conv1", "fc"],
)


class OpSettings(Model):
    """Settings shared by every op: a name. Models are strict and forbid unknown keys (``cnnspec.settings``)."""

    summary: ClassVar[str] = ""
    example: ClassVar[dict[str, Any]] = {}
    name: Name | None = NAME_FIELD


class RuleError(Exception):
    """A setting that does not fit the input; ``field`` names the setting to point at."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Traits:
    """Facts about an op that the backends act on.

    ``stateless``: no parameters or buffers (two such layers with equal settings may share a name);
    ``elementwise``: out[i] = f(in[i]) (keeps any layout: a channels-last value passes through);
    ``fresh_output``: writes a new tensor that its backward does not read, so an in-place op may follow
    it (torchvision's ``nn.ReLU(inplace=True)`` after BatchNorm, ``out += identity``);
    ``in_place``: may run in place on its input when that input is fresh and read by nothing else;
    ``pass_through``: may hand back its input tensor itself at inference (identity, dropout);
    ``layout_aware``: its ONNX lowering takes a channels-last value (see the ONNX backend);
    ``inputs``: how many inputs it takes (0: two or more, a merge);
    ``dynamic_spatial``: its ONNX lowering works for any size of its input's spatial axes, so a graph built
    with ``--dynamic-spatial`` may keep them symbolic (``False`` for ops whose lowering or weights follow the
    sizes, such as flatten or a reshape; ``Op.symbolic_axes`` refines it by the attributes);
    ``torch_module``: its PyTorch lowering is a module (``False``: an expression in ``forward``, such as
    ``out += identity``)."""

    stateless: bool = False
    elementwise: bool = False
    fresh_output: bool = False
    in_place: bool = False
    pass_through: bool = False
    layout_aware: bool = False
    inputs: int = 1
    dynamic_spatial: bool = True
    torch_module: bool = True


@dataclass(frozen=True)
class Inferred:
    """What a shape rule derives: the attributes the lowerings read, the output shape, tensors, MACs, and
    the window it applies per spatial axis for the receptive field, or ``whole`` when every output sees the
    whole input (global pooling, flatten). A window is (k, s): each output reads k neighbouring input
    positions (the effective kernel ``d(k - 1) + 1`` of a conv or pool), and neighbouring outputs are s input
    positions apart; s is a ``Fraction`` below 1 where the op upsamples (``Fraction(1, 2)``: two outputs per
    input position, as a stride-2 transposed convolution or a 2x upsampling)."""

    attrs: Any
    shape: Shape
    params: tuple[TensorSpec, ...] = ()
    buffers: tuple[TensorSpec, ...] = ()
    macs: int = 0
    window: tuple[tuple[int, int | Fraction], ...] | None = None
    whole: bool = False


# --- lowering contexts: what a backend offers an op -------------------------------------------------------

class SymVal(Protocol):
    """A value written into generated PyTorch: ``src`` is its source text, ``None`` when it equals
    PyTorch's default and is left out of the call; ``expr`` its symbolic form."""

    src: str | None
    expr: Any


Sym = list[Any]  # a symbolic shape: one expression per axis, None where none reproduces every instance


@dataclass(frozen=True)
class TorchModule:
    """``self.<name> = <constructor>`` and ``y = self.<name>(x)``; ``functional`` is the plain call
    (``torch.relu({})``) written instead for an unnamed layer, as torchvision writes ``torch.flatten(x, 1)``;
    ``in_place`` the constructor used where the backend finds running in place safe
    (``nn.ReLU(inplace=True)``)."""

    constructor: str
    shape: Sym
    functional: str | None = None
    in_place: str | None = None


@dataclass(frozen=True)
class TorchExpression:
    """No module: a forward expression over the inputs ``{0}``, ``{1}``, ... (``{inputs}``: all of them,
    comma-separated). ``in_place`` is the statement written instead when the first input may be
    overwritten (``{0} += {1}``). ``parameter`` is an ``nn.Parameter`` the enclosing module owns under the
    node's name (``{param}`` in ``forward``)."""

    forward: str
    shape: Sym
    in_place: str | None = None
    parameter: str | None = None


TorchLowering = TorchModule | TorchExpression


class TorchContext(Protocol):
    """The PyTorch backend, as one op's lowering sees it (the same node in every instance of a block)."""

    rank: int  # spatial axes of the first input (at least 1)
    input: Sym  # the first input's symbolic shape
    inputs: list[Sym]
    attrs: list[Any]  # the node's attrs in every instance

    def value(self, attr: str, setting: str | None = None, default: Any = ..., hint: str | None = None
              ) -> SymVal:
        """``attrs.<attr>`` of every instance, written as the spec wrote ``setting`` where that reproduces
        every instance, else as a number or a constructor argument; ``src`` is None when it equals
        ``default`` (PyTorch's default, left out of the call). ``hint`` names a value the backend may know
        better (``stride``, ``out`` of a projection)."""

    def derived(self, attr: str, axis: Any) -> SymVal:
        """A size the spec never writes (input channels, features): ``axis`` of the input's symbolic shape."""

    def shape(self, axes: Sym) -> Sym:
        """The output's symbolic shape: each axis kept where it reproduces every instance."""

    def product(self, axes: Sym) -> Any:
        """The symbolic product of ``axes`` (None when one is unknown)."""

    def total(self, axes: Sym) -> Any:
        """The symbolic sum of ``axes`` (None when one is unknown)."""

    def quotient(self, axis: Any, divisor: SymVal) -> Any:
        """The symbolic ``axis // divisor`` (None when ``axis`` is unknown)."""

    def stride(self, value: SymVal) -> None:
        """Record a downsampling layer's stride (a projection shortcut writes the body's stride)."""

    def helper(self, name: str, source: str) -> None:
        """Include a helper class (or function) ``name`` in the generated module, once."""

    def call(self, func: str, positional: Sequence[SymVal | str], keywords: Sequence[tuple[str, SymVal | str]]
             ) -> str:
        """``func(positional..., key=value...)``, leaving out keywords whose value is PyTorch's default."""

    def same(self, attr: str, message: str) -> Any:
        """``attrs.<attr>``, refused with ``message`` unless equal in every instance."""


class OnnxValue(Protocol):
    """A tensor in the ONNX graph being built: its name, physical shape (batch first), and whether it is
    logically channels-last (a deferred permute). Read-only: a lowering makes new values through its context."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> tuple[Any, ...]: ...
    @property
    def channels_last(self) -> bool: ...


class OnnxContext(Protocol):
    """The ONNX backend, as one node's lowering sees it."""

    opset: int
    defer_permutes: bool  # channels-last regions are emitted without their permutes

    @property
    def inputs(self) -> Sequence[OnnxValue]: ...
    output_shapes: list[Shape]  # the node's output shapes (no batch axis)

    def op(self, op_type: str, inputs: Sequence[str], shape: Sequence[Any], suffix: str | None = None,
           **attrs: Any) -> OnnxValue:
        """Add a node; its output is named after the spec node (``path`` or ``path/suffix``)."""

    def param(self, key: str, shape: Sequence[int] | None = None, transpose: bool = False) -> str:
        """The initializer of the node's tensor ``key`` (state_dict values), optionally reshaped or
        transposed."""

    def const(self, name: str, values: Any, integer: bool = False) -> str:
        """A helper constant (a number or nested list; int64 with ``integer``, else the model's float)."""

    def out_shape(self, channels_last: bool = False) -> tuple[Any, ...]:
        """The output's static shape with the batch axis; physical channel-first layout of a logically
        channels-last output with ``channels_last``."""

    def materialize(self, value: OnnxValue) -> OnnxValue:
        """``value`` in its logical layout (a deferred permute emitted as a Transpose)."""

    def relabel(self, value: OnnxValue, channels_last: bool, origin: OnnxValue | None = None) -> OnnxValue:
        """``value`` marked as logically channels-last (or not), no node emitted; a later Transpose is named
        after ``origin``'s permute (default: this node)."""

    def fail(self, message: str) -> Exception:
        """An error located at the node, to raise."""


# --- the op ---------------------------------------------------------------------------------------------

class Op:
    """One op. Subclasses set the class attributes and override the methods that apply."""

    name: ClassVar[str]
    family: ClassVar[str]
    Settings: ClassVar[type[OpSettings]]
    traits: ClassVar[Traits] = Traits()
    # settings that name a tensor (``size_of: input``): the front end adds each named tensor as a further input,
    # after the data inputs; the shape rule reads its shape, the receptive field ignores it
    tensor_settings: ClassVar[tuple[str, ...]] = ()

    def infer(self, s: Any, inputs: tuple[Shape, ...], label: str) -> Inferred:
        raise NotImplementedError

    def caption(self, a: Any) -> str:
        return self.name.replace("_", " ")

    def torch(self, a: Any, ctx: TorchContext) -> TorchLowering:
        raise NotImplementedError(f"op {self.name} has no PyTorch lowering")

    def onnx(self, a: Any, ctx: OnnxContext) -> OnnxValue:
        raise NotImplementedError(f"op {self.name} has no ONNX lowering")

    def symbolic_axes(self, a: Any, shape: Shape, axes: frozenset[int]) -> frozenset[int] | str:
        """For an ONNX graph with symbolic spatial sizes (``--dynamic-spatial``): given the axes of the input
        ``shape`` (no batch axis) whose sizes are symbolic, those of the output, or why the op needs fixed
        sizes. By default the output keeps the input's symbolic axes where ``traits.dynamic_spatial``."""
        if not axes or self.traits.dynamic_spatial:
            return axes
        return "its ONNX lowering writes the input's sizes as numbers"

    def takes_channels_last(self, a: Any) -> bool:
        """Whether the ONNX lowering reads a logically channels-last input as it is (elementwise ops, and
        layout-aware ones where the attributes say so); otherwise the backend transposes it back first."""
        return self.traits.elementwise or self.traits.layout_aware

    def reference(self, a: Any, inputs: tuple[Shape, ...]) -> str:
        """A PyTorch expression for a module (or a function) computing the op on a batch, written
        independently of the lowering, for the parity tests. In scope: ``torch``, ``nn``, ``F``
        (``torch.nn.functional``) and ``moved(module)``, which applies a module over the channel axis of a
        channel-first tensor, keeping its state_dict keys."""
        raise NotImplementedError(f"op {self.name} has no PyTorch reference")


def label(op: str, path: str) -> str:
    """How messages name a layer, as a student counts and names them: ``layer 6 (conv)``,
    ``layer `layer1.0.conv1` (conv)``."""
    if not path:
        return op
    return f"layer {path} ({op})" if path.isdigit() else f"layer `{path}` ({op})"
