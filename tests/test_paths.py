"""Where ``cnnspec build`` writes, and what it refuses to write over (attack findings S2-S5, D5, C13, P6-P8 and
the output conventions of ``-o`` and ``--target``). Device nodes are made with ``os.mknod`` in ``tmp_path``
(the tests run as root, as CI does); the real ``/dev`` is never touched."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.errors import PathError
from cnnspec.fsutil import write_atomic

ROOT = Path(__file__).resolve().parents[1]
LENET = str(ROOT / "specs" / "lenet5.yaml")
TINY = "name: {name}\ninput: [1, 8, 8]\nlayers: [relu]\n"


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def _tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


# -- S2, C13: the default output comes from the spec file's name, never from `name:` --------------------

@pytest.mark.parametrize("name", ["../escaped_by_name", "/tmp/cnnspec_S2_absolute", '"a\\u202egnp"', '""'])
def test_S2_default_output_is_the_spec_file_stem_not_the_spec_name(
        here: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "s.yaml").write_text(TINY.format(name=name))
    assert main(["build", "s.yaml", "--target", "torch"]) == 0
    assert _err(capsys).startswith("wrote s.py (")
    assert _tree(here.parent) == ["work", "work/s.py", "work/s.yaml"]
    assert not Path("/tmp/cnnspec_S2_absolute.py").exists()


def test_S2_default_outputs_of_every_target_sit_in_the_working_directory(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, "--target", "dot,svg"]) == 0
    assert [line.split(" (")[0] for line in _err(capsys).splitlines()] == [
        "wrote lenet5.dot", "wrote lenet5.svg"]  # the DOT file once, though both targets write it
    assert _tree(here) == ["lenet5.dot", "lenet5.svg"]


@pytest.mark.parametrize("name", ['"a\\0b"', "n" * 300])
def test_C13_a_name_with_nul_or_300_characters_builds_to_the_stem(
        here: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "odd.yaml").write_text(TINY.format(name=name))
    assert main(["build", "odd.yaml", "--target", "dot"]) == 0
    assert _err(capsys).startswith("wrote odd.dot (")
    assert _tree(here) == ["odd.dot", "odd.yaml"]


# -- S4: device nodes, FIFOs, sockets and directories are not replaced -------------------------------

def _fake_null(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def test_S4_output_onto_a_device_node_is_refused_and_the_node_stays(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = _fake_null(here / "fakenull")
    assert main(["build", LENET, "--target", "torch", "-o", "fakenull"]) == 1
    assert _err(capsys) == ("cnnspec build: error: fakenull: it is a character device, not a regular file; "
                            "cnnspec replaces only regular files\n")
    assert stat.S_ISCHR(node.lstat().st_mode) and _tree(here) == ["fakenull"]


def test_S4_a_symlink_to_a_device_a_fifo_and_a_socket_are_refused(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_null(here / "fakenull")
    (here / "stdout").symlink_to("fakenull")
    os.mkfifo(here / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(here / "sock"))
    try:
        for name, kind in (("stdout", "a character device"), ("fifo", "a FIFO (named pipe)"),
                           ("sock", "a socket")):
            assert main(["build", LENET, "--target", "dot", "-o", name]) == 1
            assert _err(capsys) == (f"cnnspec build: error: {name}: it is {kind}, not a regular file; cnnspec "
                                    "replaces only regular files\n")
    finally:
        sock.close()
    assert (here / "stdout").is_symlink() and stat.S_ISFIFO((here / "fifo").lstat().st_mode)


def test_S4_write_atomic_itself_refuses_a_device(tmp_path: Path) -> None:
    node = _fake_null(tmp_path / "null")
    with pytest.raises(PathError, match="it is a character device, not a regular file"):
        write_atomic(node, b"x")
    assert stat.S_ISCHR(node.lstat().st_mode) and _tree(tmp_path) == ["null"]


# -- S5: a rebuilt output keeps its mode and owner ---------------------------------------------------

def test_S5_rebuild_keeps_the_previous_mode_and_owner(here: Path) -> None:
    out = here / "private.py"
    out.write_text("old\n")
    out.chmod(0o600)
    os.chown(out, 65534, 65534)  # nobody; the tests run as root, as CI does
    assert main(["build", LENET, "--target", "torch", "-o", str(out)]) == 0
    info = out.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 65534, 65534)
    assert out.read_text().startswith('"""lenet5')


