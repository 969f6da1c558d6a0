"""``cnnspec schema``: the JSON Schema of the spec format, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of spec files (for editors and CI)",
                       description="Print the JSON Schema (draft-07) of spec files and block libraries, "
                       "derived from cnnspec's models: every op and option with its description and examples. "
                       "Point editors at it with a first line `# yaml-language-server: $schema=PATH`.")
    p.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of printing it")


def run(args: argparse.Namespace) -> int:
    from cnnspec.frontend.schema import schema_text

    text = schema_text()
    if args.output:
        from cnnspec.fsutil import write_atomic

        write_atomic(args.output, text.encode())
    else:
        print(text, end="")
    return 0
