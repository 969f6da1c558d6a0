"""Completion: op, structure and block names where a layer goes; an op's settings (with their one-line
descriptions and defaults), a block's arguments, a stage's keys; the words a setting allows; the
``$params`` in scope (the block's arguments inside a block definition, then the spec's ``params``).

The context is read from the text around the cursor, not from the parsed file, which is rarely valid in
the middle of typing: the innermost unclosed ``{`` of the line (flow style) or the key of the nearest line
above with less indentation (block style) says whose settings are being written. Blocks and parameters come
from the latest analysis of the buffer that parsed."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Any

from cnnspec.frontend.spec import STRUCTURES
from cnnspec.frontend.syntax import LAYER_OPS
from cnnspec.lsp.document import DocumentAnalysis, View
from cnnspec.lsp.navigation import block_at
from cnnspec.ops import REGISTRY
from cnnspec.settings import REQUIRED, Model

LAYER_LISTS = frozenset({"layers", "body", "shortcut", "branches"})
STRUCTURE_SUMMARIES = {
    "sequential": "A named scope running its layers in order (nn.Sequential).",
    "residual": "out = body(x) + shortcut(x); the shortcut is the identity, a projection or a layer list.",
    "concat": "Channel concatenation of branches that all read the same input.",
    "add": "The sum of named tensors: `add: {of: [a, b]}` (`previous`: the layer before's output).",
    "mul": "The elementwise product of named tensors: `mul: {of: [a, b]}`, broadcast as PyTorch does.",
    "gate": "out = body(x) * x (squeeze-and-excitation: the body ends in [C, 1, 1]).",
    "stage": "`repeat` instances of a block, numbered 0..repeat-1 (or `prefix` + number); `first` "
             "overrides arguments of instance 0.",
}
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w]*)\s*:(.*)$")


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # op, structure, block, setting, argument, param, value
    detail: str = ""
    documentation: str = ""


def complete(view: View, lines: list[str], line: int, column: int) -> list[Item]:
    """Completions at a 0-based position of ``lines`` (the buffer as it is now); ``view.doc`` is the latest
    analysis that parsed (for its blocks and parameters)."""
    text = lines[line][:column] if 0 <= line < len(lines) else ""
    if re.search(r"\$\w*$", text):
        return params(view, line)
    flow = _flow_context(text)
    if flow is not None:
        owner, key, written = flow
        if owner is None:
            return layer_names(view)
        return values(view, owner, key, text) if key is not None else keys(view, owner, written, lines, line)
    if re.fullmatch(r"\s*-\s+\w*", text):
        parent = _parent_key(lines, line, len(text) - len(text.lstrip()))
        return layer_names(view) if parent is None or parent in LAYER_LISTS else []
    key_value = re.fullmatch(r"\s*(?:-\s+)?(\w+):\s+(\w*)", text)
    if key_value:
        owner = _parent_key(lines, line, len(text) - len(text.lstrip(" -")))
        return values(view, owner or "", key_value.group(1), text)
    if re.fullmatch(r"\s*\w*", text):
        indent = len(text) - len(text.lstrip())
        owner = _parent_key(lines, line, indent)
        return keys(view, owner, _siblings(lines, line, indent), lines, line) if owner else []
    return []


def layer_names(view: View) -> list[Item]:
    items = [Item(op, "op", Settings.summary, _example(op, Settings.example))
             for op, Settings in ((op, REGISTRY[op].Settings) for op in sorted(LAYER_OPS))]
    items += [Item(name, "structure", STRUCTURE_SUMMARIES[name]) for name in STRUCTURES]
    items += [Item(block.name, "block", f"block ({_signature(block.args)})", f"defined in {block.file}")
              for block in _blocks(view).values()]
    return items


def keys(view: View, owner: str | None, written: set[str], lines: list[str], line: int) -> list[Item]:
    """The keys ``owner``'s mapping takes, less those already ``written``."""
    if owner in LAYER_OPS:
        return [item for item in _settings(REGISTRY[owner].Settings) if item.label not in written]
    blocks = _blocks(view)
    if owner in blocks:
        found = [Item(name, "argument", _arg_detail(spec), f"argument of block `{owner}`")
                 for name, spec in blocks[owner].args]
        found.append(Item("name", "setting", "optional", "Name of the block instance (its path segment)."))
        return [item for item in found if item.label not in written]
    if owner in STRUCTURES:
        return [item for item in _settings(STRUCTURES[owner]) if item.label not in written]
    if owner in ("args", "first"):
        block = _stage_block(lines, line)
        if block in blocks:
            return [Item(name, "argument", _arg_detail(spec), f"argument of block `{block}`")
                    for name, spec in blocks[block].args if name not in written]
    return []


def values(view: View, owner: str, key: str, text: str) -> list[Item]:
    """The words a setting allows (``padding_mode: reflect``), block names after ``block:``."""
    if key == "block":
        return [Item(name, "block", f"block ({_signature(block.args)})") for name, block in _blocks(view).items()]
    model: type[Model] | None = REGISTRY[owner].Settings if owner in LAYER_OPS else STRUCTURES.get(owner)
    field = model.model_fields.get(key) if model is not None else None
    if field is None:
        return []
    words = _words(field.annotation)
    return [Item(word, "value", f"`{key}` of `{owner}`", field.description or "") for word in words]


