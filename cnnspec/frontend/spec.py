"""The models of a spec file's structure: everything but the ops' own settings (``cnnspec.ops``). Layer
lists stay raw (``str`` or one-key mapping) here; ``parse`` reads each item against these models and the
op models."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from cnnspec.ops.base import Name
from cnnspec.settings import Before, Field, JsonSchema, Model, Pick, SettingError, Tag

LayerItem = str | dict[str, Any]
ParamValue = bool | int | float | str
ArgDefault = ParamValue | list[int] | list[float]
ArgType = Literal["int", "float", "bool", "str", "list[int]", "list[float]", "int | list[int]", "float | list[float]"]
LAYERS_EXAMPLE = [{"conv": {"out": 64, "kernel": 3, "padding": 1}}, "relu"]


class _Strict(Model):
    """Strict, as every settings model: no conversion, unknown keys refused."""


class TypedDefault(_Strict):
    """A block argument's default with its type written out, for a type wider than the default's own."""

    type: ArgType = Field(description="The argument's type name.", examples=["int | list[int]"])
    default: ArgDefault = Field(description="The default; it must be of that type.", examples=[1])


# a mapping is a typed default, anything else a default value: a wrong one is reported in the words of one form
ArgValue = Annotated[Annotated[ArgDefault, Tag("ArgDefault")] | Annotated[TypedDefault, Tag("TypedDefault")],
                     Pick(lambda v: "TypedDefault" if isinstance(v, dict) else "ArgDefault")]


class BlockDef(_Strict):
    """A reusable block: typed arguments with optional defaults, and its layers."""

    description: str = Field("", description="What the block is.", examples=["ResNet BasicBlock"])
    args: dict[str, ArgValue] = Field(
        default_factory=dict,
        description="Arguments: a type name (`int`, `float`, `bool`, `str`, `list[int]`, `list[float]`, "
        "`int | list[int]`, `float | list[float]`) makes it required; a value (a list for a list argument, such "
        "as a rectangular kernel `[1, 7]`) is its default; `{type: int | list[int], default: 1}` is a default "
        "of a wider type (a kernel `1` by default that may be `3` or `[1, 7]`).",
        examples=[{"width": "int", "stride": 1, "kernel": "int | list[int]",
                   "padding": {"type": "int | list[int]", "default": 0}}],
    )
    layers: list[LayerItem] = Field(
        description="The block's layers, which may use `$arg` expressions.",
        examples=[[{"conv": {"out": "$width", "kernel": 3, "stride": "$stride", "padding": 1}}, "relu"]],
    )


_COUNT_WORDS = "a positive whole number (20000000, 20_000_000 or 2e7)"
_UNDERSCORED = re.compile(r"[0-9]+(_[0-9]+)*")


def whole_count(value: Any) -> Any:
    """A budget's count as written in the docs: ``20000000``, ``20_000_000`` (a string in YAML 1.2) or ``2e7``
    (a float in YAML); anything else that is not a positive whole number is refused saying what is accepted.
    ``$expressions`` are left for ``cnnspec.frontend.budgets`` to evaluate."""
    if isinstance(value, str) and value.startswith("$"):
        return value
    number: Any = value
    if isinstance(value, str) and _UNDERSCORED.fullmatch(value):
        number = int(value.replace("_", ""))
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and "e" in value.lower():
        try:
            exact = Decimal(value)
        except InvalidOperation:
            exact = Decimal("NaN")
        # the exponent is bounded first: int(Decimal("1e999999999")) would build a billion-digit number
        whole = exact.is_finite() and exact.adjusted() < 19 and exact == exact.to_integral_value()
        number = int(exact) if whole else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise SettingError("budget_count", f"Input should be {_COUNT_WORDS}")
    return number


_COUNT_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 1},
                           {"type": "string", "pattern": "^[0-9]+(_[0-9]+)*$|^[0-9.]+[eE][+]?[0-9]+$"}]}
Count = Annotated[int, Before(whole_count), JsonSchema(_COUNT_SCHEMA)]
Size = Annotated[int | str, Before(whole_count),
                 JsonSchema({"anyOf": [*_COUNT_SCHEMA["anyOf"], {"type": "string", "pattern": "^\\$"}]})]


class Constraints(_Strict):
    """Budgets checked by `cnnspec check`. Counts may be written `20000000`, `20_000_000` or `2e7`."""

    max_params: Count | None = Field(None, description="Largest allowed parameter count.", examples=[12_000_000])
    max_macs: Count | None = Field(
        None, description="Largest allowed multiply-accumulate count.", examples=[2_000_000_000]
    )
    max_flops: Count | None = Field(
        None, description="Largest allowed FLOP count (FLOPs = 2 x MACs).", examples=[4_000_000_000]
    )
    max_activation_bytes: Count | None = Field(
        None, description="Largest allowed activation memory (batch 1, float32).", examples=[64_000_000]
    )
    min_receptive_field: list[Count] | None = Field(
        None, description="Smallest receptive field the output must have, per spatial axis (no channels), in "
        "input pixels.", examples=[[64, 64]]
    )
    input_sizes: list[list[Size]] | None = Field(
        None, description="Other input shapes the network must accept (sizes may be `$expressions` of the "
        "params).", examples=[[[3, 224, 224], [3, 160, 160]]]
    )


class SpecFile(_Strict):
    """A spec: one network."""

    name: str = Field(description="Name of the model.", examples=["resnet18"])
    description: str = Field("", description="What the model is.", examples=["ResNet-18, torchvision layout"])
    params: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="Named parameters, used as `$name` and overridable with `--set name=value`.",
        examples=[{"num_classes": 1000, "in_channels": 3}],
    )
    input: list[int | str] = Field(
        description="Input shape without the batch: [C, L], [C, H, W] or [C, D, H, W].", examples=[[3, 224, 224]]
    )
    use: list[str] = Field(default_factory=list, description="Files whose `blocks` this spec imports.",
                           examples=[["blocks/resnet.yaml"]])
    blocks: dict[str, BlockDef] = Field(default_factory=dict, description="Reusable blocks by name.",
                                        examples=[{"basic": {"args": {"width": "int"}, "layers": LAYERS_EXAMPLE}}])
    constraints: Constraints | None = Field(
        None, description="Budgets that `cnnspec check` enforces.",
        examples=[{"max_params": 12_000_000, "input_sizes": [[3, 224, 224], [3, 160, 160]]}],
    )
    layers: list[LayerItem] = Field(description="The network, run top to bottom.", examples=[LAYERS_EXAMPLE])
    outputs: dict[str, str] | list[str] | None = Field(
        None, description="Several outputs: a mapping from output names to tensors named with `as:` (the "
        "generated forward returns a dict, as torchvision's segmentation models do) or a list of tensor names "
        "(a tuple). Without it the last layer's output is the one output.",
        examples=[{"out": "out", "aux": "aux"}, ["main", "side"]])


class BlocksFile(_Strict):
    """A file imported with `use`: blocks only."""

    description: str = Field("", description="What the library holds.", examples=["ResNet blocks"])
    use: list[str] = Field(default_factory=list, description="Other block libraries this one imports.",
                           examples=[["common.yaml"]])
    blocks: dict[str, BlockDef] = Field(default_factory=dict, description="Reusable blocks by name.",
                                        examples=[{"basic": {"args": {"width": "int"}, "layers": LAYERS_EXAMPLE}}])


class SequentialSettings(_Strict):
    name: Name | None = Field(None, description="Name of the scope (a submodule).", examples=["features"])
    layers: list[LayerItem] = Field(description="The layers inside the scope.", examples=[LAYERS_EXAMPLE])


class Projection(_Strict):
    projection: Literal["auto", "always"] = Field(
        "auto", description="`auto`: only where the body changes the shape; `always`: every time."
    )
    name: Name = Field("downsample", description="Name of the projection (torchvision: downsample).")
    norm: Literal["batchnorm", "none"] = Field("batchnorm", description="Normalisation after the 1x1 conv.")


class ResidualSettings(_Strict):
    body: list[LayerItem] = Field(description="The residual branch.", examples=[LAYERS_EXAMPLE])
    shortcut: Literal["identity"] | Projection | list[LayerItem] = Field(
        "identity", description="`identity`, a projection `{projection: auto, name: downsample}`, or layers.",
        examples=["identity", {"projection": "auto", "name": "downsample"}],
    )


class GateSettings(_Strict):
    body: list[LayerItem] = Field(
        description="The gate's layers: they read the input, and their output multiplies it (broadcast as "
        "PyTorch does; a squeeze-and-excitation gate ends in [C, 1, 1]).",
        examples=[[{"global_avgpool": {"name": "avgpool"}}, {"conv": {"out": 16, "kernel": 1, "name": "fc1"}},
                   "relu", {"conv": {"out": 64, "kernel": 1, "name": "fc2"}}, "sigmoid"]],
    )


class ConcatSettings(_Strict):
    branches: list[list[LayerItem]] | None = Field(
        None, description="Layer lists, each fed the same input.", examples=[[LAYERS_EXAMPLE, []]]
    )
    of: list[str] | None = Field(
        None, description="Instead of `branches`: named tensors (`as:` names, `previous`) joined "
        "along the channels, in this order.", examples=[["previous", "skip1"]]
    )


class MergeSettings(_Strict):
    of: list[str] = Field(
        description="Named tensors (`as:` names, `previous`), at least two.", examples=[["a", "b"]]
    )


class StageSettings(_Strict):
    name: Name | None = Field(None, description="Name of the stage scope.", examples=["layer1"])
    block: str = Field(description="Name of the block to repeat.", examples=["basic"])
    repeat: int | str = Field(description="How many instances.", examples=[2])
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments for every instance.",
                                 examples=[{"width": 128}])
    first: dict[str, Any] = Field(default_factory=dict, description="Arguments overridden in instance 0.",
                                  examples=[{"stride": 2}])
    first_block: str | None = Field(None, description="The block of instance 0, if not `block`; it takes the same "
                                    "arguments (torchvision\x27s RegNet: a first block with a projection; MBConv "
                                    "without the shortcut where the stride or width changes).",
                                    examples=["xproj"])
    prefix: str | None = Field(None, description="Name the instances `prefix` + their number (`denselayer1`, "
                               "`block1-0`) instead of `0`, `1`, ...", examples=["denselayer"])
    start: int = Field(0, ge=0, description="The number of the first instance named with `prefix`.", examples=[1])


STRUCTURES: dict[str, type[Model]] = {
    "sequential": SequentialSettings,
    "residual": ResidualSettings,
    "concat": ConcatSettings,
    "stage": StageSettings,
    "add": MergeSettings,
    "mul": MergeSettings,
    "gate": GateSettings,
}

TENSOR_OPTIONS = ("as", "from", "training_only")  # options of every layer written as a mapping: name its output,
# take a named input, run it in training only (an auxiliary classifier)
# in a merge\x27s `of`: the layer before\x27s output; in `of` and `from`: the input of the block (or of the spec)
RESERVED_TENSORS = ("previous", "input")
