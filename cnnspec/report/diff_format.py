"""``cnnspec diff`` output: a text table, a Markdown pull-request comment, or JSON."""

from __future__ import annotations

import json
from typing import Any

from cnnspec.ops.shape import fmt
from cnnspec.report.spec_diff import Layer, LayerChange, SpecDiff, Totals

MARKS = {"changed": "~", "added": "+", "removed": "-"}
TOTAL_ROWS = (("params", "params"), ("trainable params", "trainable_params"), ("buffers", "buffers"),
              ("MACs", "macs"), ("activation bytes", "activation_bytes"))


def render_diff(diff: SpecDiff, form: str) -> str:
    return {"text": to_text, "markdown": to_markdown, "json": to_json}[form](diff)


# -- pieces ---------------------------------------------------------------------------------------------
def _delta(old: int, new: int) -> str:
    if old == new:
        return "0"
    percent = f" ({100 * (new - old) / old:+.2f}%)" if old else ""
    return f"{new - old:+,}{percent}"


def _totals_rows(diff: SpecDiff, quote: str = "") -> list[tuple[str, str, str, str]]:
    """Input, every output by name (``output`` for one unnamed output), then the totals."""
    old, new = diff.old, diff.new
    rows = [("input", fmt(old.input_shape), fmt(new.input_shape), "")]
    for o in diff.outputs:
        label = f"output {quote}{o.name}{quote}" if o.name else "output"
        rows.append((label, "-" if o.old is None else fmt(o.old), "-" if o.new is None else fmt(o.new),
                     "" if o.status == "unchanged" else o.status))
    for label, key in TOTAL_ROWS:
        a, b = getattr(old, key), getattr(new, key)
        rows.append((label, f"{a:,}", f"{b:,}", _delta(a, b)))
    return rows


def _cell(change: LayerChange, attr: str, arrow: str, number: bool = False) -> str:
    def value(layer: Layer) -> str:
        v = getattr(layer, attr)
        return f"{v:,}" if number else (fmt(v) if isinstance(v, tuple) else str(v))

    if change.old is None or change.new is None:
        return value(change.old or change.new)  # type: ignore[arg-type]
    a, b = value(change.old), value(change.new)
    if a == b:
        return a
    extra = f" ({getattr(change.new, attr) - getattr(change.old, attr):+,})" if number else ""
    return f"{a} {arrow} {b}{extra}"


def _counts(diff: SpecDiff) -> str:
    moved = f" ({diff.renumbered} renumbered)" if diff.renumbered else ""
    return (f"{diff.count('changed')} changed, {diff.count('added')} added, {diff.count('removed')} removed, "
            f"{diff.unchanged} unchanged{moved}")


def _key(change: LayerChange, arrow: str, quote: str = "") -> str:
    """The layer's path, ``old => new`` when it moved."""
    key = f"{quote}{change.key}{quote}"
    return f"{quote}{change.old_key}{quote} {arrow} {key}" if change.renumbered else key


def _label(t: Totals) -> str:
    return f"{t.file} ({t.name})"


# -- text -----------------------------------------------------------------------------------------------
def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            .rstrip() for r in rows]


def to_text(diff: SpecDiff) -> str:
    lines = [f"cnnspec diff: {_label(diff.old)} => {_label(diff.new)}", ""]
    lines += _table([["", "old", "new", "change"], *map(list, _totals_rows(diff))], {1, 2, 3})
    lines += ["", f"layers: {_counts(diff)}"]
    if diff.layers:
        rows = [["", "layer", "op", "output", "params", "MACs"]]
        notes: dict[int, list[str]] = {}
        for change in diff.layers:
            rows.append([MARKS[change.status], _key(change, "=>"), _cell(change, "op", "=>"),
                         _cell(change, "output_shape", "=>"), _cell(change, "params", "=>", True),
                         _cell(change, "macs", "=>", True)])
            notes[len(rows) - 1] = [f"{k}: {a} => {b}" for k, a, b in change.settings]
        table = _table(rows, {4, 5})
        lines.append(table[0])
        for index, line in enumerate(table[1:], start=1):
            lines.append(line)
            lines += [f"      {note}" for note in notes[index]]
    return "\n".join(lines) + "\n"


# -- markdown -------------------------------------------------------------------------------------------
def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def to_markdown(diff: SpecDiff) -> str:
    old, new = diff.old, diff.new
    title = f"`{new.name}`" if old.name == new.name else f"`{old.name}` → `{new.name}`"
    lines = [f"#### cnnspec diff: {title}", "", f"`{old.file}` → `{new.file}`", "",
             "| | old | new | change |", "|---|---:|---:|---:|"]
    lines += [_md_row(list(row)) for row in _totals_rows(diff, "`")]
    lines += ["", f"**Layers:** {_counts(diff)}"]
    if diff.layers:
        lines += ["", "| | layer | op | output | params | MACs | settings |", "|---|---|---|---|---:|---:|---|"]
        for c in diff.layers:
            settings = "<br>".join(f"{k}: {a} → {b}" for k, a, b in c.settings)
            lines.append(_md_row([c.status, _key(c, "→", "`"), _cell(c, "op", "→"), _cell(c, "output_shape", "→"),
                                  _cell(c, "params", "→", True), _cell(c, "macs", "→", True), settings]))
    return "\n".join(lines) + "\n"


# -- json -----------------------------------------------------------------------------------------------
def _layer_record(layer: Layer | None) -> dict[str, Any] | None:
    if layer is None:
        return None
    return {"op": layer.op, "output_shape": list(layer.output_shape), "params": layer.params, "macs": layer.macs}


def _totals_record(t: Totals) -> dict[str, Any]:
    return {"file": t.file, "name": t.name, "input_shape": list(t.input_shape), "output_shape": list(t.output_shape),
            "outputs": {name: list(shape) for name, shape in t.outputs},
            "params": t.params, "trainable_params": t.trainable_params, "buffers": t.buffers, "macs": t.macs,
            "activation_bytes": t.activation_bytes}


def to_json(diff: SpecDiff) -> str:
    record = {
        "old": _totals_record(diff.old),
        "new": _totals_record(diff.new),
        "change": {key: getattr(diff.new, key) - getattr(diff.old, key) for _, key in TOTAL_ROWS},
        "counts": {"changed": diff.count("changed"), "added": diff.count("added"),
                   "removed": diff.count("removed"), "unchanged": diff.unchanged, "renumbered": diff.renumbered},
        "outputs": [{"name": o.name, "status": o.status, "old": None if o.old is None else list(o.old),
                     "new": None if o.new is None else list(o.new)} for o in diff.outputs],
        "layers": [{"path": c.key, "old_path": c.old_key, "status": c.status, "old": _layer_record(c.old),
                    "new": _layer_record(c.new),
                    "settings": [{"name": k, "old": a, "new": b} for k, a, b in c.settings]}
                   for c in diff.layers],
    }
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"
