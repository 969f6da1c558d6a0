"""Stage 1, read: YAML text to plain Python data plus the source position of every key and value.

Built on libyaml's event stream (PyYAML's ``CParser``), not on ``yaml.safe_load``: events carry positions,
and reading them ourselves lets us refuse what ``safe_load`` silently accepts. Refused, with line and
column: YAML syntax errors, duplicate keys, anchors and aliases (an alias bomb never gets expanded),
explicit tags, non-string keys, nesting deeper than :data:`MAX_DEPTH`, files over :data:`MAX_BYTES`,
and documents that are not a single mapping. The builder is iterative, so depth cannot blow the stack.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from cnnspec.errors import SourcePos, SpecError

MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024
MAX_INT = 2**63 - 1  # int64, the size type of PyTorch and ONNX
# Values (scalars) per file: each is read with its position and checked again by later stages (about 10 us
# each on the 2-core machine, then more in the parser): 1,900,000 numbers in a 3.8 MB file took 20 s and
# 500 MB in `check`. The fixed weight values a file may hold (100,000) fit with room to spare.
MAX_VALUES = 120_000

DataPath = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+")
_HEX_OCT = re.compile(r"0x[0-9a-fA-F]+|0o[0-7]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# plain words YAML 1.1 reads as null or booleans (PyYAML's implicit resolvers)
_RESERVED_WORDS = frozenset(
    {"null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
     "on", "On", "ON", "off", "Off", "OFF"}
)
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)  # libyaml: ~10x faster than pure Python
_resolver = Resolver()
_SCALAR, _MAPPING_START, _MAPPING_END = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.MappingEndEvent
_SEQUENCE_START, _SEQUENCE_END = yaml.SequenceStartEvent, yaml.SequenceEndEvent
_ANCHORS = ("YAML anchors and aliases (&name, *name) are not supported: write the value out, or put repeated "
            "layers in a block")
_constructor = SafeConstructor()


@dataclass
class Doc:
    """A loaded YAML file: its data, and where each value (``values``) and mapping key (``keys``) was
    written, both indexed by the data path (``("layers", 3, "conv", "stride")``)."""

    file: str
    data: dict[str, Any]
    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    _made: dict[tuple[int, int], SourcePos] = field(default_factory=dict, repr=False, compare=False)
    # what stage 2 made of this file, by the name it was given in messages (``syntax.parse``): a file
    # loaded once (``DocMemo``) is also parsed once
    parsed: dict[str | None, Any] = field(default_factory=dict, repr=False, compare=False)

    def pos(self, path: DataPath, *, key: bool = False) -> SourcePos:
        """Position of the value at ``path`` (or of its key), falling back to the nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return self.at(table[probe])
            if key and probe in self.values:
                return self.at(self.values[probe])
            probe = probe[:-1]
        return self.at(self.values.get((), (1, 1)))

    def at(self, where: tuple[int, int]) -> SourcePos:
        """The :class:`SourcePos` of a (line, column) of this file, made once (a block's lines are looked up
        for each of its instances)."""
        made = self._made.get(where)
        if made is None:
            made = self._made[where] = SourcePos(self.file, *where)
        return made


def load_file(path: str | os.PathLike[str], display: str | None = None) -> Doc:
    """Read and load a spec file; ``display`` is the name used in messages (defaults to ``path``)."""
    from cnnspec.errors import decode_utf8

    name = display or os.fspath(path)  # str() of another PathLike is its repr
    return load_text(decode_utf8(read_bytes(path, name), name), name)


@dataclass
class DocMemo:
    """Files loaded once: a block library that 20 specs import is read, and parsed, once per ``check`` run,
    not 20 times (it was a seventh of `check specs/`), and once per editor session of the language server,
    not at every keystroke. Keyed by the name in messages and the very bytes read, so a file that changes
    is loaded again; what is handed back is shared, so nothing may change a :class:`Doc` after it is
    loaded. With ``limit``, the least recently used files beyond it are forgotten (a long-lived server);
    one thread at a time."""

    limit: int | None = None
    docs: dict[tuple[str, bytes | str], Doc] = field(default_factory=dict)

    def load(self, raw: bytes, name: str) -> Doc:
        """``raw``, the bytes of the file shown as ``name``, loaded (:func:`load_text`)."""
        from cnnspec.errors import decode_utf8

        return self._remembered((name, raw), lambda: load_text(decode_utf8(raw, name), name))

    def load_text(self, text: str, name: str) -> Doc:
        """:func:`load_text` through the memo (an editor's buffer)."""
        return self._remembered((name, text), lambda: load_text(text, name))

    def load_file(self, path: str, name: str) -> Doc:
        """The file at ``path`` (``name`` in messages), loaded: :func:`load_file` through the memo."""
        return self.load(read_bytes(path, name), name)

    def _remembered(self, key: tuple[str, bytes | str], load: Callable[[], Doc]) -> Doc:
        doc = self.docs.pop(key, None)
        if doc is None:
            doc = load()
        self.docs[key] = doc  # the most recently used last
        if self.limit is not None and len(self.docs) > self.limit:
            del self.docs[next(iter(self.docs))]
        return doc


