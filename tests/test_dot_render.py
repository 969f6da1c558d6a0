"""Rendering with the real Graphviz ``dot``: valid SVG/PNG/PDF files, and a clear one-line error with
the DOT file still written when ``dot`` is missing. CI installs Graphviz (``.ci/run``), so there these
tests always run; elsewhere they are skipped only when ``dot`` is absent."""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cnnspec.compile.dot import render_dot
from cnnspec.compile.dot.render import RenderError, render
from cnnspec.compile.dot.target import build
from cnnspec.frontend import analyse_file

SPECS = Path(__file__).resolve().parent.parent / "specs"

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT and not os.environ.get("CI"), reason="Graphviz `dot` not on PATH")
SVG = "{http://www.w3.org/2000/svg}"


def options(target: str, depth: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(target=target, depth=depth, rankdir="TB")


def svg_node_groups(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


@needs_dot
def test_svg_has_one_node_group_per_drawn_node(tmp_path: Path) -> None:
    graph = analyse_file(SPECS / "resnet18.yaml")
    written = build(graph, tmp_path / "r18.svg", options("svg"))
    assert written == [tmp_path / "r18.svg", tmp_path / "r18.dot"]
    assert (tmp_path / "r18.dot").read_text() == render_dot(graph)
    nodes = svg_node_groups(tmp_path / "r18.svg")
    assert len(nodes) == 61 + 8 + 2 + 1  # layers, adds, input/output, legend
    groups = ET.parse(tmp_path / "r18.svg").getroot().iter(f"{SVG}g")
    clusters = [g for g in groups if g.get("class") == "cluster"]
    assert len(clusters) == 15
    titles = {g.find(f"{SVG}title").text for g in nodes}
    assert {"layer2.0.conv1", "layer2.0@add", "@input", "@output"} <= titles


@needs_dot
def test_png_is_a_png_of_plausible_size(tmp_path: Path) -> None:
    build(analyse_file(SPECS / "lenet5.yaml"), tmp_path / "lenet5.png", options("png"))
    data = (tmp_path / "lenet5.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 250 <= width <= 1000 and 600 <= height <= 2000, (width, height)  # a tall chain of 14 boxes
    assert height > width


@needs_dot
def test_pdf_and_collapsed_svg(tmp_path: Path) -> None:
    graph = analyse_file(SPECS / "resnet18.yaml")
    build(graph, tmp_path / "r18.pdf", options("pdf", depth=1))
    assert (tmp_path / "r18.pdf").read_bytes()[:5] == b"%PDF-"
    build(graph, tmp_path / "r18_d1.svg", options("svg", depth=1))
    assert len(svg_node_groups(tmp_path / "r18_d1.svg")) == 13 + 1


@needs_dot
def test_dot_rejecting_input_is_one_line() -> None:
    with pytest.raises(RenderError) as info:
        render("digraph { a -> }", "svg")
    assert str(info.value).startswith("cnnspec build: error: `dot -Tsvg` failed (exit 1): ")
    assert "\n" not in str(info.value)


def test_without_dot_the_dot_file_is_written_and_the_error_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError) as info:
        build(analyse_file(SPECS / "lenet5.yaml"), tmp_path / "lenet5.svg", options("svg"))
    message = str(info.value)
    assert message.startswith("cnnspec build: error: cannot render svg: Graphviz's `dot` is not on PATH; ")
    assert "apt-get install graphviz" in message and str(tmp_path / "lenet5.dot") in message
    assert "\n" not in message
    assert (tmp_path / "lenet5.dot").read_text().startswith('digraph "lenet5" {')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.dot"]  # no svg, no temp files


def test_dot_target_writes_only_the_dot_file(tmp_path: Path) -> None:
    graph = analyse_file(SPECS / "lenet5.yaml")
    assert build(graph, tmp_path / "x.dot", options("dot")) == [tmp_path / "x.dot"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dot"]


def test_build_options_parse_depth_and_rankdir(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnspec.compile.dot import add_build_options

    parser = argparse.ArgumentParser(prog="cnnspec build")
    add_build_options(parser)
    assert vars(parser.parse_args(["--depth", "2", "--rankdir", "LR"])) == {"depth": 2, "rankdir": "LR"}
    assert vars(parser.parse_args([])) == {"depth": None, "rankdir": "TB"}
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--depth", "-1"])
    assert info.value.code == 2
    assert "argument --depth: must be >= 0, got -1" in capsys.readouterr().err
