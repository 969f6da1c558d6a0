"""Colours by op family, the look of each kind of drawn node and edge, and the legend."""

from __future__ import annotations

from html import escape

RANKDIRS = ("TB", "LR")  # the directions a diagram may run: top to bottom, left to right

# Legend order and fill colours (light, print-friendly, distinguishable in greyscale by shade).
FAMILY_COLOURS: dict[str, str] = {
    "conv": "#cfe2f3",
    "pool": "#d9ead3",
    "resample": "#b4d7d2",
    "norm": "#fff2cc",
    "activation": "#fce5cd",
    "linear": "#d9d2e9",
    "scale": "#ead1dc",
    "reshape": "#eeeeee",
    "regularisation": "#f8f8f8",
    "block": "#e3e3e3",
}
OTHER_COLOUR = "#ffffff"
# Families drawn small and without bold captions: they do not change shapes or hold parameters.
COMPACT_FAMILIES = frozenset({"activation", "reshape", "regularisation"})

MAIN_EDGE = "#555555"
IDENTITY_EDGE = "#888888"
PROJECTION_EDGE = "#b45f06"
CLUSTER_BORDER = "#999999"

GRAPH_ATTRS = {
    "fontname": "Helvetica", "fontsize": "11", "nodesep": "0.25", "ranksep": "0.22",
    "labelloc": "t", "labeljust": "l", "newrank": "true",
}
NODE_DEFAULTS = {
    "shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10",
    "margin": "0.08,0.03", "height": "0.3", "penwidth": "0.8", "color": "#666666",
}
EDGE_DEFAULTS = {
    "fontname": "Helvetica", "fontsize": "8", "fontcolor": "#444444", "color": MAIN_EDGE,
    "arrowsize": "0.6", "penwidth": "0.9",
}


def node_attrs(kind: str, fam: str, projection: bool) -> dict[str, str]:
    """Attributes for one drawn node. ``kind`` is ``layer``, ``block`` (a collapsed scope), ``plus``,
    ``join``, ``input`` or ``output``."""
    attrs: dict[str, str]
    if kind == "plus":
        attrs = {"shape": "circle", "style": "filled", "fillcolor": "#ffffff", "width": "0.26",
                 "height": "0.26", "fixedsize": "true", "fontsize": "12", "margin": "0"}
    elif kind == "join":
        attrs = {"shape": "box", "style": "filled", "fillcolor": "#ffffff", "height": "0.22"}
    elif kind in ("input", "output"):
        attrs = {"shape": "box", "style": "filled", "fillcolor": "#f0f0f0", "color": "#888888"}
    elif kind == "block":
        attrs = {"shape": "box3d", "style": "filled", "fillcolor": FAMILY_COLOURS["block"]}
    else:
        attrs = {"fillcolor": FAMILY_COLOURS.get(fam, OTHER_COLOUR)}
        if fam in COMPACT_FAMILIES:
            attrs.update({"fontsize": "9", "height": "0.2"})
        if fam == "regularisation":
            attrs["style"] = "rounded,filled,dashed"
    if projection:
        attrs["color"] = PROJECTION_EDGE
    return attrs


def edge_attrs(style: str) -> dict[str, str]:
    """``main`` (the data path), ``identity`` (a residual shortcut that is the input itself),
    ``projection`` (a shortcut branch with layers) or ``size`` (a tensor whose size alone is read)."""
    if style == "identity":
        return {"style": "dashed", "color": IDENTITY_EDGE, "fontcolor": IDENTITY_EDGE}
    if style == "projection":
        return {"color": PROJECTION_EDGE, "fontcolor": PROJECTION_EDGE, "penwidth": "1.3"}
    if style == "size":  # only the shape is read: dotted, and it does not stretch the layout
        return {"style": "dotted", "color": IDENTITY_EDGE, "fontcolor": IDENTITY_EDGE, "constraint": "false"}
    return {}


def cluster_attrs(projection: bool) -> dict[str, str]:
    if projection:
        return {"style": "rounded,dashed", "color": PROJECTION_EDGE, "fontcolor": PROJECTION_EDGE}
    return {"style": "rounded", "color": CLUSTER_BORDER, "fontcolor": "#333333"}


def legend_label(families: list[str], has_identity: bool, has_projection: bool, vertical: bool) -> str:
    """An HTML-like label (without the outer ``<>``): one coloured cell per op family that occurs, then
    the shortcut styles."""
    names = {"block": "collapsed block"}
    cells = [f'<td bgcolor="{FAMILY_COLOURS.get(f, OTHER_COLOUR)}">{escape(names.get(f, f))}</td>'
             for f in families]
    if has_identity:
        cells.append(f'<td><font color="{IDENTITY_EDGE}">- - &gt; identity shortcut</font></td>')
    if has_projection:
        cells.append(f'<td><font color="{PROJECTION_EDGE}">&#8212;&gt; projection shortcut</font></td>')
    rows = "".join(f"<tr>{c}</tr>" for c in cells) if vertical else f"<tr>{''.join(cells)}</tr>"
    return f'<table border="0" cellborder="1" cellspacing="2" cellpadding="2">{rows}</table>'