def read_bytes(path: str | os.PathLike[str], name: str) -> bytes:
    """The bytes of the spec file at ``path`` (``name`` in messages). Only a regular file is read (a FIFO, a
    device such as ``/dev/zero`` or a directory is refused before it is opened), and at most
    :data:`MAX_BYTES` + 1 bytes of it: a larger file is refused."""
    from cnnspec.fsutil import read_regular

    try:
        raw, size = read_regular(path, MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if "\n" in name:
            why += "; this is text with line breaks, not a file name: give the path of a spec file"
            name = "<text>"
        raise SpecError(f"cannot read the file: {why}", SourcePos(name, 1, 1)) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(
            f"the file is {max(size, len(raw)):,} bytes; specs are limited to {MAX_BYTES:,} bytes",
            SourcePos(name, 1, 1),
        )
    return raw


def _mark(event: Any) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def _tag_error(tag: str) -> str:
    shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
    return f"YAML tags such as `{shown}` are not supported: write plain values"


def _scalar_value(event: Any) -> Any:
    """A plain scalar's value by YAML 1.2's core schema (``1e-6`` and ``010`` are the numbers they look like;
    ``1:30``, ``1_000`` and dates stay strings), except that YAML 1.1's yes/no/on/off stay booleans so that
    the key ``on:`` is refused rather than silently read differently by other tools."""
    if event.tag not in (None, "!"):
        raise ValueError(_tag_error(event.tag))
    text = event.value
    if not event.implicit[0]:  # quoted: always a string
        return text
    if text and (text[0].isalpha() or text[0] == "$") and text not in _RESERVED_WORDS:
        return text  # fast path: most scalars are words (op names, settings) or expressions
    tag = _resolver.resolve(ScalarNode, text, (True, False))
    if tag.endswith((":null", ":bool")):
        return _constructor.yaml_constructors[tag](_constructor, ScalarNode(tag, text))
    if _INT.fullmatch(text):
        return _whole(text, text, 10)
    if _HEX_OCT.fullmatch(text):
        return _whole(text[2:], text, 16 if text[1] == "x" else 8)
    number = float(text) if _FLOAT.fullmatch(text) else None
    if number is not None and math.isfinite(number):
        return number
    if number is not None or _SPECIAL_FLOAT.fullmatch(text):  # 1e400, .inf, .nan
        raise ValueError(f"`{text}` is not a finite number; specs take finite numbers only")
    return text


def _whole(digits: str, text: str, base: int) -> int:
    """An integer scalar, at most :data:`MAX_INT` in size: every size becomes a PyTorch/ONNX int64, and the
    summary's figures must stay within a float (10^400 channels overflowed it)."""
    value = int(digits, base) if len(digits.lstrip("+-0")) <= 64 else MAX_INT + 1  # no 4,300-digit parse
    if abs(value) > MAX_INT:
        shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
        raise ValueError(f"`{shown}` is too large: whole numbers in a spec are at most 2^63 - 1 "
                         f"({MAX_INT:,})")
    return value


class _Builder:
    """Turns a stream of libyaml events into nested dicts/lists, recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.doc = Doc(file, {})
        self.stack: list[tuple[Any, DataPath]] = []
        self.pending_key: list[Any] = []  # per open mapping: the key waiting for its value
        self.root: Any = None
        self.documents = 0
        self.values = 0  # scalars so far (MAX_VALUES)

    def error(self, message: str, where: tuple[int, int]) -> SpecError:
        return SpecError(message, SourcePos(self.file, *where))

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind is _SCALAR:  # most events: dispatched on the exact type, the commonest first
            self.scalar(event)
        elif kind is _MAPPING_END or kind is _SEQUENCE_END:
            self.stack.pop()
            self.pending_key.pop()
        elif kind is _MAPPING_START or kind is _SEQUENCE_START:
            self.container(event, {} if kind is _MAPPING_START else [])
        elif kind is yaml.AliasEvent:
            raise self.error(_ANCHORS, _mark(event))
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.error("a spec file holds one YAML document; found a second one", _mark(event))

    def scalar(self, event: Any) -> None:
        where = _mark(event)
        if event.anchor:
            raise self.error(_ANCHORS, where)
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.error(f"the file holds more than {MAX_VALUES:,} values; specs are limited to "
                             f"{MAX_VALUES:,} (big fixed weights belong in a checkpoint: `--weights`)", where)
        try:
            value = _scalar_value(event)
        except ValueError as exc:
            raise self.error(str(exc), where) from None
        self.add(value, where, event.value)

    def container(self, event: Any, container: dict[str, Any] | list[Any]) -> None:
        where = _mark(event)
        if event.anchor:
            raise self.error(_ANCHORS, where)
        if event.tag not in (None, "!"):
            raise self.error(_tag_error(event.tag), where)
        path = self.add(container, where)
        if len(self.stack) >= MAX_DEPTH:
            raise self.error(f"the spec nests deeper than {MAX_DEPTH} levels", where)
        self.stack.append((container, path))
        self.pending_key.append(None)

    def add(self, value: Any, where: tuple[int, int], text: str | None = None) -> DataPath:
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
            self.check_key(value, text, parent, parent_path, where)
            self.pending_key[-1] = value
            self.doc.keys[(*parent_path, value)] = where
            return (*parent_path, value)
        path = (*parent_path, key)
        parent[key] = value
        self.doc.values[path] = where
        self.pending_key[-1] = None
        return path

    def check_key(self, key: Any, text: str | None, parent: dict[str, Any], parent_path: DataPath,
                  where: tuple[int, int]) -> None:
        if isinstance(key, (dict, list)):
            raise self.error("mapping keys must be plain strings, not lists or mappings", where)
        if not isinstance(key, str):
            written = text or "null"
            read = "null" if key is None else str(key).lower()
            if key is None:
                as_what = "null"
            else:
                as_what = f"the {_kind(key)} {read}" if read != written.lower() else f"a {_kind(key)}"
            raise self.error(f"mapping keys must be strings, but YAML reads `{written}` as {as_what}: quote it "
                             f"(`\"{written}\"`)", where)
        if key in parent:
            first = self.doc.keys[(*parent_path, key)]
            at = f"line {first[0]}" if first[0] != where[0] else f"column {first[1]} of this line"
            raise self.error(f"duplicate key `{key}` (first written at {at})", where)


def _article(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else f"a {_kind(value)}"


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", type(None): "null"}.get(type(value), "value")


_CLOSERS = {"`{`": "}", "`[`": "]"}
_OPENERS = {"flow mapping": "`{`", "flow sequence": "`[`", "quoted scalar": "quote"}


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def _syntax_message(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, Any]:
    """The parser's wording (libyaml's or PyYAML's, which differ), translated where students trip (tabs,
    indentation, unclosed brackets and quotes), with the mark to point at."""
    problem, context = exc.problem or exc.context or "invalid YAML", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    opener = next((word for key, word in _OPENERS.items() if key in context), None)
    if opener and exc.context_mark and ("end of stream" in problem or "<stream end>" in problem
                                        or _at_end(text, mark)):
        return f"this {opener} is never closed", exc.context_mark
    if opener in _CLOSERS and "expected ','" in problem and exc.context_mark:
        return (f"expected `,` or `{_CLOSERS[opener]}` here, inside the {opener} opened at line "
                f"{exc.context_mark.line + 1}"), mark
    if "cannot start any token" in problem and mark is not None and "\t" in _line(text, mark.line):
        return "a tab character; YAML indents with spaces only", mark
    if problem.startswith(("expected <block end>", "did not find expected key")):
        return "this line's indentation does not match the lines above it", mark
    if problem.startswith("mapping values are not allowed"):
        return "a `key: value` is not allowed here: check the indentation, or quote a value with `: `", mark
    return (f"{problem} ({context})" if context and exc.problem else problem), mark


def _at_end(text: str, mark: Any) -> bool:
    """Whether ``mark`` lies after the last non-blank character of ``text``."""
    if mark is None:
        return False
    rest = text.splitlines()[mark.line:]
    tail = "\n".join([rest[0][mark.column:], *rest[1:]]) if rest else ""
    return not tail.strip()


def _feed(builder: _Builder, loader: Any) -> None:
    """Every event of ``loader`` to ``builder`` (``yaml.parse`` without its generator)."""
    try:
        get, feed = loader.get_event, builder.feed
        while (event := get()) is not None:
            feed(event)
    finally:
        loader.dispose()


def load_text(text: str, file: str = "<string>") -> Doc:
    """Load YAML ``text``; ``file`` names it in error messages."""
    builder = _Builder(file)
    try:
        try:
            _feed(builder, (_CSafeLoader or yaml.SafeLoader)(text))
        except yaml.MarkedYAMLError as exc:
            if "maximum nesting depth" not in str(exc.problem):
                raise
            # libyaml >= 0.2.6 scans ahead and stops at 1,000 levels before MAX_DEPTH is reached; the
            # pure-Python parser reads lazily, so the same file gets the same message with either build.
            builder = _Builder(file)
            _feed(builder, yaml.SafeLoader(text))
    except yaml.MarkedYAMLError as exc:
        message, mark = _syntax_message(exc, text)
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(f"YAML syntax error: {message}", SourcePos(file, *where)) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        where = (before.count("\n") + 1, exc.position - before.rfind("\n"))
        raise SpecError(f"the file contains the control character U+{exc.character:04X}, which YAML does not "
                        "allow", SourcePos(file, *where)) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise SpecError(f"YAML syntax error: {first}", SourcePos(file, 1, 1)) from None
    root = builder.root
    if root is None:
        raise SpecError(
            "the file is empty; a spec is a mapping with `name`, `input` and `layers`", SourcePos(file, 1, 1)
        )
    if not isinstance(root, dict):
        raise SpecError(
            f"a spec is a mapping with `name`, `input` and `layers`, not {_article(root)}",
            builder.doc.pos(()),
        )
    builder.doc.data = root
    return builder.doc
