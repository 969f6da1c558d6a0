"""Open buffers and their analyses, kept fresh as they are typed, without the protocol.

A change to a buffer starts its analysis :attr:`Documents.debounce` seconds after the last change (a burst
of changes is analysed once); the analysis runs on one worker thread, so the event loop keeps answering.
Every change bumps the buffer's *generation*; a finished analysis whose generation is no longer the
buffer's is dropped and the buffer analysed again, so a stale result never overwrites a newer one. A
change to a block library also re-analyses the open specs that import it. Requests wait for the analysis
of the buffer as it is now (:meth:`Documents.fresh`)."""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cnnspec.frontend.read import DocMemo
from cnnspec.lsp.document import DocumentAnalysis, Problem, View, analyse_document
from cnnspec.lsp.text import Span, lines_of

MEMO_FILES = 64  # loaded files the server keeps (block libraries, open buffers), the least recently used go
DEBOUNCE_S = 0.005  # `cnnspec lsp --debounce` (ms); merges the notifications of one edit, too short to feel


@dataclass
class Buffer:
    uri: str
    path: str
    text: str
    version: int | None
    generation: int = 0
    analysis: DocumentAnalysis | None = None  # of `analysed_generation`
    analysed_generation: int = -1
    analysed_version: int | None = None
    parsed: DocumentAnalysis | None = None  # the latest analysis that parsed (for completion while typing)
    task: asyncio.Task[None] | None = None
    waiting: bool = False  # the task is in its debounce sleep
    shown_elsewhere: set[str] = field(default_factory=set)  # real paths its problems were published for

    @property
    def real(self) -> str:
        return os.path.realpath(self.path)

    @property
    def fresh(self) -> bool:
        return self.analysed_generation == self.generation


Published = Callable[["Documents", Buffer, set[str]], None]


