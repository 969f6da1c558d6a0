"""The front end on editor buffers: :func:`cnnspec.frontend.analyse`, step for step, except that the files a
spec imports are read from the editor's open buffers where they are open (unsaved edits of a block library
reach the specs that use it as they are typed), and from disk otherwise.

``analyse`` has no hook for how imports are read (``link`` has: its ``read`` argument), so its few lines
are repeated here; ``tests/test_lsp_document.py`` checks that both give the same errors, at the same
places, over the zoo and the broken-spec catalogue. A ``read`` argument on ``analyse`` would let this
module shrink to one call."""

from __future__ import annotations

from collections.abc import Mapping

from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend import Analysis, gc_paused
from cnnspec.frontend.budgets import attach_constraints
from cnnspec.frontend.elaborate import bind_params, elaborate, input_shape
from cnnspec.frontend.infer import infer
from cnnspec.frontend.link import Read, link
from cnnspec.frontend.read import MAX_BYTES, Doc, load_file, load_text
from cnnspec.frontend.syntax import parse

Buffers = Mapping[str, str]  # real path -> the text of an open buffer


def reader(buffers: Buffers) -> Read:
    """``link``'s file reader, serving open buffers before the disk."""

    def read(real: str, display: str) -> Doc:
        text = buffers.get(real)
        if text is None:
            return load_file(real, display=display)
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise SpecError(f"the file is over {MAX_BYTES:,} bytes; specs are limited to {MAX_BYTES:,} bytes",
                            SourcePos(display, 1, 1))
        return load_text(text, display)

    return read


@gc_paused
def analyse_buffer(doc: Doc, path: str, buffers: Buffers) -> Analysis:
    """:func:`cnnspec.frontend.analyse` of a loaded buffer (every error, the spec's own ``params`` and
    ``input``), its imports read through ``buffers``."""
    spec, errors = parse(doc)
    if spec is None:
        return Analysis(None, _ordered(errors, doc.file))
    program, link_errors = link(spec, path, read=reader(buffers))
    errors = errors + link_errors
    if spec.layers is None:
        return Analysis(None, _ordered(errors, doc.file), "blocks", program)
    if link_errors:
        return Analysis(None, _ordered(errors, doc.file), program=program)
    try:
        params = bind_params(spec, {})
        own = input_shape(spec, params)
    except SpecError as exc:
        return Analysis(None, _ordered([*errors, exc], doc.file), program=program)
    graph, elaboration_errors = elaborate(program, params, path)
    errors = _ordered(errors + elaboration_errors, doc.file)
    if errors:
        return Analysis(None, errors, program=program)
    graph, shape_errors = infer(graph, own)
    shape_errors += attach_constraints(graph, spec, params)
    graph.files = program.files
    return Analysis(graph, shape_errors, program=program)


def _ordered(errors: list[SpecError], file: str) -> list[SpecError]:
    def key(e: SpecError) -> tuple[bool, str, int, int]:
        pos = e.pos or SourcePos(file, 0, 0)
        return pos.file != file, pos.file, pos.line, pos.col

    return sorted(errors, key=key)
