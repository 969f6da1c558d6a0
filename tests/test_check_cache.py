"""``check``'s result cache (``cnnspec/commands/check_cache.py``): a file that passed is not analysed again
until it, a file it imports (also through a retargeted symbolic link), ``--set``/``--input`` or cnnspec
changes; errors are never cached; a cache that cannot be written changes nothing; ``--no-cache`` and
``CNNSPEC_NO_CACHE`` turn it off; a hit loads neither the op registry nor the front end's later stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec import frontend
from cnnspec.cli import main
from cnnspec.commands import check_cache
from cnnspec.frontend import analysis, read, syntax

ROOT = Path(__file__).parents[1]
UNIT = "blocks:\n  unit:\n    layers: [{conv: {out: 4, kernel: 3}}, relu]\n"
SPEC = "name: net\nparams: {width: 2}\ninput: [1, 8, 8]\nuse: [unit.yaml]\nlayers:\n  - unit\n  - flatten\n" \
       "  - linear: {out: $width}\n"


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``cnnspec check ARGS`` in ``tmp_path/work`` with the cache on in ``tmp_path/cache``; returns
    (exit status, stdout, stderr, how many files the front end read)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("CNNSPEC_NO_CACHE")
    monkeypatch.setenv("CNNSPEC_CACHE_DIR", str(tmp_path / "cache"))
    reads: list[str] = []
    real_load_text = read.load_text

    def counting(text: str, file: str = "<string>"):
        reads.append(file)
        return real_load_text(text, file)

    monkeypatch.setattr("cnnspec.frontend.read.load_text", counting)

    def run(*args: str) -> tuple[int, str, str, int]:
        reads.clear()
        code = main(["check", *args])
        out, err = capsys.readouterr()
        return code, out, err, len(reads)

    return run


def _write(name: str, text: str) -> None:
    Path(name).write_text(text)


def test_a_passing_file_is_analysed_once(cached) -> None:
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    first = cached("net.yaml")
    assert first[:3] == (0, "net.yaml: ok (330 params, 1,584 MACs)\n", "")
    assert first[3] == 2  # the spec and its import
    assert cached("net.yaml") == (*first[:3], 0)
    assert cached("--format", "json", "net.yaml")[1] == cached("--no-cache", "--format", "json", "net.yaml")[1]


def test_a_changed_import_is_analysed_again(cached) -> None:
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    assert cached("net.yaml")[0] == 0
    _write("unit.yaml", UNIT.replace("kernel: 3", "kernel: 9"))
    code, out, err, reads = cached("net.yaml")
    assert (code, out, reads) == (1, "", 2)
    assert err == ("unit.yaml:3:38: error: layer `0.0` (conv): kernel 9x9 is larger than its 8x8 input; the output "
                   "would be empty\n")


def test_a_retargeted_link_is_analysed_again(cached) -> None:
    _write("small.yaml", UNIT)
    _write("large.yaml", UNIT.replace("out: 4", "out: 8"))
    os.symlink("small.yaml", "unit.yaml")
    _write("net.yaml", SPEC)
    assert cached("net.yaml")[1] == "net.yaml: ok (330 params, 1,584 MACs)\n"
    os.remove("unit.yaml")
    os.symlink("large.yaml", "unit.yaml")
    assert cached("net.yaml")[1:] == ("net.yaml: ok (658 params, 3,168 MACs)\n", "", 2)


def test_options_are_part_of_the_key(cached) -> None:
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    assert cached("net.yaml")[1] == "net.yaml: ok (330 params, 1,584 MACs)\n"
    assert cached("--set", "width=3", "net.yaml")[1:] == ("net.yaml: ok (475 params, 1,728 MACs)\n", "", 2)
    assert cached("--input", "1,10,10", "net.yaml")[1:] == ("net.yaml: ok (554 params, 2,816 MACs)\n", "", 2)
    assert cached("--set", "width=3", "net.yaml")[3] == 0


def test_errors_are_never_cached(cached, tmp_path: Path) -> None:
    _write("net.yaml", "name: net\ninput: [1, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 9}\n")
    first = cached("net.yaml")
    assert first[0] == 1 and first[3] == 1
    assert cached("net.yaml") == first
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_an_unwritable_cache_changes_nothing(cached, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blocked").write_text("a file where the cache's directory would be\n")
    monkeypatch.setenv("CNNSPEC_CACHE_DIR", str(tmp_path / "blocked"))
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    assert cached("net.yaml") == (0, "net.yaml: ok (330 params, 1,584 MACs)\n", "", 2)
    assert cached("net.yaml")[3] == 2


def test_a_damaged_entry_is_a_miss(cached, tmp_path: Path) -> None:
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    cached("net.yaml")
    (entry,) = (tmp_path / "cache").rglob("*.json")
    for damage in ("not json", "[]", json.dumps({"version": 1, "files": {"/x": 3}})):
        entry.write_text(damage)
        assert cached("net.yaml") == (0, "net.yaml: ok (330 params, 1,584 MACs)\n", "", 2)


def test_switched_off(cached, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write("unit.yaml", UNIT)
    _write("net.yaml", SPEC)
    assert cached("--no-cache", "net.yaml")[3] == 2
    monkeypatch.setenv("CNNSPEC_NO_CACHE", "1")
    assert cached("net.yaml")[3] == 2
    assert not (tmp_path / "cache").exists()


def test_where_the_cache_lives() -> None:
    assert check_cache.cache_root({"CNNSPEC_CACHE_DIR": "/c", "HOME": "/h"}) == Path("/c")
    assert check_cache.cache_root({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/cnnspec")
    assert check_cache.cache_root({"HOME": "/h"}) == Path("/h/.cache/cnnspec")
    assert check_cache.cache_root({}) is None
    assert check_cache.cache_root({"CNNSPEC_NO_CACHE": "1", "CNNSPEC_CACHE_DIR": "/c"}) is None
    assert check_cache.cache_root({"CNNSPEC_NO_CACHE": "0", "CNNSPEC_CACHE_DIR": "/c"}) == Path("/c")


def test_the_fingerprint_follows_the_code(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "conv.py").write_text("RULE = 1\n")
    before = check_cache.fingerprint(tmp_path)
    assert check_cache.fingerprint(tmp_path) == before
    (tmp_path / "ops" / "conv.py").write_text("RULE = 22\n")
    assert check_cache.fingerprint(tmp_path) != before


def test_the_fingerprint_follows_the_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "site" / "validator").mkdir(parents=True)
    (tmp_path / "site" / "validator" / "__init__.py").write_text("VERSION = '2.0'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(check_cache, "LIBRARIES", ("validator", "not_installed_anywhere"))
    before = check_cache.fingerprint(tmp_path / "code")
    (tmp_path / "site" / "validator" / "__init__.py").write_text("VERSION = '2.11'\n")  # an upgrade
    assert check_cache.fingerprint(tmp_path / "code") != before


def test_a_new_fingerprint_removes_the_old_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "check" / "0123456789abcdef"
    old.mkdir(parents=True)
    (old / "entry.json").write_text("{}")
    kept = tmp_path / "check" / "notes"
    kept.mkdir()
    cache = check_cache.CheckCache(tmp_path, {"overrides": None, "input_shape": None})
    cache.store(tmp_path / "net.yaml", {}, check_cache.Passed("spec", 1, 2))
    assert sorted(p.name for p in (tmp_path / "check").iterdir()) == sorted([cache.directory.name, "notes"])


def test_the_front_end_names_resolve_lazily() -> None:
    homes = {"load_file": read, "load_text": read, "is_library": syntax}
    for name in frontend.__all__:
        assert getattr(frontend, name) is getattr(homes.get(name, analysis), name)
    with pytest.raises(AttributeError):
        frontend.no_such_name  # noqa: B018


@pytest.mark.slow
def test_a_hit_loads_no_op(tmp_path: Path) -> None:
    env = {**os.environ, "CNNSPEC_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("CNNSPEC_NO_CACHE")
    probe = ("import sys; from cnnspec.cli import main; code = main(['check', 'specs/']); "
             "print(code, sorted(m for m in sys.modules if m.startswith(('cnnspec.ops', 'pydantic', 'cnnspec.frontend.'))))")
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                           check=True)
            for _ in range(2)]
    cold, warm = (r.stdout.splitlines()[-1] for r in runs)
    assert "cnnspec.ops.conv" in cold and "pydantic" not in cold  # check never imports pydantic
    assert warm == "0 ['cnnspec.frontend.read']"
    assert runs[0].stdout.splitlines()[:-1] == runs[1].stdout.splitlines()[:-1]
