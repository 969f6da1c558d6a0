"""``cnnspec check`` and ``cnnspec summary`` must stay light: they never import the backends' heavy
dependencies, nor pydantic (only ``cnnspec schema`` builds pydantic models). Checked on real processes with ``python -X importtime`` (every imported module is listed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
HEAVY = ("torch", "onnx", "onnxruntime", "onnxscript", "graphviz", "jinja2", "numpy", "safetensors", "pygls",
         "lsprotocol")


def imported_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cnnspec", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:") and line.count("|") == 2}
    assert "cnnspec.frontend.infer" in modules  # the listing works and the front end really ran
    return modules


@pytest.mark.parametrize("args", [("check", "specs"), ("summary", "specs/resnet50.yaml", "--format", "json"),
                                  ("summary", "specs/convnext_tiny.yaml", "--depth", "2")])
def test_no_heavy_imports(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert sorted(m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")) == []
    if args[0] == "check":  # its processes are forked by cnnspec.forkmap: no 20 ms pool to import
        assert not {"multiprocessing", "concurrent.futures"} & modules