def test_S5_setuid_bits_are_not_copied_onto_new_content(tmp_path: Path) -> None:
    out = tmp_path / "tool"
    out.write_text("old\n")
    out.chmod(0o4755)
    write_atomic(out, "new\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


# -- D5: the spec and the files it imports are never outputs -----------------------------------------

def test_D5_output_equal_to_the_spec_is_refused(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = here / "mine.yaml"
    spec.write_text(TINY.format(name="mine"))
    (here / "alias.yaml").symlink_to("mine.yaml")
    for spec_arg, out, shown in (("mine.yaml", "mine.yaml", "mine.yaml"),
                                 ("mine.yaml", "./sub/../mine.yaml", "sub/../mine.yaml"),
                                 ("alias.yaml", "mine.yaml", "mine.yaml"),
                                 ("alias.yaml", "alias.yaml", "alias.yaml")):
        (here / "sub").mkdir(exist_ok=True)
        assert main(["build", spec_arg, "--target", "svg" if out.endswith("svg") else "torch", "-o", out]) == 1
        assert _err(capsys) == (f"cnnspec build: error: {shown}: it is the spec being built; writing it would "
                                "replace it; choose another output file\n")
    assert spec.read_text() == TINY.format(name="mine") and (here / "alias.yaml").is_symlink()


def test_D5_an_imported_file_is_refused_also_as_the_dot_file_beside_an_svg(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "specs", here / "specs")
    blocks = here / "specs" / "blocks" / "resnet.yaml"
    before = blocks.read_bytes()
    assert main(["build", "specs/resnet18.yaml", "--target", "dot", "-o", "specs/blocks/resnet.yaml"]) == 1
    assert _err(capsys) == ("cnnspec build: error: specs/blocks/resnet.yaml: it is a file the spec imports "
                            "(blocks/resnet.yaml); writing it would replace it; choose another output file\n")
    (here / "lib.dot").write_text("blocks: {b: {layers: [relu]}}\n")  # an import may have any name
    (here / "net.yaml").write_text("name: net\nuse: [lib.dot]\ninput: [1, 8, 8]\nlayers: [b]\n")
    assert main(["build", "net.yaml", "-o", "lib.svg"]) == 1
    assert _err(capsys) == ("cnnspec build: error: lib.dot: it is a file the spec imports (lib.dot); writing it "
                            "would replace it; choose another output file\n")
    assert blocks.read_bytes() == before and not (here / "lib.svg").exists()


# -- P7 and the -o / --target conventions --------------------------------------------------------------

def test_P7_svg_target_with_a_dot_output_is_a_usage_error_and_writes_nothing(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, "--target", "svg", "-o", "x.dot"]) == 2
    assert _err(capsys) == ("cnnspec build: error: --target svg writes .svg files, but -o x.dot ends in .dot "
                            "(the dot target's suffix); drop --target, or give -o the suffix of the target "
                            "you want\n")
    assert _tree(here) == []


@pytest.mark.parametrize(("output", "first_bytes"), [("x.dot", b"digraph"), ("x.py", b'"""lenet5'),
                                                     ("x.svg", b"<?xml"), ("x.PNG", b"\x89PNG"),
                                                     ("x.pdf", b"%PDF"), ("x.onnx", b"\x08")])
def test_output_suffix_picks_the_target(here: Path, output: str, first_bytes: bytes,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, "-o", output]) == 0
    assert (here / output).read_bytes().startswith(first_bytes)
    written = [line.split(" (")[0] for line in _err(capsys).splitlines()]
    beside = ["wrote x.dot"] if output[-3:].lower() in ("svg", "png", "pdf") else []
    assert written == [f"wrote {output}", *beside]


