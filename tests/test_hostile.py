"""Hostile specs (issue 7): each refused quickly, with one located line, exit 1, and nothing run or built.

Alias/anchor bombs, nesting 100,000 levels deep, 10^12 channels (reported by the analysis, refused by the
torch and ONNX builds above the size limit), names that would inject code, ``$`` references to anything
but a declared parameter, imports that cycle or leave the spec's directory (also through a symlink); then
the regressions the fuzzer found (``tools/fuzzcases.py``). ``tests/broken/`` (``test_errors.py``) holds
the catalogue of ordinary mistakes; these are the attacks."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cnnspec
from cnnspec.cli import main
from cnnspec.compile.limits import human, parse_size, weight_bytes
from cnnspec.errors import SpecError
from cnnspec.frontend import analyse_file
from cnnspec.ops.shape import conv_length, projection_stride

ROOT = Path(__file__).resolve().parents[1]
QUICK = 30.0  # seconds: a hang guard, not a benchmark (these take ~0.05 s; tools/hostile_corpus.py times them)


def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str | bytes,
          name: str = "spec.yaml", argv: tuple[str, ...] = ("check",)) -> str:
    """Run ``cnnspec <argv> name`` on ``text`` from ``tmp_path``; asserts exit 1, one line, quickly."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    start = time.perf_counter()
    code = main([*argv, name])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert seconds < QUICK, f"{seconds:.2f} s"
    return err.rstrip("\n")


SPEC = "name: h\nparams: {{w: 4}}\ninput: [1, 8, 8]\nlayers:\n  - conv: {{out: {out}, kernel: 3, name: {name}}}\n"


# --- YAML bombs --------------------------------------------------------------------------------------

def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path, monkeypatch, capsys) -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10^10 strings
    text = "name: bomb\n" + "\n".join(levels) + "\ninput: [1, 8, 8]\nlayers: [relu]\n"
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:2:5: error: YAML anchors and aliases (&name, *name) are not supported: write the value "
        "out, or put repeated layers in a block")


def test_merge_key_alias_is_refused(tmp_path, monkeypatch, capsys) -> None:
    text = "name: m\ninput: [1, 8, 8]\nlayers:\n  - conv: {<<: *base, out: 4}\n"
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:4:16: error: YAML anchors and aliases (&name, *name) are not supported: write the value "
        "out, or put repeated layers in a block")


@pytest.mark.parametrize(("open_", "close", "col"), [("[", "]", 72), ("{a: ", "}", 261)])
def test_nesting_100000_levels_deep(tmp_path, monkeypatch, capsys, open_: str, close: str, col: int) -> None:
    text = "name: deep\ninput: [1, 8, 8]\nlayers: " + open_ * 100_000 + close * 100_000 + "\n"
    assert check(tmp_path, monkeypatch, capsys, text) == (
        f"spec.yaml:3:{col}: error: the spec nests deeper than 64 levels")


def test_a_file_over_4_mib_is_not_parsed(tmp_path, monkeypatch, capsys) -> None:
    text = "name: big\ninput: [1, 8, 8]\nlayers:\n" + "  - relu\n" * 600_000
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:1:1: error: the file is 5,400,035 bytes; specs are limited to 4,194,304 bytes")


def test_python_tags_are_refused_and_nothing_runs(tmp_path, monkeypatch, capsys) -> None:
    marker = tmp_path / "PWNED"
    text = f'name: !!python/object/apply:os.system ["touch {marker}"]\ninput: [1, 8, 8]\nlayers: [relu]\n'
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:1:7: error: YAML tags such as `!!python/object/apply:os.system` are not supported: write plain "
        "values")
    assert not marker.exists()


# --- 10^12 channels: analysed, not built ----------------------------------------------------------------

HUGE = "name: huge\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 1000000000000, kernel: 3}\n  - relu\n"
HUGE_MESSAGE = ("spec.yaml:4:5: error: the network holds 28,000,000,000,000 parameters and buffers (101.8 TiB), "
                "over the {target} build limit of {limit}; raise it with --max-bytes or $CNNSPEC_MAX_BYTES")


