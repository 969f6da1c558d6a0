"""Every I/O failure is one line (attack findings C3, C6, C8, C12, M5, P1, P2, P4, P10, S6): outputs that cannot
be written, special files as inputs, closed or full standard output, undecodable and spoofing file names,
huge values in messages. Device nodes are made with ``os.mknod`` in ``tmp_path`` (the tests run as root, as
CI does); the real ``/dev`` is never touched."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import cnnspec
from cnnspec.cli import main
from cnnspec.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
LENET = str(ROOT / "specs" / "lenet5.yaml")
BAD = "name: bad\ninput: [1, 8, 8]\nlayers: [flatten, {linear: {out: 2}}, conv: {out: 2, kernel: 3}]\n"
BAD_ERROR = ("3:39: error: layer 2 (conv) needs a [C, L], [C, H, W] or [C, D, H, W] input, but gets the flat vector 2: "
             "did a `flatten` come too early?")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cnnspec(*args: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "cnnspec", *args], check=False, stderr=subprocess.PIPE, timeout=timeout,
                          env=kwargs.pop("env", ENV), **kwargs)  # type: ignore[call-overload]


def _node(path: Path, minor: int) -> Path:
    """A character device like /dev/null (3), /dev/zero (5) or /dev/full (7), made in tmp_path."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- C3: outputs that cannot be written ---------------------------------------------------------------