class Documents:
    """The open buffers by URI. ``on_analysed(documents, buffer, touched)`` is called on the event loop after
    each fresh analysis is stored; ``touched`` holds the real paths of other files whose problems or hints
    it may have changed."""

    def __init__(self, on_analysed: Published, debounce: float = DEBOUNCE_S) -> None:
        self.buffers: dict[str, Buffer] = {}
        self.debounce = debounce
        self.on_analysed = on_analysed
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnnspec-analysis")
        self.memo = DocMemo(limit=MEMO_FILES)  # used by the one analysis thread only
        self.stored = asyncio.Condition()

    # -- changes ---------------------------------------------------------------------------------------
    def open(self, uri: str, path: str, text: str, version: int | None) -> None:
        self.buffers[uri] = Buffer(uri, path, text, version)
        self._changed(uri)

    def change(self, uri: str, text: str, version: int | None) -> None:
        buffer = self.buffers.get(uri)
        if buffer is None:
            return
        buffer.text, buffer.version = text, version
        self._changed(uri)

    def close(self, uri: str) -> Buffer | None:
        buffer = self.buffers.pop(uri, None)
        if buffer is None:
            return None
        if buffer.task is not None:
            buffer.task.cancel()
        for other in self._dependents(buffer.real):
            self._schedule(other)
        asyncio.get_running_loop().create_task(self._wake())  # requests waiting for it return
        return buffer

    async def _wake(self) -> None:
        async with self.stored:
            self.stored.notify_all()

    def _changed(self, uri: str) -> None:
        self._schedule(self.buffers[uri])
        for other in self._dependents(self.buffers[uri].real):
            self._schedule(other)

    def _dependents(self, real: str) -> list[Buffer]:
        """The other open buffers whose latest analysis read the file ``real``."""
        return [b for b in self.buffers.values()
                if b.real != real and b.analysis is not None and real in b.analysis.files]

    def _schedule(self, buffer: Buffer) -> None:
        buffer.generation += 1
        if buffer.task is not None and not buffer.task.done():
            if not buffer.waiting:
                return  # analysing: it sees the new generation when it ends, and analyses again
            buffer.task.cancel()  # restart the debounce from this change
        buffer.task = asyncio.get_running_loop().create_task(self._analyse(buffer))

    # -- analysis --------------------------------------------------------------------------------------
    async def _analyse(self, buffer: Buffer) -> None:
        loop = asyncio.get_running_loop()
        while True:
            buffer.waiting = True
            try:
                await asyncio.sleep(self.debounce)
            finally:
                buffer.waiting = False
            generation, text, version = buffer.generation, buffer.text, buffer.version
            texts = {b.real: b.text for b in self.buffers.values()}
            result = await loop.run_in_executor(self.executor, _analyse_safely, text, buffer.path, texts,
                                                self.memo)
            if self.buffers.get(buffer.uri) is not buffer:
                return  # closed meanwhile
            if buffer.generation != generation:
                continue  # stale: the buffer (or a file it imports) changed while it was analysed
            touched = self._store(buffer, result, generation, version)
            self.on_analysed(self, buffer, touched)
            async with self.stored:
                self.stored.notify_all()
            return

    def _store(self, buffer: Buffer, result: DocumentAnalysis, generation: int, version: int | None) -> set[str]:
        before = set(buffer.analysis.files) if buffer.analysis else set()
        buffer.analysis, buffer.analysed_generation, buffer.analysed_version = result, generation, version
        if result.spec is not None:
            buffer.parsed = result
        touched = (before | set(result.files) | buffer.shown_elsewhere | set(result.elsewhere)) - {buffer.real}
        buffer.shown_elsewhere = set(result.elsewhere)
        return touched

    async def fresh(self, uri: str) -> Buffer | None:
        """The buffer once the analysis of its current text is stored (None once it is closed)."""
        async with self.stored:
            await self.stored.wait_for(lambda: uri not in self.buffers or self.buffers[uri].fresh)
        return self.buffers.get(uri)

    # -- what the features read ------------------------------------------------------------------------
    def view(self, buffer: Buffer, parsed: bool = False) -> View | None:
        """The buffer's analysis (``parsed``: the latest one that parsed), with the analyses that run its
        layers: its own, and those of the open specs that import it."""
        analysis = buffer.parsed if parsed and buffer.parsed is not None else buffer.analysis
        if analysis is None:
            return None
        runs = [analysis] if analysis.graph is not None else []
        runs += [b.analysis for b in self._dependents(buffer.real) if b.analysis is not None]
        return View(analysis, runs, {b.real: b.text for b in self.buffers.values()})

    def problems_for(self, buffer: Buffer) -> list[Problem]:
        """The buffer's own problems, then those other open specs found in it (a block library's layers
        fail only in the specs that use them), each place and message once."""
        own = list(buffer.analysis.problems) if buffer.analysis else []
        taken = {(p.span.line, p.span.start) for p in own}
        seen: set[tuple[object, str]] = set()
        for other in self.buffers.values():
            if other is buffer or other.analysis is None:
                continue
            for problem in other.analysis.elsewhere.get(buffer.real, ()):
                key = (problem.span, problem.message)
                if (problem.span.line, problem.span.start) not in taken and key not in seen:
                    seen.add(key)
                    own.append(problem)
        return own

    def settled(self, buffer: Buffer) -> bool:
        """Whether the open specs that import ``buffer`` have analysed its current text: until then a
        library's diagnostics would lack the errors its users find in it (they publish it when they finish)."""
        return all(other.fresh for other in self._dependents(buffer.real))

    def by_real(self, real: str) -> list[Buffer]:
        return [b for b in self.buffers.values() if b.real == real]

    def shutdown(self) -> None:
        for buffer in self.buffers.values():
            if buffer.task is not None:
                buffer.task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _analyse_safely(text: str, path: str, texts: dict[str, str], memo: DocMemo | None = None) -> DocumentAnalysis:
    """:func:`analyse_document`, or, should the front end fail unexpectedly, one problem saying so (with
    the traceback on the server's standard error, the editor's log): requests must not wait forever."""
    try:
        return analyse_document(text, path, texts, memo)
    except Exception as exc:  # noqa: BLE001 (a bug: reported, the server keeps serving)
        traceback.print_exc(file=sys.stderr)
        message = f"cnnspec lsp: internal error while analysing this file ({type(exc).__name__}: {exc}); please report it"
        return DocumentAnalysis(os.path.abspath(path), text, lines_of(text), None, None,
                                [Problem(Span(0, 0, 0, 0), message, "spec")])
