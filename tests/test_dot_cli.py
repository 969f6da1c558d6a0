"""``cnnspec build --target dot|svg|png|pdf`` end to end through the CLI, and the generated diagrams'
freshness (the same ``--check`` the manifest runs)."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest

from cnnspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
needs_dot = pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                               reason="Graphviz `dot` not on PATH")


@needs_dot
def test_build_svg_with_depth_and_rankdir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r18.svg"
    spec = str(ROOT / "specs" / "resnet18.yaml")
    assert main(["build", spec, "--target", "svg", "-o", str(out), "--depth", "1", "--rankdir", "LR"]) == 0
    dot_file = tmp_path / "r18.dot"
    sizes = [f"{p.stat().st_size / 1000:.2f} kB" for p in (out, dot_file)]
    assert capsys.readouterr().err.splitlines() == [f"wrote {out} ({sizes[0]})", f"wrote {dot_file} ({sizes[1]})"]
    dot_text = (tmp_path / "r18.dot").read_text()
    assert 'rankdir="LR"' in dot_text and '"layer3" [shape="box3d"' in dot_text
    assert out.read_text().count('class="node"') == 13 + 1  # 12 drawn layers/stages + input/output, legend


def test_build_without_dot_exits_1_with_one_line_and_keeps_the_dot_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    out = tmp_path / "lenet5.png"
    assert main(["build", str(ROOT / "specs" / "lenet5.yaml"), "--target", "png", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnspec build: error: cannot render png: Graphviz's `dot`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.dot"]


DIAGRAM_ENTRIES = [line for line in (ROOT / "generated" / "manifest").read_text().splitlines()
                   if " --target svg " in line]


def test_manifest_lists_lenet5_and_resnet18_at_depth_one_and_full() -> None:
    assert DIAGRAM_ENTRIES == [
        "specs/lenet5.yaml --target svg -o generated/lenet5.svg",
        "specs/resnet18.yaml --target svg -o generated/resnet18.svg",
        "specs/resnet18.yaml --target svg -o generated/resnet18_depth1.svg --depth 1",
    ]


@needs_dot
@pytest.mark.parametrize("entry", DIAGRAM_ENTRIES)
def test_generated_diagram_is_fresh(entry: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The .svg and its .dot equal what the spec draws now (the manifest's own --check, per entry)."""
    monkeypatch.chdir(ROOT)
    assert main(["build", *shlex.split(entry), "--check"]) == 0, capsys.readouterr().err


def test_model_to_dot_is_the_built_dot_file() -> None:
    """``cnnspec.load(...).to_dot()`` gives the same text ``build --target svg`` keeps beside the SVG."""
    import cnnspec

    root = Path(__file__).resolve().parents[1]
    model = cnnspec.load(root / "specs" / "lenet5.yaml")
    assert model.to_dot() == (root / "generated" / "lenet5.dot").read_text()
