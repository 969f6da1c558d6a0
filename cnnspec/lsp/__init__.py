"""``cnnspec lsp``: a Language Server Protocol server for spec files.

Everything here except :mod:`cnnspec.lsp.server` is protocol-free and imports neither pygls nor lsprotocol:

* :mod:`~cnnspec.lsp.pipeline`: the front end on editor buffers (imports read from open buffers first);
* :mod:`~cnnspec.lsp.document`: one buffer analysed: diagnostics with ranges, and what the features read;
* :mod:`~cnnspec.lsp.text`: positions and token ranges (0-based lines, columns in code points);
* :mod:`~cnnspec.lsp.hints`, :mod:`~cnnspec.lsp.hover`, :mod:`~cnnspec.lsp.symbols`,
  :mod:`~cnnspec.lsp.navigation`, :mod:`~cnnspec.lsp.completion`, :mod:`~cnnspec.lsp.actions`: one feature
  each, as plain data;
* :mod:`~cnnspec.lsp.scheduler`: debounced analysis per document, where a stale result never overwrites a
  newer one;
* :mod:`~cnnspec.lsp.server`: the pygls wiring, the only module that speaks the protocol.
"""
