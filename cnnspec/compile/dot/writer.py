"""DOT text from a :class:`Diagram`. Every id and attribute value is quoted and escaped; labels are
HTML-like (``<...>``) with their text HTML-escaped, so names and captions can hold any character."""

from __future__ import annotations

from html import escape

from cnnspec.compile.dot import style
from cnnspec.compile.dot.diagram import Box, Cluster, Diagram


class Html(str):
    """An HTML-like label, written between ``<`` ``>`` instead of quotes; its text is already escaped."""


def value_text(value: str) -> str:
    return f"<{value}>" if isinstance(value, Html) else quote(value)


def quote(value: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as DOT's ``\\n``."""
    text = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def attr_list(attrs: dict[str, str]) -> str:
    """``[k="v", ...]``; :class:`Html` values go in as ``k=<...>``."""
    parts = [f"{k}={value_text(v)}" for k, v in attrs.items()]
    return "[" + ", ".join(parts) + "]"


def html_label(title: str, details: list[str], bold: bool = True, left: bool = False) -> Html:
    """``<b>title</b><br/><font point-size="8">detail</font>...``; ``left`` aligns every line left."""
    head = f"<b>{escape(title)}</b>" if bold else escape(title)
    br = '<br align="left"/>' if left else "<br/>"
    tail = "".join(f'{br}<font point-size="8" color="#555555">{escape(d)}</font>' for d in details)
    return Html(head + tail + (br if left else ""))


def _box_lines(box: Box, indent: str) -> list[str]:
    attrs = style.node_attrs(box.kind, box.family, box.projection)
    if box.kind == "plus":
        attrs["label"] = "+"
    else:
        attrs["label"] = html_label(box.title, box.details, bold=box.family not in style.COMPACT_FAMILIES)
    if box.tooltip:
        attrs["tooltip"] = box.tooltip
    return [f"{indent}{quote(box.id)} {attr_list(attrs)};"]


def _cluster_lines(cluster: Cluster, indent: str) -> list[str]:
    lines = [f"{indent}subgraph {quote(cluster.id)} {{"]
    inner = indent + "  "
    attrs = style.cluster_attrs(cluster.projection)
    attrs["label"] = html_label(cluster.title, cluster.details, left=True)
    lines.extend(f"{inner}{k}={value_text(v)};" for k, v in attrs.items())
    lines.extend(_member_lines(cluster.members, inner))
    lines.append(f"{indent}}}")
    return lines


def _member_lines(members: list[Box | Cluster], indent: str) -> list[str]:
    lines: list[str] = []
    for m in members:
        lines.extend(_box_lines(m, indent) if isinstance(m, Box) else _cluster_lines(m, indent))
    return lines


def _legend_line(diagram: Diagram, rankdir: str) -> str:
    present = {b.family for b in diagram.boxes()}
    families = [f for f in style.FAMILY_COLOURS if f in present]
    edge_styles = {e.style for e in diagram.edges}
    label = Html(style.legend_label(families, "identity" in edge_styles, "projection" in edge_styles,
                               vertical=rankdir == "LR"))
    return f"  {quote('@legend')} {attr_list({'shape': 'plaintext', 'style': '', 'label': label})};"


def write_dot(diagram: Diagram, rankdir: str = "TB") -> str:
    """The whole ``digraph`` as text (ends with a newline)."""
    graph_attrs = {**style.GRAPH_ATTRS, "rankdir": rankdir, "label": html_label(diagram.title, [])}
    lines = [
        f"digraph {quote(diagram.name)} {{",
        f"  graph {attr_list(graph_attrs)};",
        f"  node {attr_list(style.NODE_DEFAULTS)};",
        f"  edge {attr_list(style.EDGE_DEFAULTS)};",
        _legend_line(diagram, rankdir),
    ]
    lines.extend(_member_lines(diagram.members, "  "))
    for e in diagram.edges:
        attrs = {"label": e.label, **style.edge_attrs(e.style)}
        lines.append(f"  {quote(e.src)} -> {quote(e.dst)} {attr_list(attrs)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
