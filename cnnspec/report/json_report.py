"""``summary --format json``: a stable contract. Shapes exclude the batch axis; ``layers`` lists the
leaves in execution order with their state_dict-style paths. Receptive fields are whole numbers, except
after an upsampling, where a size or stride may be a fraction of an input pixel: a JSON number then
(``0.5``; ``0.3333333333333333`` for 1/3), so the document stays plain JSON numbers throughout."""

from __future__ import annotations

import json
from typing import Any

from cnnspec.ir import Graph, Node, RFValue, Shape


def rf_numbers(values: tuple[RFValue, ...]) -> list[int | float]:
    """Whole numbers as ints, fractions as the nearest float."""
    return [v if isinstance(v, int) else float(v) for v in values]


def layer_record(node: Node) -> dict[str, Any]:
    return {
        "path": node.path,
        "op": node.op,
        "output_shape": list(node.output_shape),
        "params": node.total_params,
        "macs": node.macs,
        "receptive_field": {"size": rf_numbers(node.rf_size), "stride": rf_numbers(node.rf_stride)},
    }


def summary_record(graph: Graph, min_input: Shape | None = None) -> dict[str, Any]:
    root = graph.root
    several = {} if graph.output_form == "one" else {  # only for a spec declaring `outputs:`
        "outputs": [{"name": name, "shape": list(graph.shapes[value])} for name, value in graph.outputs]}
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.output_shape),  # the first output's
        **several,
        "params": root.total_params,
        "trainable_params": root.total_trainable,
        "buffers": root.total_buffers,
        "macs": root.total_macs,
        "flops": 2 * root.total_macs,
        "activation_bytes": graph.activation_bytes,
        "smallest_input": list(min_input) if min_input is not None else None,
        "layers": [layer_record(n) for n in graph.leaves()],
    }


def to_json(graph: Graph, min_input: Shape | None = None) -> str:
    return json.dumps(summary_record(graph, min_input), indent=2)
