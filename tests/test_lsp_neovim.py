"""A real editor the project did not write: Neovim, headless, its built-in LSP client attached to
``cnnspec lsp``, opens a spec with three mistakes, then fixes one in the unsaved buffer; the script
(``tests/data/nvim/diagnostics.lua``) writes what Neovim holds as diagnostics, as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsp_client import THREE_MISTAKES

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "tests" / "data" / "nvim" / "diagnostics.lua"
NVIM = shutil.which("nvim")


@pytest.mark.slow
@pytest.mark.skipif(NVIM is None, reason="Neovim (`nvim`) is not installed: apt-get install neovim")
def test_neovim_shows_the_servers_diagnostics(tmp_path: Path) -> None:
    spec = tmp_path / "three.yaml"
    spec.write_text(THREE_MISTAKES)
    out = tmp_path / "diagnostics.json"
    env = {**os.environ, "CNNSPEC_SPEC": str(spec), "CNNSPEC_OUT": str(out), "PYTHONPATH": str(ROOT),
           "CNNSPEC_CMD": json.dumps([sys.executable, "-m", "cnnspec", "lsp"]), "XDG_STATE_HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    assert NVIM is not None
    subprocess.run([NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"],
                   cwd=tmp_path, env=env, timeout=120, check=False, capture_output=True, stdin=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    assert "error" not in result, result
    kernal = {"lnum": 3, "col": 19, "end_lnum": 3, "end_col": 25, "severity": 1, "source": "cnnspec",
              "message": "unknown option `kernal` for `conv`; did you mean `kernel`?"}
    rellu = {"lnum": 4, "col": 4, "end_lnum": 4, "end_col": 9, "severity": 1, "source": "cnnspec",
             "message": "unknown layer `rellu`; did you mean `relu`?"}
    param = {"lnum": 5, "col": 18, "end_lnum": 5, "end_col": 29, "severity": 1, "source": "cnnspec",
             "message": "`$num_clases` is not defined (defined here: none)"}
    assert result["client"] == "cnnspec"
    assert result["opened"] == [kernal, rellu, param]
    assert result["edited"] == [kernal, param]
