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
from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol

from cnnspec import console
from cnnspec._version import __version__
from cnnspec.errors import SpecError, UsageError
from cnnspec.extras import extras_required

COMMANDS = ("check", "summary", "build", "run", "bench", "schema", "diff", "lsp")
FAST_EXIT = frozenset({"check", "summary", "schema", "diff"})  # never import torch, onnx or onnxruntime


class Command(Protocol):
    """A module ``cnnspec/commands/<name>.py``."""

    def add_parser(self, sub: argparse._SubParsersAction) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def _parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The command line's parser, and the command modules by name; with ``only`` (the command the arguments
    name), that command's alone: importing the other seven and building their parsers cost 12 ms of every
    start, a seventh of a `check` that finds everything in its cache."""
    parser = argparse.ArgumentParser(
        prog="cnnspec",
        description="CNN architectures as YAML: checked, measured, compiled to PyTorch, ONNX and diagrams.",
        epilog="A spec path `-` reads the spec from standard input (check, summary). Colour on a terminal; "
        "NO_COLOR=1 turns it off, FORCE_COLOR=1 forces it. check, summary and diff need only PyYAML, schema also "
        "pydantic; a command that needs an extra names it (pip install 'cnnspec[source|torch|onnx|gpu|all]'). "
        "Exit codes: 0 ok, 1 spec errors (or differences with diff --exit-code), 2 usage errors.",
    )
    parser.add_argument("--version", action="version", version=f"cnnspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules: dict[str, Command] = {}
    for name in COMMANDS if only is None else (only,):
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
    """Run one command (``argv``: the arguments after ``cnnspec``; the process's by default) and return its exit
    status. Leaves the process as it found it: tests and programs call this."""
    return _run(argv)[0]


def entry() -> NoReturn:
    """The ``cnnspec`` executable: :func:`main` as a whole process, tuned for a short one.

    * The cyclic garbage collector is paused while the commands are imported, and what they made is then
      frozen (out of every later collection): a start allocates only what lives to the end.
    * pydantic's plugins are off (``PYDANTIC_DISABLE_PLUGINS``, unless set) for ``schema``, the one command that
      imports pydantic: looking them up reads the metadata of every installed package, 25-40 ms, and the
      schema has no use for them.
    * The commands that import no torch or onnx (:data:`FAST_EXIT`) leave without the interpreter's teardown,
      which frees every object one by one (25 ms after ``check specs/``), once their output is flushed, as
      mypy does. The others may have registered exit handlers (torch, onnxruntime), so they exit normally.
    """
    gc.disable()
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    status, command = _run(None, started=_freeze)
    if command in FAST_EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or failing stream: let the interpreter report it
            sys.exit(status)
        os._exit(status)
    sys.exit(status)


def _freeze() -> None:
    gc.freeze()
    gc.enable()


def _run(argv: Sequence[str] | None, started: Callable[[], None] = lambda: None) -> tuple[int, str | None]:
    """(exit status, command) of one command; ``started`` is called once the commands are imported."""
    from cnnspec import stdstreams

    stdstreams.never_unencodable()
    words = list(sys.argv[1:] if argv is None else argv)
    parser, modules = _parser(words[0] if words and words[0] in COMMANDS else None)
    started()
    args = parser.parse_args(argv)
    console.configure(quiet=args.quiet)
    return _status(args, modules), args.command


def _status(args: argparse.Namespace, modules: dict[str, Command]) -> int:
    from cnnspec import stdstreams

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
    entry()