def test_huge_network_is_analysed(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(HUGE)
    assert main(["summary", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Params: 28,000,000,000,000 (trainable 28,000,000,000,000, frozen 0); buffers: 0" in out
    assert "weights: 112.00 TB" in out
    assert weight_bytes(analyse_file("spec.yaml"))[:2] == (112_000_000_000_000, 28_000_000_000_000)


@pytest.mark.slow
@pytest.mark.parametrize(("target", "limit"), [("torch", "4.0 GiB"), ("onnx", "16.0 GiB")])
def test_huge_network_is_not_built(tmp_path, monkeypatch, capsys, target: str, limit: str) -> None:
    line = check(tmp_path, monkeypatch, capsys, HUGE, argv=("build", "--target", target, "-o", "out"))
    assert line == HUGE_MESSAGE.format(target=target, limit=limit)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_limit_is_configurable(tmp_path, monkeypatch, capsys) -> None:
    """--max-bytes, then $CNNSPEC_MAX_BYTES, then the default; vgg16's weights are 527.7 MiB."""
    vgg = str(ROOT / "specs" / "vgg16.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["build", vgg, "--target", "torch", "-o", "v.py", "--max-bytes", "500MiB"]) == 1
    assert capsys.readouterr().err == (
        f"{vgg}:47:11: error: the network holds 138,357,544 parameters and buffers (527.7 MiB), over the torch "
        "build limit of 500.0 MiB; raise it with --max-bytes or $CNNSPEC_MAX_BYTES\n")
    monkeypatch.setenv("CNNSPEC_MAX_BYTES", "500M")
    assert main(["build", vgg, "--target", "torch", "-o", "v.py"]) == 1
    assert "over the torch build limit of 500.0 MiB" in capsys.readouterr().err
    assert main(["build", vgg, "--target", "torch", "-o", "v.py", "--max-bytes", "1GiB"]) == 0
    assert (tmp_path / "v.py").is_file()
    monkeypatch.setenv("CNNSPEC_MAX_BYTES", "lots")
    assert main(["build", vgg, "--target", "torch", "-o", "v.py"]) == 2
    assert capsys.readouterr().err.endswith(
        "cnnspec build: error: $CNNSPEC_MAX_BYTES: expected a size such as 4GiB, 512MiB or 1000000, got 'lots'\n")


@pytest.mark.slow
def test_the_api_refuses_too(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(HUGE)
    model = cnnspec.load(tmp_path / "spec.yaml")
    with pytest.raises(SpecError, match=r"over the torch build limit of 4\.0 GiB"):
        model.to_torch()
    with pytest.raises(SpecError, match=r"over the onnx build limit of 16\.0 GiB"):
        model.to_onnx(tmp_path / "huge.onnx")
    lenet = cnnspec.load(ROOT / "specs" / "lenet5.yaml")
    with pytest.raises(SpecError, match=r"61,706 parameters and buffers \(241\.0 KiB\), over the torch build "
                       r"limit of 1\.0 KiB"):
        lenet.to_torch(max_bytes=1024)
    assert not (tmp_path / "huge.onnx").exists()


def test_sizes() -> None:
    assert [parse_size(t) for t in ("4GiB", "4G", "512MiB", "1.5k", "1000")] == [4 << 30, 4 << 30, 512 << 20,
                                                                                  1536, 1000]
    assert [human(n) for n in (1000, 1024, 4 << 30, 10**30)] == ["1,000 B", "1.0 KiB", "4.0 GiB", "827,180.6 YiB"]


def test_the_layer_past_the_limit_is_located_when_it_names_its_output(tmp_path, monkeypatch, capsys) -> None:
    # the layer that crosses MAX_NODES has `as:`: its error is at the layer (it raised AttributeError before)
    monkeypatch.setattr("cnnspec.frontend.elaborate.MAX_NODES", 3)
    text = "name: many\ninput: [1, 8, 8]\nlayers:\n  - relu\n  - relu\n  - relu\n  - relu: {as: last}\n"
    assert check(tmp_path, monkeypatch, capsys, text) == "spec.yaml:7:5: error: the network has more than 3 layers"


# --- names that would inject code ----------------------------------------------------------------------

IDENT = "is not a plain identifier: use ASCII letters, digits, _ and - (at most 64 characters)"


@pytest.mark.parametrize(("name", "message"), [
    ('"a\'b"', f"layer name `a'b` {IDENT}"),
    ("'a\"b'", f'layer name `a"b` {IDENT}'),
    ('"conv\\nimport os"', f"layer name `conv\\nimport os` {IDENT}"),
    ('"\u0441onv"', ("layer name `\\u0441onv` contains the non-ASCII character U+0441 (CYRILLIC SMALL LETTER ES); "
                    "use ASCII letters, digits and _")),
    ('"\uff43onv"', ("layer name `\\uff43onv` contains the non-ASCII character U+FF43 (FULLWIDTH LATIN SMALL "
                    "LETTER C); use ASCII letters, digits and _")),
    ('"conv\u200b"', ("layer name `conv\\u200b` contains the non-ASCII character U+200B (ZERO WIDTH SPACE); "
                     "use ASCII letters, digits and _")),
    ("__class__", "layer name `__class__` starts with a double underscore, which Python reserves"),
    ("import", "layer name `import` is a Python keyword"),
    ("match", "layer name `match` is a Python keyword"),
    ("forward", "layer name `forward` would shadow `forward` of PyTorch's nn.Module"),
])
def test_hostile_layer_names(tmp_path, monkeypatch, capsys, name: str, message: str) -> None:
    assert check(tmp_path, monkeypatch, capsys, SPEC.format(out=4, name=name)) == f"spec.yaml:5:37: error: {message}"


@pytest.mark.slow
def test_spec_name_and_description_cannot_inject_code(tmp_path: Path) -> None:
    """The spec's name and description reach the generated module's docstrings and class name: escaped."""
    marker = tmp_path / "PWNED"
    payload = f'x\\"\\"\\"\\nimport os\\nos.system(\'touch {marker}\')\\n\\"\\"\\"\\\\'
    spec = tmp_path / "evil.yaml"
    spec.write_text(f'name: "{payload}"\ndescription: "{payload}"\ninput: [1, 8, 8]\nlayers: [relu]\n')
    model = cnnspec.load(spec)
    source = model.to_source()
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert "os" not in names and "nn" in names  # the payload stays inside string literals
    assert model.to_torch().__class__.__name__.startswith("XImportOsOsSystemTouch")
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "code"), [
    ("name: d\nparams: {__class__: 3}\ninput: [1, 8, 8]\nlayers: [conv: {out: $__class__, kernel: 1}]\n",
     "def __init__(self, class_: int = 3) -> None:"),
    ("name: d\ninput: [1, 8, 8]\nblocks:\n  __init__:\n    layers: [relu]\nlayers:\n  - __init__\n", "class Init(nn.Sequential):"),
])
def test_names_python_reserves_are_mangled_in_the_python_backend(tmp_path, monkeypatch, capsys, spec: str,
                                                                  code: str) -> None:
    """``check`` accepts them, so the torch backend writes them as names Python allows (issue 14)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(spec)
    assert main(["build", "--target", "torch", "-o", "m.py", "-q", "spec.yaml"]) == 0
    assert code in (tmp_path / "m.py").read_text() and capsys.readouterr().err == ""


# --- $ references ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("out", "message"), [
    ("$__class__", "`$__class__` is not defined (defined here: $w)"),
    ("$os", "`$os` is not defined (defined here: $w)"),
    ('"$w.__class__"', "cannot read `.__class__` in expression `$w.__class__`"),
    ('"$w(1)"', "unexpected `(` in expression `$w(1)`"),
    ("\"__import__('os').system('true') + $w\"",
     "cannot read `__import__('` in expression `__import__('os').system('true') + $w`"),
    ('"${w}"', "cannot read `${w}` in expression `${w}`"),
    ('"$w ** 2"', "unexpected `*` in expression `$w ** 2`"),
])
def test_dollar_references_only_declared_parameters(tmp_path, monkeypatch, capsys, out: str, message: str) -> None:
    assert check(tmp_path, monkeypatch, capsys, SPEC.format(out=out, name="c")) == f"spec.yaml:5:17: error: {message}"


def test_a_block_argument_is_not_visible_outside_its_block(tmp_path, monkeypatch, capsys) -> None:
    text = ("name: d\nparams: {w: 4}\ninput: [1, 8, 8]\nblocks:\n  b:\n    args: {c: int}\n"
            "    layers: [conv: {out: $c, kernel: 1}]\nlayers:\n  - conv: {out: $c, kernel: 3}\n")
    assert check(tmp_path, monkeypatch, capsys, text) == "spec.yaml:9:17: error: `$c` is not defined (defined here: $w)"


# --- imports ----------------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/spec_dir (the spec's tree, with sub/a.yaml <-> sub/b.yaml and link -> ../outside) and tmp/outside."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "b.yaml").write_text("blocks: {}\n")
    spec_dir = tmp_path / "spec_dir"
    (spec_dir / "sub").mkdir(parents=True)
    (spec_dir / "sub" / "a.yaml").write_text("use: [b.yaml]\nblocks: {}\n")
    (spec_dir / "sub" / "b.yaml").write_text("use: [a.yaml]\nblocks: {}\n")
    (spec_dir / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (spec_dir / "sub" / "up.yaml").symlink_to(tmp_path / "outside" / "b.yaml")
    return spec_dir


OUTSIDE = ("is outside the directory of the spec being checked; imports must stay inside it (copy the file next "
           "to the spec)")


@pytest.mark.parametrize(("use", "line"), [
    ("../outside/b.yaml", f"spec.yaml:2:7: error: import `../outside/b.yaml` {OUTSIDE}"),
    ("/etc/passwd", f"spec.yaml:2:7: error: import `/etc/passwd` {OUTSIDE}"),
    ("link/b.yaml", f"spec.yaml:2:7: error: import `link/b.yaml` {OUTSIDE}"),
    ("sub/up.yaml", f"spec.yaml:2:7: error: import `sub/up.yaml` {OUTSIDE}"),
    ("sub/a.yaml", "sub/b.yaml:1:7: error: import cycle: spec.yaml -> sub/a.yaml -> sub/b.yaml -> sub/a.yaml"),
    ("spec.yaml", "spec.yaml:2:7: error: import cycle: spec.yaml -> spec.yaml"),
    ('"\\0"', "spec.yaml:2:7: error: import `\\x00` contains a NUL character; write a relative file path"),
])
def test_imports_stay_inside_and_do_not_cycle(tree, monkeypatch, capsys, use: str, line: str) -> None:
    text = f"name: d\nuse: [{use}]\ninput: [1, 8, 8]\nlayers: [relu]\n"
    assert check(tree, monkeypatch, capsys, text) == line


# --- found by the fuzzer -------------------------------------------------------------------------------

def test_integers_past_int64_are_refused(tmp_path, monkeypatch, capsys) -> None:
    """10^400 channels was an OverflowError traceback (a float of the fan-in)."""
    text = SPEC.format(out="1" + "0" * 400, name="c")
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:5:17: error: `10000000000000000000... (401 characters)` is too large: whole numbers in a spec "
        "are at most 2^63 - 1 (9,223,372,036,854,775,807)")
    assert check(tmp_path, monkeypatch, capsys, SPEC.format(out=2**63, name="c")) == (
        "spec.yaml:5:17: error: `9223372036854775808` is too large: whole numbers in a spec are at most 2^63 - 1 "
        "(9,223,372,036,854,775,807)")


def test_input_option_past_int64_is_a_usage_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC.format(out=4, name="c"))
    assert main(["summary", "spec.yaml", "--input", "1," + "9" * 5000 + ",8"]) == 2
    assert capsys.readouterr().err.startswith("cnnspec summary: error: --input sizes are at most 2^63 - 1, got `1,999")


def test_adaptive_pool_to_2_to_the_31_is_analysed_at_once(tmp_path: Path) -> None:
    """The receptive field of adaptive pooling looped over every output position: 2^31 hung `check`."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: a\ninput: [2, 64]\nlayers:\n  - adaptive_maxpool: {out: 2147483648}\n")
    start = time.perf_counter()
    graph = analyse_file(spec)
    assert time.perf_counter() - start < QUICK
    assert graph.output_shape == (2, 2**31) and graph.root.rf_size == (1,) and graph.root.rf_stride == (1,)


@pytest.mark.slow
def test_optional_shortcut_with_a_per_instance_size_builds(tmp_path: Path) -> None:
    """ResNet-50 at width 157 on a 224x1 input: the torch backend raised KeyError."""
    spec = tmp_path / "spec.yaml"
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "resnet.yaml").write_bytes((ROOT / "specs" / "blocks" / "resnet.yaml").read_bytes())
    text = (ROOT / "specs" / "resnet50.yaml").read_text()
    spec.write_text(text.replace("input: [$in_channels, 224, 224]", "input: [$in_channels, 224, 1]")
                    .replace("args: {width: 256}", "args: {width: 157}"))
    model = cnnspec.load(spec)
    module = model.to_torch()
    assert [k for k, _ in module.state_dict().items()] == [k for k, _, _ in model.graph.state_dict_keys()]
    assert sum(p.numel() for p in module.parameters()) == model.graph.root.total_params == 20_274_986


@pytest.mark.slow
def test_a_hostile_spec_through_a_real_process(tmp_path: Path) -> None:
    """As a shell sees it: exit 1, the one line on stderr, no traceback, nothing on stdout."""
    (tmp_path / "spec.yaml").write_text(HUGE)
    done = subprocess.run([sys.executable, "-m", "cnnspec", "build", "spec.yaml", "--target", "onnx", "-o", "o"],
                          cwd=tmp_path, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", HUGE_MESSAGE.format(target="onnx", limit="16.0 GiB") + "\n")


def test_unicode_line_breaks_in_a_message_are_escaped(tmp_path, monkeypatch, capsys) -> None:
    """U+0085 (NEL) and U+2028 end a line for str.splitlines and some terminals: a message carried them."""
    assert check(tmp_path, monkeypatch, capsys, '? " \\N"\n: null\n') == (
        "spec.yaml:1:3: error: unknown key ` \\x85` in the spec (keys: blocks, constraints, description, input, "
        "layers, name, outputs, params, use)")
    assert check(tmp_path, monkeypatch, capsys, SPEC.format(out=4, name='"a\\Lb"')) == (
        "spec.yaml:5:37: error: layer name `a\\u2028b` contains the non-ASCII character U+2028 (LINE SEPARATOR); "
        "use ASCII letters, digits and _")


def test_a_file_name_with_a_newline_stays_one_line(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "we\nird").mkdir()
    line = check(tmp_path, monkeypatch, capsys, SPEC.format(out="$nope", name="c"), name="we\nird/spec.yaml")
    assert line == "we\\nird/spec.yaml:5:17: error: `$nope` is not defined (defined here: $w)"


def test_a_projection_on_a_10_to_the_12_input_is_found_at_once(tmp_path: Path) -> None:
    """The projection's stride was searched up to the input length: a 10^12-long axis hung `check`."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: p\ninput: [1, 1000000000000, 6]\nlayers:\n  - residual:\n      body: [conv: {out: 4, "
                    "kernel: 3, stride: 1000000000000, padding: 1}]\n      shortcut: {projection: auto}\n")
    start = time.perf_counter()
    graph = analyse_file(spec)
    assert time.perf_counter() - start < QUICK
    downsample = next(n for n in graph.nodes if n.path == "downsample.0")
    assert downsample.attrs.stride == (10**12, 6)  # the smallest strides giving the body's 1 x 1
    assert graph.output_shape == (4, 1, 1)


def test_projection_stride_is_the_smallest_that_fits() -> None:
    for length in range(1, 120):
        for target in range(-1, 125):
            want = next((s for s in range(1, length + 1) if conv_length(length, 1, s, 0, 1) == target), None)
            assert projection_stride(length, target) == want, (length, target)


def test_a_fixed_kernel_for_a_billion_channels_is_refused_not_expanded(tmp_path, monkeypatch, capsys) -> None:
    """One fixed kernel is expanded to [out, in, *k] lists for the backends: out 10^9 exhausted memory."""
    text = "name: k\ninput: [1, 8, 8]\nlayers:\n  - conv: {weights: [[0, 1, 0], [1, -4, 1], [0, 1, 0]], out: 1000000000}\n"
    assert check(tmp_path, monkeypatch, capsys, text) == (
        "spec.yaml:4:62: error: layer 0 (conv): one fixed kernel for 1,000,000,000 (out, in) channel pairs is "
        "9,000,000,000 fixed weights; at most 10,000,000")


def test_a_stage_written_as_an_expression_is_refused(tmp_path, monkeypatch, capsys) -> None:
    """Found by the mutation fuzzer: `stage: $` passed the settings check as an expression and crashed."""
    assert check(tmp_path, monkeypatch, capsys, "name: s\ninput: [1, 8]\nlayers:\n  - stage: $\n") == (
        "spec.yaml:4:12: error: the settings of `stage` should be a mapping such as `{block: basic, repeat: 2}`, "
        "got `$`")
