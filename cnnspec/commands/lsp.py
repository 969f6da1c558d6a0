"""``cnnspec lsp``: the language server (Language Server Protocol over standard input and output) for
editors: live errors, shapes on every line, hover, completion, navigation and quick fixes
(``docs/editors.md``). Needs the ``lsp`` extra (pygls), imported only here, inside :func:`run`."""

from __future__ import annotations

import argparse

from cnnspec.errors import UsageError

DEFAULT_DEBOUNCE_MS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lsp", help="the language server for editors (LSP over stdin/stdout)",
                       description="Run the cnnspec language server over standard input and output: errors as "
                       "you type, each layer's output shape at the end of its line, hover, completion, go to "
                       "definition, references, symbols and quick fixes. Editors start it; see docs/editors.md.")
    p.add_argument("--stdio", action="store_true",
                   help="accepted for editors that pass it; standard input and output are always used")
    p.add_argument("--debounce", type=float, default=DEFAULT_DEBOUNCE_MS, metavar="MS",
                   help=f"milliseconds after the last change before a buffer is analysed (default "
                   f"{DEFAULT_DEBOUNCE_MS})")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.debounce <= 10_000:
        raise UsageError(f"--debounce takes 0 to 10000 milliseconds, got {args.debounce:g}")
    from cnnspec.lsp.server import serve  # pygls: the lsp extra

    return serve(args.debounce / 1000)
