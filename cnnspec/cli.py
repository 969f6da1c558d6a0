"""Command-line entry point. Each subcommand lives in ``cnnspec/commands/<name>.py`` with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. Command modules import their heavy dependencies
(torch, onnx, onnxruntime) inside ``run``, so ``check`` and ``summary`` never load them; a missing one is
a one-line usage error naming the extra to install (``cnnspec.extras``). Every command takes ``--quiet``;
colour and progress displays follow ``cnnspec.console``."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol

from cnnspec import console
from cnnspec._version import __version__
from cnnspec.errors import SpecError, UsageError
from cnnspec.extras import extras_required

COMMANDS = ("check", "summary", "build", "run", "bench", "schema", "diff", "lsp")


class Command(Protocol):
    """A module ``cnnspec/commands/<name>.py``."""

    def add_parser(self, sub: argparse._SubParsersAction) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="cnnspec",
        description="CNN architectures as YAML: checked, measured, compiled to PyTorch, ONNX and diagrams.",
        epilog="A spec path `-` reads the spec from standard input (check, summary). Colour on a terminal; "
        "NO_COLOR=1 turns it off, FORCE_COLOR=1 forces it. check, summary, diff and schema need only pydantic and "
        "PyYAML; a command that needs an extra names it (pip install 'cnnspec[source|torch|onnx|gpu|all]'). "
        "Exit codes: 0 ok, 1 spec errors (or differences with diff --exit-code), 2 usage errors.",
    )
    parser.add_argument("--version", action="version", version=f"cnnspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules: dict[str, Command] = {}
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cnnspec.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cnnspec.commands.{name}":
                continue  # command not built yet
            raise
        module.add_parser(sub)
        _add_common_options(sub.choices[name])
        modules[name] = module
    return parser, modules


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only errors: no notes, no `wrote ...` or `ok` lines, no progress display")


def main(argv: Sequence[str] | None = None) -> int:
    from cnnspec import stdstreams

    gc.disable()  # the start allocates only what lives to the end: imported modules and the parser
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    stdstreams.never_unencodable()
    parser, modules = _parser()
    gc.freeze()  # later collections skip all of it
    gc.enable()
    args = parser.parse_args(argv)
    console.configure(quiet=args.quiet)
    try:
        with extras_required(args):
            status = int(modules[args.command].run(args))
        sys.stdout.flush()  # a full device fails here, not in Python's flush at exit
        return status
    except SpecError as exc:
        console.error(str(exc))
        return 1
    except UsageError as exc:
        console.error(f"cnnspec {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("cnnspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        stdstreams.discard_stdout()
        return 0
    except OSError as exc:  # a file that cannot be read or written: `cnnspec CMD: error: PATH: reason`
        return stdstreams.os_error(args.command, exc)


if __name__ == "__main__":
    sys.exit(main())
