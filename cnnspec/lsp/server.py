"""The protocol: pygls wiring of the features to the buffers (:mod:`cnnspec.lsp.scheduler`). Every handler
converts positions between the client's units (UTF-16 unless the client offers another encoding) and the
analysis's code points, calls one protocol-free feature module, and converts its plain data to lsprotocol
types. Imported only by ``cnnspec lsp``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace.position_codec import ServerTextPosition

from cnnspec._version import __version__
from cnnspec.lsp import actions, completion, hints, hover, navigation, symbols
from cnnspec.lsp.document import Problem, View, lines_of_file
from cnnspec.lsp.scheduler import DEBOUNCE_S, Buffer, Documents
from cnnspec.lsp.text import Span, path_to_uri, uri_to_path

COMPLETION_KINDS = {
    "op": types.CompletionItemKind.Function, "structure": types.CompletionItemKind.Struct,
    "block": types.CompletionItemKind.Class, "setting": types.CompletionItemKind.Property,
    "argument": types.CompletionItemKind.Property, "param": types.CompletionItemKind.Variable,
    "value": types.CompletionItemKind.EnumMember,
}
SYMBOL_KINDS = {"module": types.SymbolKind.Module, "layer": types.SymbolKind.Function,
                "block": types.SymbolKind.Class}
TRIGGERS = ["$", "{", ",", " ", "-"]


class CnnspecServer(LanguageServer):
    """The language server: the open buffers, their analyses, and the features."""

    def __init__(self, debounce: float = DEBOUNCE_S) -> None:
        super().__init__("cnnspec", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.debounce = debounce
        self.shut_down = False  # the client asked to shut down (then `exit` ends the process with status 0)
        self._documents: Documents | None = None

    @property
    def documents(self) -> Documents:
        if self._documents is None:  # made on the event loop, which pygls starts
            self._documents = Documents(self.published, self.debounce)
        return self._documents

    # -- positions -------------------------------------------------------------------------------------
    def to_range(self, lines: Sequence[str], span: Span) -> types.Range:
        codec = self.workspace.position_codec
        return types.Range(codec.position_to_client_units(lines, ServerTextPosition(span.line, span.start)),
                           codec.position_to_client_units(lines, ServerTextPosition(span.end_line, span.end)))

    def from_position(self, lines: Sequence[str], position: types.Position) -> tuple[int, int]:
        at = self.workspace.position_codec.position_from_client_units(lines, position)
        return at.line, at.character

    def from_range(self, lines: Sequence[str], range: types.Range) -> Span:
        start, end = self.from_position(lines, range.start), self.from_position(lines, range.end)
        return Span(*start, *end)

    async def fresh_view(self, uri: str, parsed: bool = False) -> View | None:
        """The view of a buffer once its current text is analysed (``parsed``: the latest analysis that
        parsed, for features that read blocks and parameters while the text is mid-edit)."""
        buffer = await self.documents.fresh(uri)
        return self.documents.view(buffer, parsed=parsed) if buffer else None

    def locations(self, found: list[navigation.Location], view: View) -> list[types.Location]:
        return [types.Location(self.uri_of(loc.path), self.to_range(view.lines(loc.path), loc.span)) for loc in found]

    def uri_of(self, real: str) -> str:
        open_ = self.documents.by_real(real)
        return open_[0].uri if open_ else path_to_uri(real)

    # -- diagnostics -----------------------------------------------------------------------------------
    def published(self, documents: Documents, buffer: Buffer, touched: set[str]) -> None:
        """After an analysis: publish the buffer's problems and those of the open files it touched."""
        self.publish(buffer)
        others = [b for real in touched for b in documents.by_real(real)]
        for other in others:
            self.publish(other)
        if others and self._refresh_supported():
            self.workspace_inlay_hint_refresh(None)

    def publish(self, buffer: Buffer) -> None:
        if buffer.analysis is None or not self.documents.settled(buffer):
            return  # an importer still analysing publishes it when it finishes
        lines = buffer.analysis.lines
        diagnostics = [self.diagnostic(lines, problem) for problem in self.documents.problems_for(buffer)]
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=buffer.uri, diagnostics=diagnostics, version=buffer.analysed_version))

    def diagnostic(self, lines: Sequence[str], problem: Problem) -> types.Diagnostic:
        related = [types.DiagnosticRelatedInformation(
            types.Location(self.uri_of(r.path), self.to_range(self.documents_lines(r.path), r.span)), r.message)
            for r in problem.related]
        return types.Diagnostic(range=self.to_range(lines, problem.span), message=problem.message,
                                severity=types.DiagnosticSeverity.Error, code=problem.code, source="cnnspec",
                                related_information=related or None)

    def documents_lines(self, real: str) -> list[str]:
        for buffer in self.documents.by_real(real):
            if buffer.analysis is not None:
                return buffer.analysis.lines
        return lines_of_file(real, {})

    def _refresh_supported(self) -> bool:
        workspace = self.client_capabilities.workspace
        hints_ = workspace.inlay_hint if workspace else None
        return bool(hints_ and hints_.refresh_support)


