"""Generated code in a user's repository (issue 10, item 8): it passes mypy as written, and the exclusion
that docs/ci.md gives keeps ruff format from rewriting it (which would make `cnnspec build --check` call it
stale)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.compile.torch.views import MAX_LINE, Line, split_call

ROOT = Path(__file__).parents[1]
GENERATED = sorted((ROOT / "generated").glob("*.py"))


def _documented_ruff_config() -> str:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n(\[tool\.ruff\]\n.*?)```", text, re.DOTALL)
    assert found, "docs/ci.md shows the [tool.ruff] exclusion"
    return found.group(1)


def _ruff(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff") or pytest.fail("ruff (the dev extra) is not installed")
    return subprocess.run([ruff, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_documented_exclusion_keeps_ruff_format_off_generated_files(tmp_path: Path) -> None:
    (tmp_path / "generated").mkdir()
    for path in GENERATED:
        shutil.copy(path, tmp_path / "generated" / path.name)
    before = {p.name: p.read_bytes() for p in (tmp_path / "generated").iterdir()}
    unconfigured = _ruff(["format", "--check", "generated"], tmp_path)
    assert unconfigured.returncode == 1  # without the exclusion ruff would rewrite them
    assert f"{len(GENERATED)} files would be reformatted" in unconfigured.stdout
    (tmp_path / "pyproject.toml").write_text(_documented_ruff_config())
    for args in (["format", "--force-exclude", "."], ["format", "--force-exclude", *sorted(before)]):
        cwd = tmp_path if args[-1] == "." else tmp_path / "generated"
        done = _ruff(args, cwd)
        assert (done.returncode, "reformatted" in done.stdout) == (0, False), done.stdout + done.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "generated").iterdir()} == before


@pytest.mark.slow
def test_generated_files_pass_mypy(mypy_cache: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is part of the dev extra")
    # --config-file "": as in a user's repository, without this one's [tool.mypy] (tests/test_typing.py)
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache),
                           "--config-file", "", *map(str, GENERATED)], capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.stdout.splitlines()[-1] == f"Success: no issues found in {len(GENERATED)} source files", done.stdout


def test_long_calls_are_split_as_ruff_format_would() -> None:
    """A generated call longer than the repository's line length has its arguments on the lines below: all on
    one where they fit, else one each with a trailing comma; what cannot be split (a long argument, a
    signature) is left whole."""
    for path in GENERATED:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if len(line) > MAX_LINE:
                assert split_call(line.split("  # ")[0].strip()) is None, f"{path.name}:{number}: {line}"
    assert Line(1, "nn.Conv2d(in_channels, 64, kernel_size=3)", "(N, 64, 8, 8)").render(2) == (
        "            nn.Conv2d(in_channels, 64, kernel_size=3)  # (N, 64, 8, 8)")
    long = Line(0, "self.conv = nn.Conv2d(" + ", ".join(f"argument_{i}" for i in range(6)) + ")", "(N, 8)")
    assert long.render(2).splitlines() == [
        "        self.conv = nn.Conv2d(",
        "            argument_0, argument_1, argument_2, argument_3, argument_4, argument_5",
        "        )  # (N, 8)"]
    longer = Line(0, "Block(" + ", ".join(f"channels_of_stage_{i}" for i in range(6)) + "),", "(N, 8)")
    assert longer.render(3).splitlines() == [
        "            Block(", *(f"                channels_of_stage_{i}," for i in range(6)), "            ),  # (N, 8)"]
    assert split_call("x = f(a) + g(b)") is None and split_call("x = f()") is None
    assert split_call("f('a, b', [1, 2])") == ("f(", ["'a, b'", "[1, 2]"], ")")
