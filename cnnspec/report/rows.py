"""The rows of a summary: one per displayed node, with depth collapsing, shared by text and markdown."""

from __future__ import annotations

from dataclasses import dataclass

from cnnspec.analyse.rules import fmt
from cnnspec.graph import Node


@dataclass(frozen=True)
class Row:
    depth: int
    path: str
    op: str
    output_shape: str
    params: int
    macs: int
    rf: str
    collapsed: bool


def _compact(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else fmt(values)


def describe(node: Node) -> str:
    """A short description of a node's op in the lecture's words (``conv 3x3/2``, ``linear 512->10``)."""
    a = node.attrs
    if node.op == "conv":
        text = f"conv {fmt(a['kernel'])}"
        text += f"/{_compact(a['stride'])}" if set(a["stride"]) != {1} else ""
        text += f" g{a['groups']}" if a["groups"] > 1 else ""
        return text + (" fixed" if a["weights"] is not None else "")
    if node.op in ("maxpool", "avgpool", "sumpool"):
        return f"{node.op} {fmt(a['kernel'])}" + (f"/{_compact(a['stride'])}" if a["stride"] != a["kernel"] else "")
    if node.op == "linear":
        return f"linear {a['in_features']}->{a['out_features']}" + ("" if a["over"] == "features" else f" ({a['over']})")
    if node.op == "block" and node.block is not None:
        return f"block {node.block.kind}"
    if node.op == "residual":
        return "residual add"
    if node.op == "layernorm" and a.get("over") == "channels":
        return "layernorm (channels)"
    return node.op


def _rf(node: Node) -> str:
    return fmt(node.rf_size) if node.rf_size else ""


def rows(root: Node, depth: int | None = None) -> list[Row]:
    """Display rows in execution order; nodes deeper than ``depth`` fold into their ancestor's row."""
    out: list[Row] = []
    for child in root.child_nodes():
        _collect(child, 1, depth, out)
    return out


def _collect(node: Node, level: int, depth: int | None, out: list[Row]) -> None:
    collapsed = not node.is_leaf and depth is not None and level >= depth
    label = node.path if node.op not in ("residual", "concat") else (node.path + " +" if node.path else "+")
    out.append(Row(level, label or node.op, describe(node), fmt(node.output_shape), node.total_params,
                   node.total_macs, _rf(node), collapsed))
    if node.is_leaf or collapsed:
        return
    for child in node.child_nodes():
        _collect(child, level + 1, depth, out)