def build(debounce: float = DEBOUNCE_S) -> CnnspecServer:
    """The server with every feature registered."""
    server = CnnspecServer(debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        server.documents.open(item.uri, uri_to_path(item.uri), server.workspace.get_text_document(item.uri).source,
                              item.version)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        server.documents.change(uri, server.workspace.get_text_document(uri).source, params.text_document.version)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        closed = server.documents.close(params.text_document.uri)
        if closed is not None:
            server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=closed.uri, diagnostics=[]))
            for real in closed.shown_elsewhere:
                for other in server.documents.by_real(real):
                    server.publish(other)

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    async def inlay_hints(params: types.InlayHintParams) -> list[types.InlayHint] | None:
        view = await server.fresh_view(params.text_document.uri)
        if view is None:
            return None
        lines = view.doc.lines
        within = server.from_range(lines, params.range)
        found = hints.hints(view.doc.real, lines, view.indexes, within)
        codec = server.workspace.position_codec
        return [types.InlayHint(position=codec.position_to_client_units(lines, ServerTextPosition(h.line, h.column)),
                                label=h.label, kind=types.InlayHintKind.Type, tooltip=h.tooltip, padding_left=True)
                for h in found]

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def on_hover(params: types.HoverParams) -> types.Hover | None:
        view = await server.fresh_view(params.text_document.uri)
        if view is None:
            return None
        found = hover.hover(view, *server.from_position(view.doc.lines, params.position))
        if found is None:
            return None
        text, span = found
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text), server.to_range(view.doc.lines, span))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
    async def on_completion(params: types.CompletionParams) -> types.CompletionList | None:
        buffer = await server.documents.fresh(params.text_document.uri)
        view = server.documents.view(buffer, parsed=True) if buffer else None
        if buffer is None or view is None or buffer.analysis is None:
            return None
        lines = buffer.analysis.lines
        items = completion.complete(view, lines, *server.from_position(lines, params.position))
        return types.CompletionList(is_incomplete=False, items=[
            types.CompletionItem(label=i.label, kind=COMPLETION_KINDS[i.kind], detail=i.detail or None,
                                 documentation=types.MarkupContent(types.MarkupKind.Markdown, i.documentation)
                                 if i.documentation else None, sort_text=f"{n:04d}")
            for n, i in enumerate(items)])

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def on_definition(params: types.DefinitionParams) -> list[types.Location] | None:
        view = await server.fresh_view(params.text_document.uri, parsed=True)
        if view is None:
            return None
        found = navigation.definition(view, *server.from_position(view.doc.lines, params.position))
        return server.locations(found, view) or None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def on_references(params: types.ReferenceParams) -> list[types.Location] | None:
        view = await server.fresh_view(params.text_document.uri, parsed=True)
        if view is None:
            return None
        line, column = server.from_position(view.doc.lines, params.position)
        target = navigation.target_at(view.doc, line, column, navigation.block_names(view))
        if target is None or target.kind != "block":
            return None
        found = navigation.references(view, target.name, params.context.include_declaration)
        return server.locations(found, view)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def on_symbols(params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        view = await server.fresh_view(params.text_document.uri, parsed=True)
        if view is None:
            return None
        lines = view.doc.lines

        def convert(symbol: symbols.Symbol) -> types.DocumentSymbol:
            return types.DocumentSymbol(name=symbol.name, kind=SYMBOL_KINDS[symbol.kind],
                                        range=server.to_range(lines, symbol.span),
                                        selection_range=server.to_range(lines, symbol.selection),
                                        detail=symbol.detail or None, children=[convert(c) for c in symbol.children])

        return [convert(symbol) for symbol in symbols.symbols(view.doc)]

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    async def on_code_action(params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        buffer = await server.documents.fresh(uri)
        if buffer is None or buffer.analysis is None:
            return None
        lines = buffer.analysis.lines
        out = []
        for diagnostic in params.context.diagnostics:
            if diagnostic.source not in (None, "cnnspec"):
                continue
            for action in actions.fixes(diagnostic.message, server.from_range(lines, diagnostic.range), lines):
                edits = [types.TextEdit(server.to_range(lines, e.span), e.text) for e in action.edits]
                out.append(types.CodeAction(title=action.title, kind=types.CodeActionKind.QuickFix,
                                            diagnostics=[diagnostic], is_preferred=action.preferred,
                                            edit=types.WorkspaceEdit(changes={uri: edits})))
        return out

    @server.feature(types.SHUTDOWN)
    def on_shutdown(params: None) -> None:
        server.shut_down = True
        server.documents.shutdown()

    return server


def serve(debounce: float = DEBOUNCE_S) -> int:
    """Serve over standard input and output until the client says ``exit`` or goes away; the exit status
    (0 after a ``shutdown`` request, 1 otherwise, as the protocol asks). The protocol gets its own copy of
    file descriptor 1, and descriptor 1 itself then points at standard error, so nothing else written to
    standard output can corrupt the stream."""
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server = build(debounce)
    server.start_io(sys.stdin.buffer, protocol_out)
    return 0 if server.shut_down else 1