def test_targets_and_outputs_that_disagree_are_usage_errors(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("--target", "onnx,svg", "-o", "a.onnx"): "-o names one file, but --target names 2 targets (onnx, svg); "
        "drop -o to write lenet5.onnx and lenet5.svg in the current directory, or build each with its own -o",
        ("-o", "x.txt"): "cannot tell the target from -o x.txt: give --target, or an output ending in one of .py "
        "(torch), .onnx (onnx), .dot (dot), .svg (svg), .png (png), .pdf (pdf)",
        ("--target", "torch", "--target", "tensorflow"): "unknown target `tensorflow` (targets: dot, onnx, pdf, "
        "png, svg, torch)",
        ("--target", "svg,"): "--target takes names separated by commas, got `svg,`",
    }
    for argv, message in cases.items():
        assert main(["build", LENET, *argv]) == 2
        assert _err(capsys) == f"cnnspec build: error: {message}\n"
    assert _tree(here) == []


def test_repeated_and_comma_separated_targets_build_each_and_default_is_torch(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, "--target", "dot", "--target", "torch,dot"]) == 0
    assert [line.split(" (")[0] for line in _err(capsys).splitlines()] == ["wrote lenet5.dot", "wrote lenet5.py"]
    (here / "lenet5.py").unlink()
    assert main(["build", LENET]) == 0
    assert _tree(here) == ["lenet5.dot", "lenet5.py"]
    assert main(["build", LENET, "-o", "any_name", "--target", "torch"]) == 0  # no suffix: --target decides
    assert (here / "any_name").read_text() == (here / "lenet5.py").read_text()


# -- P6: options of a target that is not built ---------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "torch", "--fp16"], "--fp16 applies only to --target onnx, not torch"),
    (["--target", "svg", "--weights", "/nonexistent.pt"], "--weights applies only to --target onnx, not svg"),
    (["--target", "torch,dot", "--batch", "2"], "--batch applies only to --target onnx, not torch and dot"),
    (["--target", "pdf", "--opset", "18"], "--opset applies only to --target onnx, not pdf"),
    (["--target", "dot", "--seed", "0"], "--seed applies only to --target onnx, not dot"),
    (["-o", "m.onnx", "--depth", "1"], "--depth applies only to --target dot, svg, png or pdf, not onnx"),
    (["--target", "svg", "--max-bytes", "1GiB"], "--max-bytes applies only to --target torch or onnx, not svg"),
])
def test_P6_onnx_only_options_with_another_target_are_usage_errors(
        here: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, *argv]) == 2
    assert _err(capsys) == f"cnnspec build: error: {message}\n"
    assert _tree(here) == []


def test_P6_options_apply_when_one_of_several_targets_reads_them(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", LENET, "--target", "torch,dot", "--depth", "0", "--max-bytes", "1MiB"]) == 0
    assert '"@input" -> "@model"' in (here / "lenet5.dot").read_text()  # depth 0: the whole model as one box
    assert main(["build", "--fp16"]) == 2
    assert _err(capsys).endswith("cnnspec build: error: --fp16 applies to building a SPEC; without one, cnnspec "
                                 "build rebuilds the manifest's entries, which carry their own options\n")


# -- P8: reproducible outputs ------------------------------------------------------------------------

def test_P8_pdf_has_a_fixed_creation_date_and_svg_no_graphviz_version(here: Path) -> None:
    assert main(["build", LENET, "-o", "a.pdf"]) == 0
    time.sleep(1.1)  # cairo's date has one-second resolution
    assert main(["build", LENET, "-o", "b.pdf"]) == 0
    first = (here / "a.pdf").read_bytes()
    assert first == (here / "b.pdf").read_bytes()
    assert b"/CreationDate (D:19700101000000Z)" in first
    assert main(["build", LENET, "-o", "a.svg"]) == 0
    assert b"Generated by graphviz" not in (here / "a.svg").read_bytes()
    assert (here / "a.svg").read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
                                                    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
                                                    b' "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
                                                    b"<!-- Title: lenet5 Pages: 1 -->\n")


