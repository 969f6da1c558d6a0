"""Command-line entry point. Each subcommand lives in ``cnnspec/commands/<name>.py`` with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. Command modules import their heavy dependencies
(torch, onnx, onnxruntime) inside ``run``, so ``check`` and ``summary`` never load them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cnnspec.errors import SpecError, UsageError

COMMANDS = ("check", "summary", "build", "run", "bench", "schema", "diff")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="cnnspec",
        description="CNN architectures as YAML: checked, measured, compiled to PyTorch, ONNX and diagrams.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules: dict[str, object] = {}
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cnnspec.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cnnspec.commands.{name}":
                continue  # command not built yet
            raise
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    from cnnspec import stdstreams

    stdstreams.never_unencodable()
    parser, modules = _parser()
    args = parser.parse_args(argv)
    try:
        status = int(modules[args.command].run(args))
        sys.stdout.flush()  # a full device fails here, not in Python's flush at exit
        return status
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"cnnspec {args.command}: error: {exc}", file=sys.stderr)
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
