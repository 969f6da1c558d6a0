"""Stage 1, load: YAML text to plain Python data plus the source position of every key and value.

Built on libyaml's event stream (PyYAML's ``CParser``), not on ``yaml.safe_load``: events carry positions,
and reading them ourselves lets us refuse what ``safe_load`` silently accepts. Refused, with line and
column: YAML syntax errors, duplicate keys, anchors and aliases (an alias bomb never gets expanded),
explicit tags, non-string keys, nesting deeper than :data:`MAX_DEPTH`, files over :data:`MAX_BYTES`,
and documents that are not a single mapping. The builder is iterative, so depth cannot blow the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from cnnspec.errors import SpecError
from cnnspec.graph import SourcePos

MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024

DataPath = tuple[str | int, ...]

_EXP_FLOAT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")
_CParser: Any = getattr(yaml, "CParser", None)
_resolver = Resolver()
_constructor = SafeConstructor()


@dataclass
class Doc:
    """A loaded YAML file: its data, and where each value (``values``) and mapping key (``keys``) was
    written, both indexed by the data path (``("layers", 3, "conv", "stride")``)."""

    file: str
    data: dict[str, Any]
    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)

    def pos(self, path: DataPath, *, key: bool = False) -> SourcePos:
        """Position of the value at ``path`` (or of its key), falling back to the nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return SourcePos(self.file, *table[probe])
            if key and probe in self.values:
                return SourcePos(self.file, *self.values[probe])
            probe = probe[:-1]
        return SourcePos(self.file, *self.values.get((), (1, 1)))


def load_file(path: str | Path, display: str | None = None) -> Doc:
    """Read and load a spec file; ``display`` is the name used in messages (defaults to ``path``)."""
    name = display or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", SourcePos(name, 1, 1)) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(
            f"the file is {len(raw):,} bytes; specs are limited to {MAX_BYTES:,} bytes",
            SourcePos(name, 1, 1),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError("the file is not valid UTF-8 text", SourcePos(name, line, 1)) from None
    return load_text(text, name)


def _mark(event: Any) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def _scalar_value(event: Any) -> Any:
    if event.tag not in (None, "!"):
        raise ValueError(f"YAML tags such as `{event.tag}` are not supported")
    if not event.implicit[0]:  # quoted: always a string
        return event.value
    tag = _resolver.resolve(ScalarNode, event.value, (True, False))
    if tag.endswith(":str") and _EXP_FLOAT.fullmatch(event.value):
        return float(event.value)  # YAML 1.2 reads `1e-6` as a number; YAML 1.1 as a string
    node = ScalarNode(tag, event.value)
    return _constructor.yaml_constructors[tag](_constructor, node)


class _Builder:
    """Turns a stream of libyaml events into nested dicts/lists, recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.doc = Doc(file, {})
        self.stack: list[tuple[Any, DataPath]] = []
        self.pending_key: list[Any] = []  # per open mapping: the key waiting for its value
        self.root: Any = None
        self.documents = 0

    def error(self, message: str, where: tuple[int, int]) -> SpecError:
        return SpecError(message, SourcePos(self.file, *where))

    def feed(self, event: Any) -> None:
        where = _mark(event)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise self.error(
                "YAML anchors and aliases (&name, *name) are not supported: write the value out, "
                "or put repeated layers in a block",
                where,
            )
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.error("a spec file holds one YAML document; found a second one", where)
        elif isinstance(event, yaml.ScalarEvent):
            try:
                value = _scalar_value(event)
            except ValueError as exc:
                raise self.error(str(exc), where) from None
            self.add(value, where)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if event.tag not in (None, "!"):
                raise self.error(f"YAML tags such as `{event.tag}` are not supported", where)
            container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
            path = self.add(container, where)
            if len(self.stack) >= MAX_DEPTH:
                raise self.error(f"the spec nests deeper than {MAX_DEPTH} levels", where)
            self.stack.append((container, path))
            self.pending_key.append(None)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.stack.pop()
            self.pending_key.pop()

    def add(self, value: Any, where: tuple[int, int]) -> DataPath:
        """Place ``value`` in the innermost open container; returns its data path."""
        if not self.stack:
            self.root = value
            self.doc.values[()] = where
            return ()
        parent, parent_path = self.stack[-1]
        if isinstance(parent, list):
            path = (*parent_path, len(parent))
            parent.append(value)
            self.doc.values[path] = where
            return path
        key = self.pending_key[-1]
        if key is None:  # this value is a key
            self.check_key(value, parent, parent_path, where)
            self.pending_key[-1] = value
            self.doc.keys[(*parent_path, value)] = where
            return (*parent_path, value)
        path = (*parent_path, key)
        parent[key] = value
        self.doc.values[path] = where
        self.pending_key[-1] = None
        return path

    def check_key(self, key: Any, parent: dict[str, Any], parent_path: DataPath, where: tuple[int, int]) -> None:
        if isinstance(key, (dict, list)):
            raise self.error("mapping keys must be plain strings, not lists or mappings", where)
        if not isinstance(key, str):
            text = "null" if key is None else str(key).lower()
            hint = " (YAML reads yes/no/on/off as booleans: quote the key)" if isinstance(key, bool) else ""
            raise self.error(f"mapping keys must be strings; `{text}` is a {_kind(key)}{hint}", where)
        if key in parent:
            first = self.doc.keys[(*parent_path, key)]
            raise self.error(f"duplicate key `{key}` (first written at line {first[0]})", where)


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", type(None): "null"}.get(type(value), "value")


def load_text(text: str, file: str = "<string>") -> Doc:
    """Load YAML ``text``; ``file`` names it in error messages."""
    builder = _Builder(file)
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader if _CParser else yaml.SafeLoader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise SpecError(f"YAML syntax error: {problem}{context}", SourcePos(file, *where)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML syntax error: {exc}", SourcePos(file, 1, 1)) from None
    root = builder.root
    if root is None:
        raise SpecError(
            "the file is empty; a spec is a mapping with `name`, `input` and `layers`", SourcePos(file, 1, 1)
        )
    if not isinstance(root, dict):
        raise SpecError(
            f"a spec is a mapping with `name`, `input` and `layers`, not a {type(root).__name__}",
            builder.doc.pos(()),
        )
    builder.doc.data = root
    return builder.doc
