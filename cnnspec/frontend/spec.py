"""The models of a spec file's structure: everything but the ops' own settings (``cnnspec.ops``). Layer
lists stay raw (``str`` or one-key mapping) here; ``parse`` reads each item against these models and the
op models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cnnspec.ops.base import Name

LayerItem = str | dict[str, Any]
ParamValue = bool | int | float | str
LAYERS_EXAMPLE = [{"conv": {"out": 64, "kernel": 3, "padding": 1}}, "relu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class BlockDef(_Strict):
    """A reusable block: typed arguments with optional defaults, and its layers."""

    description: str = Field("", description="What the block is.", examples=["ResNet BasicBlock"])
    args: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="Arguments: a type name (`int`, `float`, `bool`, `str`) makes it required; a value is "
        "its default.",
        examples=[{"width": "int", "stride": 1}],
    )
    layers: list[LayerItem] = Field(
        description="The block's layers, which may use `$arg` expressions.",
        examples=[[{"conv": {"out": "$width", "kernel": 3, "stride": "$stride", "padding": 1}}, "relu"]],
    )


class Constraints(_Strict):
    """Budgets checked by `cnnspec check`."""

    max_params: int | None = Field(None, description="Largest allowed parameter count.", examples=[12_000_000])
    max_macs: int | None = Field(
        None, description="Largest allowed multiply-accumulate count.", examples=[2_000_000_000]
    )
    max_activation_bytes: int | None = Field(
        None, description="Largest allowed activation memory (batch 1, float32).", examples=[64_000_000]
    )
    input_sizes: list[list[int]] | None = Field(
        None, description="Other input shapes the network must accept.", examples=[[[3, 224, 224], [3, 160, 160]]]
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


STRUCTURES: dict[str, type[BaseModel]] = {
    "sequential": SequentialSettings,
    "residual": ResidualSettings,
    "concat": ConcatSettings,
    "stage": StageSettings,
    "add": MergeSettings,
}

TENSOR_OPTIONS = ("as", "from")  # options of every layer written as a mapping: name its output, take a named input
RESERVED_TENSORS = ("previous",)  # in a merge's `of`: the layer before's output
