"""The package's type hints hold: a bare ``mypy`` in the repository root (``[tool.mypy]`` in pyproject.toml
names the package, the pydantic plugin and the untyped third-party modules) reports no issue."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_mypy_finds_no_issue_in_the_package() -> None:
    pytest.importorskip("mypy", reason="mypy is part of the dev extra")
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"Success: no issues found in \d+ source files", done.stdout.splitlines()[-1]), done.stdout
