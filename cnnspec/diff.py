"""The difference between two analysed specs: totals, and every leaf layer added, removed or changed.

Leaves are matched by their path (the ``state_dict`` prefix), counting repeated calls of a shared
stateless layer (ResNet's ``relu``) as ``path#2``, ``path#3``. A renamed layer therefore shows as one
removed and one added. A matched leaf is *changed* when its op description, output shape, parameter
count, MACs or analysed settings (``node.attrs``, listed when the op is the same) differ. Unnamed layers
are named by their position, so inserting one renumbers those after it, as it renumbers their
``state_dict`` keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnspec.ir import Graph, Node, Shape
from cnnspec.report.rows import caption, label

_LONG = 40  # longer settings values are cut


@dataclass(frozen=True)
class Layer:
    kind: str  # node.op
    op: str  # its description, e.g. "conv 3x3/2"
    output_shape: Shape
    params: int
    macs: int
    attrs: dict[str, Any]


@dataclass(frozen=True)
class LayerChange:
    key: str
    status: str  # "added" | "removed" | "changed"
    old: Layer | None
    new: Layer | None
    settings: tuple[tuple[str, str, str], ...] = ()  # (name, old, new) of each analysed setting that differs


@dataclass(frozen=True)
class Totals:
    file: str
    name: str
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable_params: int
    buffers: int
    macs: int
    activation_bytes: int


@dataclass(frozen=True)
class SpecDiff:
    old: Totals
    new: Totals
    layers: tuple[LayerChange, ...]
    unchanged: int

    def count(self, status: str) -> int:
        return sum(1 for c in self.layers if c.status == status)

    @property
    def identical(self) -> bool:
        return not self.layers and _figures(self.old) == _figures(self.new)


def diff_graphs(old: Graph, new: Graph, old_label: str, new_label: str) -> SpecDiff:
    """Compare ``old`` and ``new`` leaf by leaf (in ``new``'s order, removed leaves where they were)."""
    before, after = _keyed(old), _keyed(new)
    changes: list[LayerChange] = []
    unchanged = 0
    for key in _merged_order(list(before), list(after)):
        if key not in after:
            changes.append(LayerChange(key, "removed", before[key], None))
        elif key not in before:
            changes.append(LayerChange(key, "added", None, after[key]))
        elif before[key] != after[key]:
            same_kind = before[key].kind == after[key].kind
            settings = _settings_changes(before[key].attrs, after[key].attrs) if same_kind else ()
            changes.append(LayerChange(key, "changed", before[key], after[key], settings))
        else:
            unchanged += 1
    return SpecDiff(_totals(old, old_label), _totals(new, new_label), tuple(changes), unchanged)


def _keyed(graph: Graph) -> dict[str, Layer]:
    seen: dict[str, int] = {}
    out: dict[str, Layer] = {}
    for leaf in graph.leaves():
        name = label(leaf)
        seen[name] = seen.get(name, 0) + 1
        key = name if seen[name] == 1 else f"{name}#{seen[name]}"
        out[key] = _layer(leaf)
    return out


def _layer(node: Node) -> Layer:
    attrs = node.attrs.__dict__ if hasattr(node.attrs, "__dict__") else {}
    return Layer(node.op, caption(node), node.output_shape, node.total_params, node.total_macs, dict(attrs))


def _merged_order(before: list[str], after: list[str]) -> list[str]:
    """``after``'s keys in order, each removed key placed just before the first kept key that followed it."""
    kept = set(after)
    index = {key: i for i, key in enumerate(before)}
    out: list[str] = []
    done = 0  # keys of ``before`` up to here are placed
    for key in after:
        if key in index:
            out.extend(k for k in before[done:index[key]] if k not in kept)
            done = max(done, index[key] + 1)
        out.append(key)
    out.extend(k for k in before[done:] if k not in kept)
    return out


def _settings_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple((key, show(old.get(key)), show(new.get(key))) for key in [*old, *(k for k in new if k not in old)]
                 if old.get(key) != new.get(key))


def show(value: Any) -> str:
    """A setting's value in a few characters: ``3x3`` for int tuples, ``...`` past :data:`_LONG`."""
    text = _text(value)
    return text if len(text) <= _LONG else text[:_LONG - 3] + "..."


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))
    return "none" if value is None else str(value)


def _totals(graph: Graph, label: str) -> Totals:
    root = graph.root
    return Totals(label, graph.name, graph.input_shape, graph.output_shape, root.total_params,
                  root.total_trainable, root.total_buffers, root.total_macs,
                  graph.activation_bytes)


def _figures(t: Totals) -> tuple[Any, ...]:
    return (t.input_shape, t.output_shape, t.params, t.trainable_params, t.buffers, t.macs, t.activation_bytes)
