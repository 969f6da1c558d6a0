"""The YAML loader: data plus the position of every key and value, YAML 1.2 scalars, and the refusals
(duplicate keys, anchors and aliases, tags, non-string keys, deep nesting, big files, several documents)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.errors import SourcePos, SpecError
from cnnspec.frontend import read as yaml_loader
from cnnspec.frontend.read import load_file, load_text

PARSERS = {"libyaml": yaml_loader._CSafeLoader, "python": None}  # libyaml: None when PyYAML lacks it


@pytest.fixture(autouse=True, params=sorted(PARSERS))
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with libyaml's parser and with PyYAML's pure-Python one: their messages differ, ours
    must not."""
    monkeypatch.setattr(yaml_loader, "_CSafeLoader", PARSERS[request.param])
    return request.param


SPEC = """\
name: net
input: [1, 28, 28]
layers:
  - conv: {out: 6, kernel: 5}
  - relu
  - linear:
      out: 10
"""


def error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, "f.yaml")
    return str(info.value)


def test_data_and_positions() -> None:
    doc = load_text(SPEC, "net.yaml")
    assert doc.data == {"name": "net", "input": [1, 28, 28],
                        "layers": [{"conv": {"out": 6, "kernel": 5}}, "relu", {"linear": {"out": 10}}]}
    assert doc.keys[("layers",)] == (3, 1)
    assert doc.values[("input",)] == (2, 8)
    assert doc.values[("input", 2)] == (2, 16)
    assert doc.values[("layers", 0)] == (4, 5)
    assert doc.keys[("layers", 0, "conv")] == (4, 5)
    assert doc.keys[("layers", 0, "conv", "kernel")] == (4, 20)
    assert doc.values[("layers", 0, "conv", "kernel")] == (4, 28)
    assert doc.values[("layers", 1)] == (5, 5)
    assert doc.keys[("layers", 2, "linear", "out")] == (7, 7)
    assert doc.values[("layers", 2, "linear", "out")] == (7, 12)


def test_pos_falls_back_to_the_nearest_written_ancestor() -> None:
    doc = load_text(SPEC, "net.yaml")
    assert doc.pos(("layers", 0, "conv", "stride")) == SourcePos("net.yaml", 4, 11)  # unwritten: its mapping
    assert doc.pos(("layers", 0, "conv", "stride"), key=True) == SourcePos("net.yaml", 4, 5)  # its op's key
    assert doc.pos(("layers", 2, "linear"), key=True) == SourcePos("net.yaml", 6, 5)
    assert doc.pos(("nothing",)) == SourcePos("net.yaml", 1, 1)


