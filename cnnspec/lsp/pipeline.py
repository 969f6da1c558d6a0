"""The front end on editor buffers: :func:`cnnspec.frontend.analyse` with a reader that serves the files a
spec imports from the editor's open buffers where they are open (unsaved edits of a block library reach the
specs that use it as they are typed), and from disk otherwise."""

from __future__ import annotations

from collections.abc import Mapping

from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend import Analysis, analyse
from cnnspec.frontend.link import Read
from cnnspec.frontend.read import MAX_BYTES, Doc, DocMemo

Buffers = Mapping[str, str]  # real path -> the text of an open buffer


def reader(buffers: Buffers, memo: DocMemo | None = None) -> Read:
    """``link``'s file reader, serving open buffers before the disk, through ``memo`` where given."""
    memo = memo or DocMemo()

    def read(real: str, display: str) -> Doc:
        text = buffers.get(real)
        if text is None:
            return memo.load_file(real, display)
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise SpecError(f"the file is over {MAX_BYTES:,} bytes; specs are limited to {MAX_BYTES:,} bytes",
                            SourcePos(display, 1, 1))
        return memo.load_text(text, display)

    return read


def analyse_buffer(doc: Doc, path: str, buffers: Buffers, memo: DocMemo | None = None) -> Analysis:
    """:func:`cnnspec.frontend.analyse` of a loaded buffer (every error, the spec's own ``params`` and
    ``input``), its imports read through ``buffers`` and ``memo`` (the server keeps one: the block
    libraries a spec imports are then loaded once, not at every keystroke)."""
    return analyse(doc, path, read=reader(buffers, memo))