@pytest.mark.slow
def test_C3_an_existing_directory_as_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "models"
    out.mkdir()
    assert main(["build", LENET, "--target", "onnx", "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"cnnspec build: error: {out}: it is a directory; give a file name (for "
                                       f"example {out}/lenet5.onnx)\n")
    model = cnnspec.load(LENET)
    with pytest.raises(OSError, match=r"it is a directory; give a file name: "):
        model.to_onnx(out)  # the API raises the same error, an OSError
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_C3_an_output_below_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["build", LENET, "--target", "torch", "-o", str(tmp_path / "file" / "x.py")]) == 1
    assert capsys.readouterr().err == (f"cnnspec build: error: {tmp_path}/file/x.py: cannot create it: "
                                       f"{tmp_path}/file is a file, not a directory\n")


@pytest.mark.slow
def test_C3_a_240_character_output_name_works_and_256_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = tmp_path / ("n" * 237 + ".py")
    assert main(["build", LENET, "--target", "torch", "-o", str(long)]) == 0
    assert long.read_text().startswith('"""lenet5') and _temps(tmp_path) == []
    too_long = tmp_path / ("n" * 253 + ".py")
    assert main(["build", LENET, "--target", "torch", "-o", str(too_long)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"cnnspec build: error: {str(too_long)[:200]}... ({len(str(too_long)) - 200} more characters): the file "
        "name is 256 bytes long; this file system allows 255")


@pytest.mark.slow
def test_C3_a_read_only_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)

    def refused(*args: object, **kwargs: object) -> None:  # root ignores the mode: say what the kernel says
        raise PermissionError(13, "Permission denied", str(ro / ".x.py.1.abcdefgh.tmp"))

    if os.geteuid() == 0:
        monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert main(["build", LENET, "--target", "torch", "-o", str(ro / "x.py")]) == 1
    assert capsys.readouterr().err == (f"cnnspec build: error: {ro}/x.py: cannot create a file in {ro}: "
                                       "Permission denied\n")
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_C3_a_full_disk_keeps_the_previous_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.dot"
    out.write_text("previous\n")

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    assert main(["build", LENET, "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"cnnspec build: error: {out}: cannot write it: No space left on device "
                                       "(the previous file is unchanged)\n")
    assert out.read_text() == "previous\n" and _temps(tmp_path) == []


@pytest.mark.slow
def test_C3_a_file_size_limit_efbig_is_one_line(tmp_path: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = _cnnspec("build", LENET, "--target", "onnx", "-o", str(tmp_path / "m.onnx"), preexec_fn=limit)
    assert done.returncode == 1
    assert done.stderr.decode() == (f"cnnspec build: error: {tmp_path}/m.onnx: cannot write it: File too large "
                                    "(nothing was written)\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_C3_stdout_on_a_full_device(tmp_path: Path) -> None:
    full = _node(tmp_path / "full", 7)
    with open(full, "w") as stdout:
        done = _cnnspec("schema", stdout=stdout)
    assert (done.returncode, done.stderr.decode()) == (
        1, "cnnspec schema: error: standard output: No space left on device\n")


def test_C3_any_other_os_error_reaching_main_is_one_line(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnspec.commands import summary

    def broken(args: object) -> int:
        raise OSError(5, "Input/output error", "specs/x.yaml")

    monkeypatch.setattr(summary, "run", broken)
    assert main(["summary", LENET]) == 1
    assert capsys.readouterr().err == "cnnspec summary: error: specs/x.yaml: Input/output error\n"


# -- M5, P4: FIFOs and devices as inputs are refused before reading -----------------------------------

@pytest.fixture()
def specials(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "fifo.yaml")
    _node(tmp_path / "zero", 5)
    (tmp_path / "zero.yaml").symlink_to("zero")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), [("fifo.yaml", "a FIFO (named pipe)"),
                                            ("zero.yaml", "a character device")])
def test_M5_special_files_as_specs_are_refused_by_every_command(specials: Path, name: str, kind: str) -> None:
    spec = str(specials / name)
    expected = {
        ("check", spec): (2, f"cnnspec check: error: {spec} is {kind}, not a spec file or a directory\n"),
        ("summary", spec): (2, f"cnnspec summary: error: not a file: {spec}\n"),
        ("build", spec): (1, f"{spec}:1:1: error: cannot read the file: it is {kind}, not a regular file\n"),
        ("diff", spec, LENET): (1, f"{spec}:1:1: error: cannot read the file: it is {kind}, not a regular file\n"),
        ("diff", LENET, spec): (1, f"{spec}:1:1: error: cannot read the file: it is {kind}, not a regular file\n"),
    }
    for argv, (code, err) in expected.items():
        done = _cnnspec(*argv, timeout=30)  # before the fix, build and diff of a FIFO hung here
        assert (done.returncode, done.stderr.decode()) == (code, err), argv
    done = _cnnspec("run", spec, timeout=30)
    assert (done.returncode, done.stderr.decode()) == (
        1, f"{spec}:1:1: error: cannot read the file: it is {kind}, not a regular file\n")


def test_M5_the_loader_reads_at_most_its_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**30)  # a sparse 3 GiB file: reading it whole would take 3 GiB
    with pytest.raises(SpecError) as caught:
        cnnspec.load(big)
    assert str(caught.value) == (f"{big}:1:1: error: the file is 3,221,225,472 bytes; specs are limited to "
                                 "4,194,304 bytes")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fifo.yaml", "zero.yaml"])
def test_M5_a_special_file_as_manifest_is_refused(specials: Path, name: str) -> None:
    kind = "a FIFO (named pipe)" if name.startswith("fifo") else "a character device"
    done = _cnnspec("build", "--manifest", str(specials / name), timeout=30)
    assert (done.returncode, done.stderr.decode()) == (
        1, f"{specials / name}:1:1: error: cannot read the manifest: it is {kind}, not a regular file\n")


def test_P4_check_names_what_a_path_is(specials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (specials / "dangling.yaml").symlink_to("nowhere")
    for name, kind in (("fifo.yaml", "a FIFO (named pipe)"), ("zero", "a character device"),
                       ("dangling.yaml", "a broken symbolic link")):
        assert main(["check", str(specials / name)]) == 2
        assert capsys.readouterr().err == (f"cnnspec check: error: {specials / name} is {kind}, not a spec file "
                                           "or a directory\n")
    assert main(["check", str(specials / "missing.yaml")]) == 2
    assert capsys.readouterr().err == f"cnnspec check: error: no such file or directory: {specials}/missing.yaml\n"


def test_M5_a_directory_walk_skips_fifos_and_devices(specials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (specials / "ok.yaml").write_text("name: ok\ninput: [1, 8, 8]\nlayers: [relu]\n")
    assert main(["check", str(specials)]) == 0
    assert capsys.readouterr().out == f"{specials}/ok.yaml: ok (0 params, 0 MACs)\n"


# -- C8: the manifest's encoding ---------------------------------------------------------------------

@pytest.mark.slow
def test_C8_a_non_utf8_manifest_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "generated" / "manifest"
    manifest.parent.mkdir()
    manifest.write_bytes(b"# made by Ren\xe9\nspecs/x.yaml -o generated/x.py\n")
    assert main(["build", "--check", "--manifest", str(manifest)]) == 1
    assert capsys.readouterr().err == (f"{manifest}:1:14: error: the manifest is not valid UTF-8 text (byte 0xe9); "
                                       "save it as UTF-8\n")


# -- P1: a reader that leaves early ------------------------------------------------------------------

@pytest.mark.slow
def test_P1_check_into_a_closed_pipe_keeps_its_exit_status_and_its_errors(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"ok{i:02}.yaml").write_text("name: ok\ninput: [1, 8, 8]\nlayers: [relu]\n")
    (tmp_path / "zz_bad.yaml").write_text(BAD)
    for fmt, code in (("text", 1), ("json", 1), ("github", 1)):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line, as after `| head -1`
        try:
            done = _cnnspec("check", str(tmp_path), "--format", fmt, stdout=write)
        finally:
            os.close(write)
        err = done.stderr.decode()
        assert done.returncode == code and "Traceback" not in err and "BrokenPipe" not in err, (fmt, err)
        if fmt == "text":
            assert err == f"{tmp_path}/zz_bad.yaml:{BAD_ERROR}\n"
    (tmp_path / "zz_bad.yaml").unlink()
    read, write = os.pipe()
    os.close(read)
    done = _cnnspec("check", str(tmp_path), stdout=write)
    os.close(write)
    assert (done.returncode, done.stderr) == (0, b"")


# -- C12, S6: what a file name or a value may hold --------------------------------------------------

@pytest.mark.slow
def test_C12_undecodable_file_names_with_a_strict_utf8_stdout(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    name = os.fsdecode(b"caf\xe9.yaml")
    (specs / name).write_text(BAD)
    (specs / os.fsdecode(b"ok\xff.yaml")).write_text("name: ok\ninput: [1, 8, 8]\nlayers: [relu]\n")
    env = {**ENV, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    done = _cnnspec("check", str(specs), env=env)
    assert done.returncode == 1
    assert done.stdout.decode() == f"{specs}/ok\\xff.yaml: ok (0 params, 0 MACs)\n"
    assert done.stderr.decode() == f"{specs}/caf\\xe9.yaml:{BAD_ERROR}\n"
    done = _cnnspec("check", str(specs), "--format", "github", env=env)
    assert done.returncode == 1 and done.stdout.decode().startswith(f"::error file={specs}/caf\\xe9.yaml,line=3,")
    assert done.stderr == b""
    done = _cnnspec("build", str(specs / os.fsdecode(b"ok\xff.yaml")), "--target", "dot", cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stderr.decode().startswith("wrote ok\\xff.dot (")
    assert (tmp_path / os.fsdecode(b"ok\xff.dot")).is_file()


def test_S6_bidi_controls_are_escaped_in_messages_and_file_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "a\u202eb.yaml"
    spec.write_text('name: b\ninput: [1, 8, 8]\nlayers: ["\u202eulerevil", "\u2066x\u2069"]\n')
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path}/a\\u202eb.yaml:3:10: error: unknown layer `\\u202eulerevil` (ops: ")
    assert all(chr(c) not in err for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
    assert main(["check", str(spec), "--format", "github"]) == 1
    assert "\u202e" not in capsys.readouterr().out


def test_P2_usage_errors_are_escaped_onto_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "a\nb\u202e.yaml")]) == 2
    assert capsys.readouterr().err == f"cnnspec check: error: no such file or directory: {tmp_path}/a\\nb\\u202e.yaml\n"


def test_P10_a_huge_value_is_cut_in_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text("name: b\ninput: [1, 8, 8]\nlayers: [" + "x" * 1_000_000 + "]\n")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:3:10: error: unknown layer `{'x' * 200}... (999,800 more characters)` (ops: ")
    assert len(err) < 2_400 and err.count("\n") == 1


def test_P10_yaml_text_given_as_a_path_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(LENET).read_text()
    with pytest.raises(SpecError) as caught:
        cnnspec.load(text)
    assert str(caught.value) == ("<text>:1:1: error: cannot read the file: No such file or directory; this is text "
                                 "with line breaks, not a file name: give the path of a spec file")
    with pytest.raises(SpecError) as caught:
        cnnspec.load("x" * 5000)
    assert str(caught.value) == (f"{'x' * 200}... (4,800 more characters):1:1: error: cannot read the file: File "
                                 "name too long")


# -- C6: sizes -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("text", "why"), [
    ("1" * 400, ("expected a size such as 4GiB, 512MiB or 1000000, at most 8 EiB (2^63 - 1 bytes), got "
                 "'1111111111111111111111111111111111111111... (400 characters)'")),
    ("１２３GiB", ("expected a size such as 4GiB, 512MiB or 1000000, got '１２３GiB' (write the digits 0-9 and "
                  "the unit in ASCII)")),
    ("1e400", "expected a size such as 4GiB, 512MiB or 1000000, got '1e400'"),
])
def test_C6_max_bytes_with_400_digits_or_full_width_digits(
        tmp_path: Path, text: str, why: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = str(tmp_path / "v.py")
    with pytest.raises(SystemExit) as caught:
        main(["build", LENET, "-o", out, "--max-bytes", text])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"cnnspec build: error: argument --max-bytes: {why}"
    monkeypatch.setenv("CNNSPEC_MAX_BYTES", text)
    assert main(["build", LENET, "-o", out]) == 2
    assert capsys.readouterr().err == f"cnnspec build: error: $CNNSPEC_MAX_BYTES: {why}\n"
    assert not Path(out).exists()
