"""Rendering DOT text with Graphviz's ``dot`` binary (a subprocess with a timeout, output captured so
nothing half-written reaches the disk)."""

from __future__ import annotations

import shutil
import subprocess

from cnnspec.errors import SpecError

FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
                "conda: conda install -c conda-forge graphviz)")


class RenderError(SpecError):
    """Rendering failed (no ``dot``, or ``dot`` refused the input): exit 1, one line."""

    def __str__(self) -> str:
        return f"cnnspec build: error: {self.message}"


def find_dot() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str, timeout: float = 120.0) -> bytes:
    """``dot -T<fmt>`` on ``dot_text``; returns the rendered file's bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r}")
    exe = find_dot()
    if exe is None:
        raise RenderError(f"cannot render {fmt}: Graphviz's `dot` is not on PATH; {INSTALL_HINT}")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"`dot -T{fmt}` took longer than {timeout:g} s; try --depth to draw less") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"`dot -T{fmt}` failed (exit {done.returncode}): {why[0] if why else 'no output'}")
    return done.stdout
