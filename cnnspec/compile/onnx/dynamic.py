"""``--dynamic-spatial``: an ONNX graph whose input keeps its spatial sizes symbolic (``N x C x H x W``
with ``H`` and ``W`` named, not numbers), so one file runs on inputs of several sizes. Each op says in its
own module whether its lowering allows that (``Op.symbolic_axes``, from the ``dynamic_spatial`` trait); the
first that needs fixed sizes is refused, located at its layer."""

from __future__ import annotations

from cnnspec.errors import SpecError
from cnnspec.ir import Graph
from cnnspec.ops import REGISTRY

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def symbolic_axes(graph: Graph) -> dict[int, frozenset[int]]:
    """The symbolic axes (no batch axis: 1 is the first spatial one) of every value the active nodes make."""
    axes = {graph.inputs[0]: frozenset(range(1, len(graph.input_shape)))}
    for node in graph.nodes:
        if not node.active or node.training_only:  # training-only layers are not in the ONNX graph
            continue
        given = frozenset().union(*(axes[v] for v in node.inputs))
        result = REGISTRY[node.op].symbolic_axes(node.attrs, node.input_shape, given)
        if isinstance(result, str):
            raise SpecError(f"--dynamic-spatial: {node.label or node.op} needs fixed spatial sizes: {result}; "
                            "build without --dynamic-spatial for the spec's input size", node.pos)
        for value in node.outputs:
            axes[value] = result
    return axes


def input_dims(graph: Graph) -> tuple[int | str, ...]:
    """The input's sizes after the batch axis: channels, then the spatial names (``D``, ``H``, ``W``)."""
    return (graph.input_shape[0], *SPATIAL_NAMES.get(len(graph.input_shape) - 1, ()))


def output_dims(graph: Graph, axes: dict[int, frozenset[int]], value: int, name: str = "out") -> tuple[int | str, ...]:
    """An output's sizes after the batch axis: a name (``H_out``; ``H_aux`` for an output named ``aux``) where
    symbolic, the analysed size elsewhere."""
    shape = graph.shapes[value]
    symbolic = axes[value]
    names = SPATIAL_NAMES.get(len(shape) - 1, ()) if len(shape) == len(graph.input_shape) else ()
    return tuple((f"{names[k - 1]}_{name}" if names else f"axis{k}_{name}") if k in symbolic else size
                 for k, size in enumerate(shape))
