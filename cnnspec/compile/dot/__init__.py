"""Architecture diagrams: DOT text written by cnnspec itself, rendered to SVG/PNG/PDF by Graphviz's
``dot`` when it is on PATH. Reads only the analysed graph; needs no Python package beyond cnnspec.

* :func:`render_dot` -- the DOT text (deterministic: same graph, same bytes).
* ``target.build`` -- the ``cnnspec build --target dot|svg|png|pdf`` backend: writes the ``.dot`` file
  always, then the rendered file, reproducibly.
* :func:`add_build_options` -- ``--depth`` and ``--rankdir`` for the ``build`` command.
"""

from __future__ import annotations

import argparse

from cnnspec.compile.dot.render import FORMATS, RenderError
from cnnspec.compile.dot.style import RANKDIRS
from cnnspec.ir import Graph

TARGETS = ("dot", *FORMATS)
__all__ = ["TARGETS", "RenderError", "add_build_options", "render_dot"]


def render_dot(graph: Graph, depth: int | None = None, rankdir: str = "TB") -> str:
    """The diagram of ``graph`` as DOT text. ``depth``: scopes at that nesting depth and deeper are drawn
    as one node each (0 = the whole model, 1 = top-level layers, None = everything)."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, not {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, not {depth}")
    from cnnspec.compile.dot.diagram import build_diagram  # the op registry: not on every command's start
    from cnnspec.compile.dot.writer import write_dot

    return write_dot(build_diagram(graph, depth), rankdir)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options of the diagram targets (ignored by the others)."""
    group = parser.add_argument_group("diagram targets (dot, svg, png, pdf)")
    group.add_argument("--depth", type=_depth, default=None, metavar="N",
                       help="draw each block, stage, residual or concat at level N or deeper as one node, "
                            "levels as in `summary --depth` (0: the whole model, 1: top-level layers, "
                            "stages collapsed; default: everything)")
    group.add_argument("--rankdir", choices=RANKDIRS, default="TB",
                       help="layout direction: TB top to bottom (default) or LR left to right")
