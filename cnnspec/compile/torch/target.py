"""``cnnspec build SPEC --target torch``: write the generated module (see ``cnnspec.compile.targets``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnspec.compile.limits import check_size
from cnnspec.compile.torch.render import render_source
from cnnspec.fsutil import write_atomic
from cnnspec.ir import Graph


def build(graph: Graph, output: Path, options: argparse.Namespace) -> list[Path]:
    check_size(graph, "torch", getattr(options, "max_bytes", None))
    return [write_atomic(output, render_source(graph))]
