"""Atomic outputs (issue 7): a build killed (SIGKILL), interrupted (Ctrl-C) or failing mid-write leaves the
previous output intact, byte for byte.

The kill tests race a real build: vgg16's ONNX file is 553 MB, so its write (temp file, fsync, rename)
takes long enough to be caught by polling for the temp file, with no test hook in cnnspec."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnspec.cli import main
from cnnspec.fsutil import remove_stale_temps, write_atomic

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = b"the previous build\n"


def _start_build(out: Path) -> subprocess.Popen[bytes]:
    # As from a terminal: a suite started in the background inherits SIGINT ignored, which the child would
    # inherit too (Python then installs no KeyboardInterrupt handler and the Ctrl-C is not seen at all).
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", "cnnspec", "build", str(ROOT / "specs" / "vgg16.yaml"),
                                 "--target", "onnx", "-o", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _temps(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


def _signal_mid_write(out: Path, sig: int) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the build, wait until its temp file exists and holds data, then send ``sig``."""
    proc = _start_build(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        temps = _temps(out)
        if temps and temps[0].stat().st_size > 0:
            proc.send_signal(sig)
            return proc, temps[0]
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"the build never wrote a temp file (exit {proc.poll()})")


@pytest.mark.slow
def test_sigkill_mid_write_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "vgg16.onnx"
    out.write_bytes(PREVIOUS)
    proc, temp = _signal_mid_write(out, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == PREVIOUS
    assert _temps(out) == [temp]  # SIGKILL leaves its temp file behind ...
    write_atomic(out, b"next build\n")  # ... which the next write of the same file removes
    assert _temps(out) == [] and out.read_bytes() == b"next build\n"


@pytest.mark.slow
def test_ctrl_c_mid_write_keeps_the_previous_output_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "vgg16.onnx"
    out.write_bytes(PREVIOUS)
    proc, _ = _signal_mid_write(out, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (130, "cnnspec: interrupted\n")
    assert out.read_bytes() == PREVIOUS
    assert _temps(out) == []


def test_a_failed_write_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.py"
    out.write_bytes(PREVIOUS)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(out, b"x" * 100_000)
    assert out.read_bytes() == PREVIOUS and _temps(out) == []


def test_a_refused_build_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vgg16.py"
    out.write_bytes(PREVIOUS)
    assert main(["build", str(ROOT / "specs" / "vgg16.yaml"), "-o", str(out), "--max-bytes", "1MiB"]) == 1
    assert "over the torch build limit of 1.0 MiB" in capsys.readouterr().err
    assert out.read_bytes() == PREVIOUS and _temps(out) == []


def test_stale_temps_of_running_writers_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    mine = tmp_path / f".m.onnx.{os.getpid()}.abc123.tmp"
    gone = tmp_path / f".m.onnx.{dead}.def456.tmp"
    other = tmp_path / f".other.onnx.{dead}.xyz.tmp"
    for path in (mine, gone, other):
        path.write_bytes(b"partial")
    assert remove_stale_temps(out) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_outputs_get_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "a.dot", "digraph {}\n")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_P9_sigterm_mid_write_removes_the_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "vgg16.onnx"
    out.write_bytes(PREVIOUS)
    proc, _ = _signal_mid_write(out, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (-signal.SIGTERM, b"")  # still ended by the signal, as CI expects
    assert out.read_bytes() == PREVIOUS
    assert _temps(out) == []


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding ``path``'s flock, as a writer in another container or PID namespace does."""
    code = ("import fcntl, sys; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_C11_a_temp_file_locked_by_a_writer_whose_pid_is_not_visible_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    invisible = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True, check=True).stdout.strip()  # a pid with no process here
    live = tmp_path / f".m.onnx.{invisible}.abc123.tmp"
    live.write_bytes(b"half of a model")
    holder = _hold_lock(live)
    try:
        assert remove_stale_temps(out) == []
        write_atomic(out, b"mine\n")  # a build beside it finishes without touching its file
        assert live.read_bytes() == b"half of a model" and out.read_bytes() == b"mine\n"
    finally:
        holder.communicate("")
    assert remove_stale_temps(out) == [live]  # its writer died: the lock is gone with it


def test_C11_writers_hold_the_lock_until_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.onnx"
    seen: list[list[Path]] = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        seen.append(remove_stale_temps(out))  # another process cleaning up right now, pid unseen
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr("cnnspec.fsutil._running", lambda pid: False)
    write_atomic(out, b"model\n")
    assert seen == [[]] and out.read_bytes() == b"model\n" and _temps(out) == []


def test_C3_a_long_output_name_gets_a_shortened_temp_name(tmp_path: Path) -> None:
    out = tmp_path / ("n" * 250 + ".onnx")
    names: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        names.append(Path(src).name)
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", replace)
        write_atomic(out, b"x")
    assert out.read_bytes() == b"x" and len(names[0]) <= 255
    assert names[0].startswith("." + "n" * 200) and names[0].endswith(".tmp")