@pytest.mark.parametrize(("text", "value"), [
    ("1e-6", 1e-6), ("1E5", 1e5), ("-2.5e-3", -2.5e-3), ("1.5", 1.5), (".5", 0.5), ("3.", 3.0),  # YAML 1.2 floats
    ("010", 10), ("+3", 3), ("-0", 0), ("0x1f", 31), ("0o17", 15),  # YAML 1.2 ints: 010 is ten, not eight
    ("1_000", "1_000"), ("1:30", "1:30"), ("2026-01-01", "2026-01-01"), ("=", "="),  # YAML 1.1 only: strings
    ("'1e-6'", "1e-6"), ('"010"', "010"), ("'true'", "true"),  # quoted: always strings
    ("true", True), ("false", False), ("yes", True), ("off", False),  # 1.1 booleans kept (see non-string keys)
    ("null", None), ("~", None), ("", None),
    ("$width * 4", "$width * 4"), ("same", "same"),
])
def test_scalars(text: str, value: object) -> None:
    result = load_text(f"v: {text}\n").data["v"]
    assert (result, type(result)) == (value, type(value))


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: error: duplicate key `a` (first written at line 1)"),
    ("a: {x: 1, y: 2, x: 3}\n", "f.yaml:1:17: error: duplicate key `x` (first written at column 5 of this line)"),
    ("a: &x 1\nb: *x\n", ("f.yaml:1:4: error: YAML anchors and aliases (&name, *name) are not supported: write the "
     "value out, or put repeated layers in a block")),
    ("a: [1]\nb: *x\n", ("f.yaml:2:4: error: YAML anchors and aliases (&name, *name) are not supported: write the "
     "value out, or put repeated layers in a block")),
    ("a: !!int 3\n", "f.yaml:1:4: error: YAML tags such as `!!int` are not supported: write plain values"),
    ("a: !custom {b: 1}\n", "f.yaml:1:4: error: YAML tags such as `!custom` are not supported: write plain values"),
    ("1: a\n", "f.yaml:1:1: error: mapping keys must be strings, but YAML reads `1` as a number: quote it (`\"1\"`)"),
    ("on: a\n", ("f.yaml:1:1: error: mapping keys must be strings, but YAML reads `on` as the boolean true: quote it "
     "(`\"on\"`)")),
    ("~: a\n", ("f.yaml:1:1: error: mapping keys must be strings, but YAML reads `~` as null: quote it "
     "(`\"~\"`)")),
    ("[a]: 1\n", "f.yaml:1:1: error: mapping keys must be plain strings, not lists or mappings"),
    ("a: 1\n---\nb: 2\n", "f.yaml:2:1: error: a spec file holds one YAML document; found a second one"),
    ("", "f.yaml:1:1: error: the file is empty; a spec is a mapping with `name`, `input` and `layers`"),
    ("# only a comment\n", ("f.yaml:1:1: error: the file is empty; a spec is a mapping with `name`, `input` and "
     "`layers`")),
    ("- a\n", "f.yaml:1:1: error: a spec is a mapping with `name`, `input` and `layers`, not a list"),
    ("just text\n", "f.yaml:1:1: error: a spec is a mapping with `name`, `input` and `layers`, not a string"),
    ("a: [1, 2\n", "f.yaml:1:4: error: YAML syntax error: this `[` is never closed"),
    ("a:\n\t- 1\n", "f.yaml:2:1: error: YAML syntax error: a tab character; YAML indents with spaces only"),
    ("a: b: c\n", ("f.yaml:1:5: error: YAML syntax error: a `key: value` is not allowed here: check the indentation, "
     "or quote a value with `: `")),
    ("a: .inf\n", "f.yaml:1:4: error: `.inf` is not a finite number; specs take finite numbers only"),
    ("a: b\x00\n", "f.yaml:1:5: error: the file contains the control character U+0000, which YAML does not allow"),
])
def test_refusals(text: str, message: str) -> None:
    assert error(text) == message


def test_alias_bomb_is_refused_at_the_first_anchor_without_expanding() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    assert error("\n".join(levels) + "\n") == ("f.yaml:1:5: error: YAML anchors and aliases (&name, *name) are not "
                                               "supported: write the value out, or put repeated layers in a block")


def test_nesting_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    deep = "a: " + "[" * 64 + "1" + "]" * 64 + "\n"
    assert error(deep) == "f.yaml:1:67: error: the spec nests deeper than 64 levels"
    ok = "a: " + "[" * 62 + "1" + "]" * 62 + "\n"
    inner = load_text(ok).data["a"]
    for _ in range(61):
        inner = inner[0]
    assert inner == [1]


def test_deep_nesting_does_not_blow_the_stack() -> None:
    assert error("a: " + "[" * 100_000 + "\n").startswith("f.yaml:1:")


def test_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match=r"^missing\.yaml:1:1: error: cannot read the file: No such file"):
        load_file(tmp_path / "missing.yaml", display="missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" * 10)
    monkeypatch.setattr(yaml_loader, "MAX_BYTES", 20)
    with pytest.raises(SpecError) as info:
        load_file(big, display="big.yaml")
    assert str(info.value) == "big.yaml:1:1: error: the file is 50 bytes; specs are limited to 20 bytes"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_file(latin, display="latin.yaml")
    assert str(info.value) == "latin.yaml:2:7: error: the file is not valid UTF-8 text (byte 0xe9); save it as UTF-8"


def test_display_name_is_used_in_messages(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("a: 1\na: 2\n")
    with pytest.raises(SpecError, match=r"^shown\.yaml:2:1: error: duplicate key"):
        load_file(spec, display="shown.yaml")


class _FsPath:
    """An ``os.PathLike`` that is not a ``pathlib.Path``: its ``str()`` is its repr."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_any_path_like_is_named_by_its_path(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("a: 1\na: 2\n")
    with pytest.raises(SpecError) as info:  # named `<..._FsPath object at 0x...>` before
        load_file(_FsPath(spec))
    assert str(info.value) == f"{spec}:2:1: error: duplicate key `a` (first written at line 1)"
