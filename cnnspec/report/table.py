"""``summary`` as a text table (for terminals) or a markdown table (for pull requests)."""

from __future__ import annotations

from cnnspec.ir import BYTES_PER_ELEMENT, Graph, Shape
from cnnspec.ops.shape import fmt
from cnnspec.report.rows import Row, rf_text, rows

HEADERS = ("Layer", "Op", "Output", "Params", "MACs", "RF")


def human(n: float, unit: str = "") -> str:
    """1814073344 -> '1.81 G'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def _cells(row: Row, indent: bool) -> tuple[str, ...]:
    name = ("  " * (row.depth - 1) if indent else "") + row.path + (" ..." if row.collapsed else "")
    return (name, row.op, row.output_shape, f"{row.params:,}" if row.params else "-",
            f"{row.macs:,}" if row.macs else "-", row.rf)


def _totals(graph: Graph, min_input: Shape | None, fixed_by: str | None) -> list[str]:
    root = graph.root
    frozen = root.total_params - root.total_trainable
    lines = [
        (f"Params: {root.total_params:,} (trainable {root.total_trainable:,}, frozen {frozen:,}); "
         f"buffers: {root.total_buffers:,}"),
        f"MACs: {root.total_macs:,} ({human(root.total_macs)}); FLOPs = 2 x MACs: {human(2 * root.total_macs)}",
        (f"Activation memory (forward, batch 1, float32): {human(graph.activation_bytes, 'B')}; "
         f"weights: {human(root.total_params * BYTES_PER_ELEMENT, 'B')}"),
    ]
    if graph.output_form != "one":
        lines.extend(_output_lines(graph))
    elif root.rf_size:
        lines.append(f"Receptive field of the output: {rf_text(root.rf_size)} (stride {rf_text(root.rf_stride)})")
    if min_input is not None:
        why = f" (the weights of {fixed_by} depend on the input size; `--input` re-sizes them)" if fixed_by else ""
        lines.append(f"Smallest valid input: {fmt(min_input)}{why}")
    return lines


def _output_lines(graph: Graph) -> list[str]:
    """One line per declared output: its name, shape, the layer that makes it and its receptive field."""
    makers = graph.producers()
    lines = []
    for name, value in graph.outputs:
        maker = makers.get(value)
        where = f"`{maker.path or maker.op}`" if maker is not None else "the input"
        rf = (f", receptive field {rf_text(maker.rf_size)} (stride {rf_text(maker.rf_stride)})"
              if maker is not None and maker.rf_size else "")
        training = " (training only)" if maker is not None and maker.training_only else ""
        lines.append(f"Output {name}: {fmt(graph.shapes[value])} from {where}{rf}{training}")
    return lines


def outputs_text(graph: Graph) -> str:
    """``output 10`` for one output; ``outputs out 21x224x224, aux 21x224x224`` for several."""
    if graph.output_form == "one":
        return f"output {fmt(graph.output_shape)}"
    return "outputs " + ", ".join(f"{name} {fmt(graph.shapes[value])}" for name, value in graph.outputs)


def text(graph: Graph, depth: int | None = None, min_input: Shape | None = None, fixed_by: str | None = None) -> str:
    table = [HEADERS] + [_cells(r, True) for r in rows(graph.root, depth)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
    right = {3, 4}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(HEADERS))
    head = f"{graph.name}  ({graph.source})  input {fmt(graph.input_shape)} -> {outputs_text(graph)}"
    body = [line(r) for r in table[1:]]
    return "\n".join([head, rule, line(HEADERS), rule, *body, rule, *_totals(graph, min_input, fixed_by)]) + "\n"


def markdown(graph: Graph, depth: int | None = None, min_input: Shape | None = None,
             fixed_by: str | None = None) -> str:
    out = [f"### {graph.name}: input {fmt(graph.input_shape)} -> {outputs_text(graph)}", "",
           "| " + " | ".join(HEADERS) + " |", "|---|---|---|---:|---:|---|"]
    for row in rows(graph.root, depth):
        cells = list(_cells(row, False))
        cells[0] = "&nbsp;&nbsp;" * (row.depth - 1) + f"`{cells[0]}`"
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.extend(f"- {line}" for line in _totals(graph, min_input, fixed_by))
    return "\n".join(out) + "\n"