def test_P8_pdf_and_svg_manifest_entries_are_fresh_after_a_build(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    manifest = tmp_path / "generated" / "manifest"
    manifest.parent.mkdir()
    manifest.write_text("specs/lenet5.yaml -o generated/lenet5.pdf\nspecs/lenet5.yaml -o generated/lenet5.svg\n")
    assert main(["build", "--manifest", str(manifest)]) == 0
    time.sleep(1.1)
    assert main(["build", "--check", "--manifest", str(manifest)]) == 0
    assert capsys.readouterr().out == "2 generated file(s) up to date\n"


def test_P8_svg_from_another_graphviz_version_is_not_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    manifest = tmp_path / "generated" / "manifest"
    manifest.parent.mkdir()
    manifest.write_text("specs/lenet5.yaml -o generated/lenet5.svg\n")
    assert main(["build", "--manifest", str(manifest)]) == 0
    svg = tmp_path / "generated" / "lenet5.svg"
    text = svg.read_text()
    svg.write_text(text.replace("<!-- Title:", "<!-- Generated by graphviz version 9.0.0 (20230911.1827)\n -->\n"
                                "<!-- Title:", 1))
    assert main(["build", "--check", "--manifest", str(manifest)]) == 0
    svg.write_text(text.replace("lenet5", "lenet6", 1))
    assert main(["build", "--check", "--manifest", str(manifest)]) == 1
    assert "generated/lenet5.svg: stale" in _err(capsys)


def test_P8_torch_source_through_the_manifest_is_the_same_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    manifest = tmp_path / "generated" / "manifest"
    manifest.parent.mkdir()
    manifest.write_text("./specs/lenet5.yaml --target torch -o generated/lenet5.py\n")
    out = tmp_path / "generated" / "lenet5.py"
    texts = []
    for cwd, given in ((tmp_path, "generated/manifest"), (tmp_path / "generated", "manifest"),
                      (tmp_path / "specs" / "blocks", str(manifest))):
        monkeypatch.chdir(cwd)
        assert main(["build", "--manifest", given]) == 0
        texts.append(out.read_text())
    assert texts[0] == texts[1] == texts[2]
    assert "Generated by cnnspec from specs/lenet5.yaml; do not edit by hand." in texts[0]
    assert texts[0] == (ROOT / "generated" / "lenet5.py").read_text()


# -- S3: manifest paths stay inside the repository -------------------------------------------------

@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / "generated").mkdir()
    shutil.copy(LENET, root / "specs" / "lenet5.yaml")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "authorized_keys").write_text("ssh-ed25519 AAAA victim\n")
    return root


@pytest.mark.parametrize(("line", "message"), [
    ("specs/lenet5.yaml --target torch -o ../victim/authorized_keys",
     "1:37: error: the output `../victim/authorized_keys` has a `..` component"),
    ("specs/lenet5.yaml --target dot -o {tmp}/victim/absolute_out.dot",
     "1:35: error: the output `{tmp}/victim/absolute_out.dot` is an absolute path"),
    ("  specs/../../victim/s.yaml -o generated/x.py",
     "1:3: error: the spec `specs/../../victim/s.yaml` has a `..` component"),
    ("{tmp}/repo/specs/lenet5.yaml -o generated/x.py",
     "1:1: error: the spec `{tmp}/repo/specs/lenet5.yaml` is an absolute path"),
    ("specs/lenet5.yaml --target=torch --output=out/authorized_keys",
     "1:34: error: the output `out/authorized_keys` leads outside the repository through a symbolic link"),
    ("'specs/lenet5.yaml' -o 'link/s.py'  # comment",
     "1:24: error: the output `link/s.py` leads outside the repository through a symbolic link"),
])
def test_S3_manifest_paths_that_leave_the_repository_are_refused_at_their_column(
        repo: Path, line: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = repo.parent
    (repo / "out").symlink_to(tmp / "victim")
    (repo / "link").symlink_to(tmp / "victim")
    (repo / "generated" / "manifest").write_text(line.format(tmp=tmp) + "\n")
    before = _tree(tmp)
    assert main(["build", "--manifest", str(repo / "generated" / "manifest")]) == 1
    assert _err(capsys) == (f"{repo}/generated/manifest:{message.format(tmp=tmp)}; manifest paths are relative "
                            f"to the repository root ({repo}) and stay inside it\n")
    assert _tree(tmp) == before
    assert (tmp / "victim" / "authorized_keys").read_text() == "ssh-ed25519 AAAA victim\n"


def test_S3_an_output_over_the_manifest_itself_is_refused(repo: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    (repo / "generated" / "manifest").write_text("specs/lenet5.yaml --target dot -o generated/manifest\n")
    assert main(["build"]) == 1
    assert _err(capsys) == (f"cnnspec build: error: {repo}/generated/manifest: it is the file manifest, which this "
                            "build reads; writing it would replace it; choose another output file\n")
