"""conv (1D/2D/3D, grouped, depthwise, fixed kernels) -> Conv, with a Pad first for non-zero padding."""

from __future__ import annotations

from cnnspec.compile.onnx.builder import Builder, Value
from cnnspec.errors import SpecError
from cnnspec.graph import Node

PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def emit_conv(b: Builder, node: Node, x: Value) -> Value:
    a = node.attrs
    pads = [int(p) for p in a["pads"]]
    if a.get("padding_mode") == "circular" and b.opset < 19:
        raise SpecError(f"layer `{node.path}`: circular padding needs ONNX opset 19 or later (Pad mode wrap); "
                        "build with --opset 19 or higher", node.pos)
    if a.get("padding_mode", "zeros") != "zeros" and any(pads):
        x = pad_spatial(b, node, x, pads, PAD_MODES[a["padding_mode"]])
        pads = [0] * len(pads)
    inputs = [x.name, b.param(node, "weight")]
    if a.get("bias"):
        inputs.append(b.param(node, "bias"))
    return b.op(
        node, "Conv", inputs, b.out_shape(node),
        kernel_shape=list(a["kernel"]), strides=list(a["stride"]), dilations=list(a["dilation"]),
        pads=pads, group=int(a["groups"]),
    )


def pad_spatial(b: Builder, node: Node, x: Value, pads: list[int], mode: str, value: float | None = None) -> Value:
    """An explicit Pad over the spatial axes (ONNX Pad lists every axis: begins, then ends); ``value``
    fills constant padding (default 0)."""
    rank = len(pads) // 2
    begin, end = pads[:rank], pads[rank:]
    inputs = [x.name, b.ints(f"{node.path}/pads", [0, 0, *begin, 0, 0, *end])]
    if value is not None:
        inputs.append(b.const(f"{node.path}/pad_value", value))
    shape = (*x.shape[:2], *(int(d) + lo + hi for d, lo, hi in zip(x.shape[2:], begin, end, strict=True)))
    return b.op(node, "Pad", inputs, shape, suffix="Pad", mode=mode)


EMITTERS = {"conv": emit_conv}
