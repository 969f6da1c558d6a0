"""Hover texts (Markdown): on a layer, its op caption, input → output shape, params, MACs and receptive
field (per instance for a layer of a block); on a block call or stage, the block's signature, where it is
defined, and the totals; on a ``$name``, its value and where it is defined."""

from __future__ import annotations

import os

from cnnspec import ir
from cnnspec.errors import SourcePos
from cnnspec.frontend import ast
from cnnspec.lsp.document import View
from cnnspec.lsp.layers import Member, Where, is_call, ran, what
from cnnspec.lsp.navigation import block_at, block_names, param_definitions, target_at
from cnnspec.lsp.text import Span, token_span
from cnnspec.ops.shape import fmt

MAX_INSTANCES = 12  # instance lines shown; the rest are counted


def hover(view: View, line: int, column: int) -> tuple[str, Span] | None:
    """The hover text at a 0-based position, and the range it is about."""
    target = target_at(view.doc, line, column, block_names(view))
    if target is not None and target.kind == "param":
        text = param_text(view, target.name, line)
        return (text, target.span) if text else None
    found = _members_at(view, line, column)
    if found is None:
        if target is not None:
            return block_signature(view, target.name), target.span
        return None
    where, members = found
    span = token_span(view.doc.lines, SourcePos(view.doc.path, where[1], where[2]))
    shown = ran(members)
    if not shown:
        return f"**{what(members[0])}**: not analysed (an error before it, or not needed by any instance)", span
    if is_call(shown[0]):
        return _call_text(view, shown), span
    return layer_text(shown, len(members)), span


def _members_at(view: View, line: int, column: int) -> tuple[Where, list[Member]] | None:
    """The written layer at the position: the last one on the line starting at or before ``column``."""
    merged: dict[Where, list[Member]] = {}
    for index in view.indexes:
        for where, members in index.on_line(view.doc.real, line + 1):
            merged.setdefault(where, []).extend(members)
    if not merged:
        return None
    ordered = sorted(merged.items(), key=lambda item: item[0][2])
    before = [item for item in ordered if item[0][2] - 1 <= column]
    return before[-1] if before else ordered[0]


def layer_text(members: list[Member], written: int) -> str:
    if len(members) == 1:
        member = members[0]
        return f"**{what(member)}** `{member.path or member.op}`\n\n{_figures(member)}"
    head = f"**{members[0].op}** in a block, {written} instances" + (f" ({len(members)} ran)" if written > len(members)
                                                                      else "")
    return f"{head}:\n\n{_instances(members)}"


def _instances(members: list[Member]) -> str:
    lines = [f"- `{m.path or m.op}` {what(m)}: {_figures(m)}" for m in members[:MAX_INSTANCES]]
    if len(members) > MAX_INSTANCES:
        lines.append(f"- … {len(members) - MAX_INSTANCES} more")
    return "\n".join(lines)


def _figures(member: Member) -> str:
    """``64x56x56 → 64x56x56 · 36,864 params · 115,605,504 MACs · RF 19x19 (stride 4x4)``."""
    if isinstance(member, ir.Node):
        inputs = " + ".join(fmt(shape) for shape in member.input_shapes) if member.input_shapes else "?"
    else:
        inputs = fmt(member.input_shape) if member.input_shape else "?"
    text = f"{inputs} → {fmt(member.output_shape)} · {member.total_params:,} params · {member.total_macs:,} MACs"
    if member.rf_size:
        text += f" · RF {fmt(member.rf_size)} (stride {fmt(member.rf_stride)})"
    return text


def _call_text(view: View, members: list[Member]) -> str:
    first = members[0]
    assert isinstance(first, ir.Scope)
    instances = [first] if first.block is not None else [m for m in first.members if isinstance(m, ir.Scope)]
    kind = instances[0].block.kind if instances and instances[0].block else ""
    head = block_signature(view, kind) if kind else f"**{what(first)}**"
    lines = [f"- `{m.path}` {what(m)}: {_figures(m)}" for m in members[:MAX_INSTANCES]]
    if first.kind == "stage" and len(members) == 1:
        lines += [f"  - `{m.path}` ({_args(m)}): {_figures(m)}" for m in instances[:MAX_INSTANCES]]
    return f"{head}\n\n" + "\n".join(lines)


def _args(scope: ir.Scope) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.block.args.items()) if scope.block else ""


def block_signature(view: View, name: str) -> str:
    """``**block `basic`**(width: int, stride: int = 1), defined at blocks/resnet.yaml:4``."""
    block = next((b for source in view.sources() for b in source.blocks if b.name == name), None)
    if block is None:
        return f"**block `{name}`** (not defined)"
    args = ", ".join(_arg(name, spec) for name, spec in block.args)
    return f"**block `{name}`**({args}), defined at {_where(view, block.pos)}"


def _arg(name: str, spec: object) -> str:
    from cnnspec.frontend.argtypes import shown

    return shown(name, spec)


def _where(view: View, pos: SourcePos) -> str:
    real = os.path.realpath(pos.file)
    shown = "line" if real == view.doc.real else os.path.relpath(real, os.path.dirname(view.doc.real)) + ":"
    return f"{shown} {pos.line}" if shown == "line" else f"{shown}{pos.line}"


def param_text(view: View, name: str, line: int) -> str | None:
    """``$width``: the block argument's type, default and values in use; a spec parameter's value."""
    block = block_at(view.doc, line)
    if block is not None and name in dict(block.args):
        spec = dict(block.args)[name]
        values = _values(view, block, name)
        used = f"; values in use: {', '.join(values)}" if values else ""
        return (f"`${name}`: argument `{_arg(name, spec)}` of block `{block.name}`, defined at "
                f"{_where(view, _arg_pos(view, block, name))}{used}")
    specs = [view.doc.spec] if view.doc.spec and view.doc.spec.layers is not None else \
        [run.spec for run in view.runs if run.spec]
    found = [(s, s.params[name]) for s in specs if name in s.params]
    if not found:
        return f"`${name}`: not defined here (not a block argument, not in the spec's `params`)"
    lines = [f"`${name}` = {value!r}: parameter of spec `{s.name}` (`--set {name}=...` overrides it), defined at "
             f"{_where(view, s.spots.pos('params', name, key=True))}" for s, value in found]
    return "\n\n".join(lines)


def _arg_pos(view: View, block: ast.BlockDef, name: str) -> SourcePos:
    for location in param_definitions(view, name, block.pos.line - 1):
        return SourcePos(location.path, location.span.line + 1, location.span.start + 1)
    return block.pos


def _values(view: View, block: ast.BlockDef, name: str) -> list[str]:
    """The values ``name`` takes in the instances of ``block`` the view's analyses made."""
    out: list[str] = []
    for index in view.indexes:
        for members in index.at.values():
            for member in members:
                for scope in _instances_of(member, block.name):
                    value = repr(scope.block.args.get(name)) if scope.block else ""
                    if value not in out:
                        out.append(value)
    return out


def _instances_of(member: Member, kind: str) -> list[ir.Scope]:
    if not isinstance(member, ir.Scope):
        return []
    scopes = [member] if member.block is not None else [m for m in member.members if isinstance(m, ir.Scope)]
    return [s for s in scopes if s.block is not None and s.block.kind == kind]