def params(view: View, line: int) -> list[Item]:
    """``$names`` in scope at ``line``: the enclosing block's arguments, then the spec's parameters (for a
    block library, those of the open specs that use it)."""
    items: list[Item] = []
    block = block_at(view.doc, line)
    if block is not None:
        items += [Item(name, "param", _arg_detail(spec), f"argument of block `{block.name}`")
                  for name, spec in block.args]
    specs = [view.doc.spec] if view.doc.spec and view.doc.spec.layers is not None else \
        [run.spec for run in view.runs if run.spec]
    seen = {item.label for item in items}
    for spec in specs:
        for name, value in spec.params.items():
            if name not in seen:
                seen.add(name)
                items.append(Item(name, "param", f"= {value!r}", f"parameter of spec `{spec.name}`"))
    return items


# -- the text around the cursor ---------------------------------------------------------------------------
def _flow_context(text: str) -> tuple[str | None, str | None, set[str]] | None:
    """Inside a flow mapping or list on this line: (the key owning the innermost open ``{``, the key whose
    value is being typed or None, the keys written so far), ``(None, None, ...)`` for an item of a flow
    list of layers; None outside any flow collection."""
    stack: list[int] = []
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{[":
            stack.append(i)
        elif char in "}]" and stack:
            stack.pop()
    if not stack:
        return None
    start = stack[-1]
    inside = text[start + 1:]
    segment = re.split(r",", inside)[-1]
    if text[start] == "[":
        owner = re.search(r"(\w+)\s*:\s*$", text[:start])
        if owner and owner.group(1) in LAYER_LISTS and re.fullmatch(r"\s*\w*", segment):
            return None, None, set()
        return None
    owner = re.search(r"(\w+)\s*:\s*$", text[:start])
    written = set(re.findall(r"(?:^|,)\s*(\w+)\s*:", inside))
    value = re.fullmatch(r"\s*(\w+)\s*:\s*(\w*)", segment)
    if value:
        return (owner.group(1) if owner else ""), value.group(1), written
    if re.fullmatch(r"\s*\w*", segment):
        return (owner.group(1) if owner else ""), None, written
    return None


def _parent_key(lines: list[str], line: int, indent: int) -> str | None:
    """The key of the nearest line above ``line`` indented less than ``indent``, when that line opens a block
    (``key:`` with nothing after it); a list item's ``- `` counts as indentation of what follows it."""
    for above in range(line - 1, -1, -1):
        text = lines[above]
        own = len(text) - len(text.lstrip())
        if not text.strip() or text.lstrip().startswith("#") or own >= indent:
            continue
        match = _KEY_LINE.match(text)
        return match.group(2) if match and not match.group(3).split(" #")[0].strip() else None
    return None


def _siblings(lines: list[str], line: int, indent: int) -> set[str]:
    """The keys already written at ``indent`` in the block mapping around ``line``."""
    found: set[str] = set()
    for step in (-1, 1):
        at = line + step
        while 0 <= at < len(lines):
            text = lines[at]
            own = len(text) - len(text.lstrip())
            if text.strip() and own < indent:
                break
            match = _KEY_LINE.match(text)
            if match and own == indent:
                found.add(match.group(2))
            at += step
    return found


def _stage_block(lines: list[str], line: int) -> str | None:
    """The ``block:`` of the stage written around ``line``."""
    for at in range(line, max(line - 8, -1), -1):
        match = re.search(r"\bblock\s*:\s*(\w+)", lines[at])
        if match:
            return match.group(1)
        if re.match(r"\s*-\s", lines[at]) and at != line:
            break
    return None


# -- items -----------------------------------------------------------------------------------------------
def _settings(model: type[Model]) -> list[Item]:
    """The fields of a settings model, ``name`` (every layer's) last."""
    out = []
    for name, field in sorted(model.model_fields.items(), key=lambda item: item[0] == "name"):
        if field.is_required():
            detail = "required"
        else:
            default = field.get_default()
            detail = f"default {_yaml(default)}" if default is not None else "optional"
        out.append(Item(name, "setting", detail, field.description or ""))
    return out


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value is not REQUIRED else ""


def _words(annotation: Any) -> list[str]:
    """The fixed words of a field type (``Literal`` members, ``true``/``false``)."""
    if annotation is bool:
        return ["true", "false"]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    words: list[str] = []
    for arg in typing.get_args(annotation):
        words += [w for w in _words(arg) if w not in words]
    return words


def _blocks(view: View) -> dict[str, Any]:
    return {block.name: block for source in view.sources() for block in source.blocks}


def _signature(args: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{name}: {_arg_detail(spec)}" for name, spec in args)


def _arg_detail(spec: Any) -> str:
    from cnnspec.frontend.argtypes import declared, is_type, is_typed_default

    if is_type(spec):
        return f"{spec}, required"
    if is_typed_default(spec):
        kind, default = declared(spec)
        return f"{kind}, default {_yaml(default)}"
    return f"default {_yaml(spec)}"


def _example(op: str, example: dict[str, Any]) -> str:
    if not example:
        return f"- {op}"
    settings = ", ".join(f"{k}: {_yaml(v) if not isinstance(v, str) else v}" for k, v in example.items())
    return f"- {op}: {{{settings}}}"


def latest_parsed(current: DocumentAnalysis, previous: DocumentAnalysis | None) -> DocumentAnalysis:
    """The analysis to read blocks and parameters from: the current one when it parsed, else the last that did."""
    if current.spec is not None or previous is None:
        return current
    return previous
