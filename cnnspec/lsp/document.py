"""One editor buffer analysed: the errors ``cnnspec check`` gives for it, each with the range of the key or
value at fault, and what the other features read (the loaded file, the parsed program, the analysed graph).

An error located in an imported block library is shown at the ``use:`` entry that brings the library in
(directly or through other libraries), with its place in the library as related information, and is also
kept under the library's path (:attr:`DocumentAnalysis.elsewhere`) so the server can show it in the library
when that is open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cnnspec import ir
from cnnspec.errors import SourcePos, SpecError, capped
from cnnspec.frontend import Analysis
from cnnspec.frontend.ast import SpecAst
from cnnspec.frontend.budgets import check_budgets
from cnnspec.frontend.link import Program
from cnnspec.frontend.read import MAX_BYTES, Doc, DocMemo, load_text
from cnnspec.lsp.layers import LayerIndex, index_layers
from cnnspec.lsp.pipeline import Buffers, analyse_buffer
from cnnspec.lsp.text import Span, lines_of, token_span


@dataclass(frozen=True)
class Related:
    """Where an error shown elsewhere was really found."""

    path: str  # real path
    span: Span
    message: str


@dataclass(frozen=True)
class Problem:
    """One diagnostic: ``check``'s message (and kind) at a range of the buffer."""

    span: Span
    message: str
    code: str
    related: tuple[Related, ...] = ()


@dataclass
class DocumentAnalysis:
    """A buffer (``text`` of the file at ``path``) and what the front end made of it."""

    path: str  # absolute
    text: str
    lines: list[str]
    doc: Doc | None  # None when the text is not a loadable YAML mapping
    analysis: Analysis | None
    problems: list[Problem]
    elsewhere: dict[str, list[Problem]] = field(default_factory=dict)  # real path of another file -> problems

    @property
    def graph(self) -> ir.Graph | None:
        return self.analysis.graph if self.analysis else None

    @property
    def program(self) -> Program | None:
        return self.analysis.program if self.analysis else None

    @property
    def spec(self) -> SpecAst | None:
        return self.program.spec if self.program else None

    @cached_property
    def files(self) -> tuple[str, ...]:
        """Real paths of the files read for this analysis: the buffer's, then every import."""
        if self.program is not None and self.program.files:
            return self.program.files
        return (os.path.realpath(self.path),)

    @cached_property
    def real(self) -> str:
        return os.path.realpath(self.path)

    @cached_property
    def layers(self) -> LayerIndex | None:
        """The analysed graph by source position (None without a graph)."""
        return index_layers(self.graph) if self.graph is not None else None

    def sources(self) -> Iterator[SpecAst]:
        """The parsed files of the program: the buffer's, then the imported libraries."""
        if self.program is not None:
            yield self.program.spec
            yield from self.program.libraries


def analyse_document(text: str, path: str, buffers: Buffers | None = None, memo: DocMemo | None = None
                     ) -> DocumentAnalysis:
    """The analysis of ``text``, the unsaved content of the file at ``path``; imports are read from
    ``buffers`` (real path -> text) where open, else from disk, through ``memo``."""
    path = os.path.abspath(path)
    lines = lines_of(text)
    buffers = buffers or {}
    try:
        doc = _load(text, path)
    except SpecError as exc:
        return DocumentAnalysis(path, text, lines, None, None, [_problem(exc, lines)])
    analysis = analyse_buffer(doc, path, buffers, memo)
    errors = check_errors(analysis)
    result = DocumentAnalysis(path, text, lines, doc, analysis, [])
    _place(result, errors, buffers)
    return result


def check_errors(analysis: Analysis) -> list[SpecError]:
    """What ``cnnspec check`` reports for an analysis: its errors (the first :data:`MAX_SHOWN`), or the
    spec's budgets when there are none."""
    if analysis.kind == "blocks" or analysis.graph is None or analysis.errors:
        return capped(analysis.errors)
    return check_budgets(analysis.graph)


def unique(errors: list[SpecError]) -> list[SpecError]:
    """Each error once: a mistake in a block is found once per instance of the block (``check`` prints it
    that often), an editor shows it once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for error in errors:
        key = (str(error.pos), error.message)
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out


def _load(text: str, path: str) -> Doc:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError(f"the file is {size:,} bytes; specs are limited to {MAX_BYTES:,} bytes", SourcePos(path, 1, 1))
    return load_text(text, path)


def _problem(error: SpecError, lines: list[str]) -> Problem:
    pos = error.pos or SourcePos("", 1, 1)
    return Problem(token_span(lines, pos), error.message, error.code)


def _place(result: DocumentAnalysis, errors: list[SpecError], buffers: Buffers) -> None:
    """Each error as a problem of this buffer, or of an imported file shown at its ``use:`` entry."""
    own = os.path.realpath(result.path)
    entries = _import_entries(result)
    texts: dict[str, list[str]] = {}
    for error in unique(errors):
        file = os.path.realpath(error.pos.file) if error.pos and error.pos.file else own
        if file == own or error.pos is None:
            result.problems.append(_problem(error, result.lines))
            continue
        if file not in texts:
            texts[file] = lines_of_file(file, buffers)
        there = _problem(error, texts[file])
        result.elsewhere.setdefault(file, []).append(there)
        _, use = entries.get(file) or next(iter(entries.values()), (file, SourcePos(result.path, 1, 1)))
        shown = os.path.relpath(file, os.path.dirname(own))
        message = f"{shown}:{error.pos.line}:{error.pos.col}: {error.message}"
        result.problems.append(Problem(token_span(result.lines, use), message, error.code,
                                       (Related(file, there.span, error.message),)))


def _import_entries(result: DocumentAnalysis) -> dict[str, tuple[str, SourcePos]]:
    """For every file the buffer imports (real path), the ``use:`` entry of the buffer that brings it in:
    (the import as written, its position)."""
    spec = result.spec
    if spec is None:
        return {}
    libraries = {os.path.realpath(lib.file): lib for lib in result.program.libraries} if result.program else {}
    out: dict[str, tuple[str, SourcePos]] = {}
    for rel, pos in spec.use:
        pending = [os.path.realpath(Path(result.path).parent / rel)]
        while pending:
            file = pending.pop()
            if file in out:
                continue
            out[file] = (rel, pos)
            library = libraries.get(file)
            if library is not None:
                pending.extend(os.path.realpath(Path(library.file).parent / inner) for inner, _ in library.use)
    return out


def lines_of_file(real: str, buffers: Buffers) -> list[str]:
    text = buffers.get(real)
    if text is None:
        try:
            text = Path(real).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError):
            text = ""
    return lines_of(text)


@dataclass
class View:
    """A buffer's analysis with ``runs``: the analyses whose graphs run its layers (its own; for a block
    library, those of the open specs that import it)."""

    doc: DocumentAnalysis
    runs: list[DocumentAnalysis]
    buffers: Buffers = field(default_factory=dict)  # real path -> text of every open buffer

    def lines(self, real: str) -> list[str]:
        """The lines of a file: the buffer's, an open buffer's, else the disk's."""
        if real == self.doc.real:
            return self.doc.lines
        return lines_of_file(real, self.buffers)

    @property
    def indexes(self) -> list[LayerIndex]:
        return [run.layers for run in self.runs if run.layers is not None]

    def sources(self) -> Iterator[SpecAst]:
        """Every parsed file known to the view, each once: the buffer's program, then the runs'."""
        seen: set[str] = set()
        for analysis in (self.doc, *self.runs):
            for source in analysis.sources():
                real = os.path.realpath(source.file)
                if real not in seen:
                    seen.add(real)
                    yield source
