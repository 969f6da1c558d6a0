"""Optional dependencies: which extra of ``pip install 'cnnspec[...]'`` provides each heavy module, and a
missing one turned into one usage line instead of a traceback.

``pip install cnnspec`` gives ``check``, ``summary``, ``diff`` (PyYAML only) and ``schema`` (also pydantic).
The extras add the compilers: ``source`` (jinja2: PyTorch source, ``build --target torch``), ``torch``
(jinja2 and torch: also ``Model.to_torch()`` and ``.pt``/``.pth`` checkpoints), ``onnx`` (onnx,
onnxruntime, numpy, safetensors: ``build --target onnx``, ``run``, ``bench``), ``gpu`` (the same with
onnxruntime-gpu), ``all`` (source, torch and onnx). Diagrams need Graphviz's ``dot`` program, no extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from cnnspec.errors import UsageError

EXTRA_OF_MODULE = {
    "jinja2": "source",
    "markupsafe": "source",
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "numpy": "onnx",
    "safetensors": "onnx",
    "pygls": "lsp",
    "lsprotocol": "lsp",
}


def missing_extra_message(module: str, doing: str) -> str | None:
    """The usage line for ``module`` missing while ``doing`` something, or None if no extra provides it."""
    top = module.partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return f"{doing} needs the {extra} extra (no module `{top}`): pip install 'cnnspec[{extra}]'"


def doing(args: argparse.Namespace) -> str:
    """What the command line asked for, in a few words: ``--target onnx``, ``checking generated/manifest``."""
    command = getattr(args, "command", None)
    if command == "build":
        if getattr(args, "spec", None) is not None:
            chosen = ",".join(args.target) if isinstance(args.target, list) else args.target
            if not chosen and getattr(args, "output", None):
                return f"-o {args.output}"
            return f"--target {chosen or 'torch'}"
        manifest = getattr(args, "manifest", None) or "generated/manifest"
        return f"{'checking' if getattr(args, 'check', False) else 'building'} {manifest}"
    return {"run": "running a model", "bench": "benchmarking a model",
            "lsp": "the language server"}.get(command or "", f"cnnspec {command}")


@contextmanager
def extras_required(args: argparse.Namespace) -> Iterator[None]:
    """Turn the import of a missing module that an extra provides into a :class:`UsageError` naming the extra
    (a module that is installed but fails to import keeps its own error)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc.name, doing(args)) if exc.name else None
        if message is None:
            raise
        raise UsageError(message) from None
