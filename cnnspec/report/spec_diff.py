"""The difference between two analysed specs: totals, and every leaf layer added, removed or changed.

Leaves are paired by aligning the two sequences of (op, path) with difflib's longest-common-subsequence
matcher, the way ``diff`` aligns lines. Paths count repeated calls of a shared stateless layer (ResNet's
``relu``) as ``path#2``, ``path#3``, and are compared with their numeric segments (the positions of unnamed
layers and stage instances) left out, so inserting a layer shows as one insertion, not as every later
unnamed layer changed; the layers after it that kept their settings but moved to another index are counted
as *renumbered* (their ``state_dict`` keys change). Within a stretch that does not align, layers at the same
path are paired (an op replaced in place); the rest are removed or added. A renamed layer therefore shows as
one removed and one added. A paired leaf is *changed* when its op description, output shape, parameter
count, MACs or settings (as the spec writes them: ``out``, ``kernel``, ...) differ. Outputs are paired by
name (one unnamed output is ``""``): each is unchanged, changed (its shape), added or removed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from cnnspec.ir import Graph, Node, Shape
from cnnspec.report.rows import caption, label

_LONG = 40  # longer settings values are cut
_INDEX = re.compile(r"(?<![^.])[0-9]+(?![^.#])")  # a path segment that is a position: `features.3`, `layer1.0`
ALIGN_LIMIT = 4_000_000  # old x new leaves left after the common head and tail; beyond, paired by position


@dataclass(frozen=True)
class Layer:
    kind: str  # node.op
    op: str  # its description, e.g. "conv 3x3/2"
    output_shape: Shape
    params: int
    macs: int
    settings: dict[str, Any]


@dataclass(frozen=True)
class LayerChange:
    key: str
    status: str  # "added" | "removed" | "changed"
    old: Layer | None
    new: Layer | None
    settings: tuple[tuple[str, str, str], ...] = ()  # (name, old, new) of each setting that differs
    old_key: str | None = None  # the old path of a changed or removed layer (differs from key if renumbered)

    @property
    def renumbered(self) -> bool:
        return self.old_key is not None and self.old_key != self.key


@dataclass(frozen=True)
class OutputChange:
    name: str  # "" for a spec's one unnamed output
    status: str  # "unchanged" | "changed" | "added" | "removed"
    old: Shape | None
    new: Shape | None


@dataclass(frozen=True)
class Totals:
    file: str
    name: str
    input_shape: Shape
    output_shape: Shape  # the first output's
    params: int
    trainable_params: int
    buffers: int
    macs: int
    activation_bytes: int
    outputs: tuple[tuple[str, Shape], ...] = ()  # (name, shape) of every output, training-only ones too


@dataclass(frozen=True)
class SpecDiff:
    old: Totals
    new: Totals
    layers: tuple[LayerChange, ...]
    unchanged: int
    renumbered: int = 0  # unchanged layers whose path moved (an unnamed layer before them added or removed)
    outputs: tuple[OutputChange, ...] = ()  # every output of either spec: old's order, then the added ones

    def count(self, status: str) -> int:
        return sum(1 for c in self.layers if c.status == status)

    @property
    def identical(self) -> bool:
        return (not self.layers and _figures(self.old) == _figures(self.new)
                and all(o.status == "unchanged" for o in self.outputs))


def diff_graphs(old: Graph, new: Graph, old_label: str, new_label: str) -> SpecDiff:
    """Compare ``old`` and ``new`` leaf by leaf (in ``new``'s order, removed leaves where they were)."""
    before, after = _keyed(old), _keyed(new)
    changes: list[LayerChange] = []
    unchanged = renumbered = 0
    for i, j in align([(layer.kind, key) for key, layer in before], [(layer.kind, key) for key, layer in after]):
        if j is None:
            assert i is not None  # align pairs each entry with an entry or with None, never None with None
            changes.append(LayerChange(before[i][0], "removed", before[i][1], None, old_key=before[i][0]))
        elif i is None:
            changes.append(LayerChange(after[j][0], "added", None, after[j][1]))
        elif before[i][1] != after[j][1]:
            (old_key, a), (key, b) = before[i], after[j]
            settings = _settings_changes(a.settings, b.settings) if a.kind == b.kind else ()
            changes.append(LayerChange(key, "changed", a, b, settings, old_key))
        else:
            unchanged += 1
            renumbered += before[i][0] != after[j][0]
    before_totals, after_totals = _totals(old, old_label), _totals(new, new_label)
    return SpecDiff(before_totals, after_totals, tuple(changes), unchanged, renumbered,
                    output_changes(before_totals.outputs, after_totals.outputs))


def output_changes(old: tuple[tuple[str, Shape], ...], new: tuple[tuple[str, Shape], ...]) -> tuple[OutputChange, ...]:
    """Every output of either side paired by name, in ``old``'s order and then the ones ``new`` adds."""
    before, after = dict(old), dict(new)
    out = []
    for name, shape in old:
        if name not in after:
            out.append(OutputChange(name, "removed", shape, None))
        else:
            out.append(OutputChange(name, "unchanged" if shape == after[name] else "changed", shape, after[name]))
    out += [OutputChange(name, "added", None, shape) for name, shape in new if name not in before]
    return tuple(out)


def align(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[tuple[int | None, int | None]]:
    """Pairs of indices into ``old`` and ``new`` lists of (op, path), in order: (i, j) paired, (i, None)
    removed, (None, j) added. Aligned on (op, path without its positions); in a stretch that does not align,
    entries with the same path (positions left out) are paired, the others removed and added."""
    signature = [(op, _INDEX.sub("#", path)) for op, path in old], [(op, _INDEX.sub("#", path)) for op, path in new]
    return _matched(*signature, lambda a, b, i, j: _by_path(a, b, i, j))


def _by_path(old: list[tuple[str, str]], new: list[tuple[str, str]], i0: int, j0: int) -> list[tuple[int | None, int | None]]:
    paths = [p for _, p in old], [p for _, p in new]
    return [(None if i is None else i + i0, None if j is None else j + j0)
            for i, j in _matched(*paths, lambda a, b, i, j: [*((k, None) for k in range(i, i + len(a))),
                                                                 *((None, k) for k in range(j, j + len(b)))])]


def _matched(old: list, new: list, unmatched: Any) -> list[tuple[int | None, int | None]]:
    """Equal runs of ``old`` and ``new`` paired; each stretch between them handed to ``unmatched(old_part,
    new_part, i, j)``. The common head and tail are paired first, so identical specs cost linear time; a
    middle over :data:`ALIGN_LIMIT` is paired by position."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    a, b = old[head:len(old) - tail], new[head:len(new) - tail]
    out: list[tuple[int | None, int | None]] = [(k, k) for k in range(head)]
    if len(a) * len(b) > ALIGN_LIMIT:
        out += [(head + k if k < len(a) else None, head + k if k < len(b) else None) for k in range(max(len(a), len(b)))]
    else:
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag == "equal":
                out += [(head + i1 + k, head + j1 + k) for k in range(i2 - i1)]
            else:
                out += unmatched(a[i1:i2], b[j1:j2], head + i1, head + j1)
    out += [(len(old) - tail + k, len(new) - tail + k) for k in range(tail)]
    return out


def _keyed(graph: Graph) -> list[tuple[str, Layer]]:
    seen: dict[str, int] = {}
    out: list[tuple[str, Layer]] = []
    for leaf in graph.leaves():
        name = label(leaf)  # a merge the spec did not name: its scope's path and `+`
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", _layer(leaf)))
    return out


def _layer(node: Node) -> Layer:
    settings = node.settings.model_dump(exclude={"name"})  # as the spec names them: out, kernel, ...
    return Layer(node.op, caption(node), node.output_shape, node.total_params, node.total_macs, settings)


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
                  graph.activation_bytes, tuple(graph.output_shapes.items()))


def _figures(t: Totals) -> tuple[Any, ...]:
    return (t.input_shape, t.output_shape, t.params, t.trainable_params, t.buffers, t.macs, t.activation_bytes)
