"""Nothing a spec contains becomes code: names are validated, strings go through ``repr``, ``$expressions``
are whitelisted. Hostile input is either refused with a located one-line error or ends up inert, which the
tests check on the AST of the generated module."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest
from torch import nn

from cnnspec.cli import main
from cnnspec.compile.torch import build_module, names, render_source
from cnnspec.frontend import analyse_file
from cnnspec.ir import Graph

ROOT = Path(__file__).parents[1]
HOSTILE = 'x"""; import os; os.system("rm -rf /") #\\\n\'\'\'\x00 \u2028 end"'


def _graph(name: str = "resnet18") -> Graph:
    graph = analyse_file(ROOT / "specs" / f"{name}.yaml", input_shape=(3, 32, 32) if name == "resnet18" else None)
    graph.source = f"specs/{name}.yaml"
    return graph


def _shape(tree: ast.Module) -> str:
    """The AST with every string blanked (docstrings, and the spec's path in a constructor's refusal of an
    argument): the structure the templates produce."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def _docstrings(tree: ast.Module) -> list[str]:
    return [ast.get_docstring(n, clean=False) or "" for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef))]


def test_module_attribute_list_covers_torch() -> None:
    public = {a for a in dir(nn.Module) if not a.startswith("_")} | {"training"}
    assert public <= names.MODULE_ATTRS


def test_hostile_strings_stay_inside_string_literals() -> None:
    benign, hostile = _graph(), _graph()
    hostile.description = HOSTILE
    hostile.source = HOSTILE + ".yaml"
    text = render_source(hostile)
    assert _shape(ast.parse(text)) == _shape(ast.parse(render_source(benign)))
    tree = ast.parse(text)
    module_doc = ast.get_docstring(tree, clean=False)
    assert module_doc is not None and module_doc.startswith(f"resnet18: {HOSTILE}\n")
    assert HOSTILE in _docstrings(tree)  # the root class docstring, verbatim
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    assert "import os" not in " ".join(t.string for t in tokens if t.type != tokenize.STRING)  # only in literals


def test_generated_module_holds_only_template_statements() -> None:
    graph = _graph("convnext_tiny")
    graph.name = 'convnext"; import os #'
    tree = ast.parse(render_source(graph))
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] == ["import torch", "from torch import nn"]
    kinds = {type(stmt).__name__ for stmt in tree.body[1:]}
    assert kinds <= {"Import", "ImportFrom", "Assign", "ClassDef", "FunctionDef"}
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes[-1] == "ConvnextImportOs" and all(c.isidentifier() for c in classes)
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not {c for c in calls if c.split(".")[0] in {"os", "eval", "exec", "__import__", "open"}}


@pytest.mark.parametrize("raw", ["$__import__('os').system('x')", "$width.__class__", "$width if 1 else 2",
                                 "$[c for c in ()]", "$width; import os"])
def test_hostile_expressions_are_never_emitted(raw: str) -> None:
    graph = _graph()
    for node in graph.nodes:
        if node.name == "conv1":  # the stem's conv and every block's first conv: as if the spec wrote `raw`
            object.__setattr__(node, "written", {**node.written, "out": raw, "stride": raw})
    text = render_source(graph)
    assert "__import__" not in text and "__class__" not in text and "import os" not in text
    # values fall back to numbers (or to extra constructor arguments) checked against the analysis; the
    # calls as ast.unparse writes them, one line each however long lines are split
    calls = ast.unparse(ast.parse(text))
    assert "nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)" in calls
    assert "nn.Conv2d(in_channels, conv1_out_channels, kernel_size=3, stride=conv1_stride," in calls
    assert "Basic(128, 256, stride=2, downsample=True, conv1_out_channels=256, conv1_stride=2)" in calls
    assert "self.bn1 = nn.BatchNorm2d(conv1_out_channels)" in calls
    model = build_module(graph)
    assert sum(p.numel() for p in model.parameters()) == graph.root.total_params


@pytest.mark.parametrize(("layer", "message"), [
    ("name: _hidden", "starts with an underscore"),
    ("name: forward", "forward"),
    ("name: class", "keyword"),
    ("name: \"a'b\"", "identifier"),
    ("name: \"x\\ny\"", "identifier"),
    ("name: __dict__", "underscore"),
])
def test_hostile_layer_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], layer: str,
                                         message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\ninput: [1, 8, 8]\nlayers:\n  - conv: {{out: 2, kernel: 3, {layer}}}\n")
    out = tmp_path / "bad.py"
    assert main(["build", str(spec), "--target", "torch", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:4:") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# --- names check accepts are built (issue 14 item 3, issue 10 item 8): mangled, never refused ------------------

NAMES = """\
name: sc
params: {out: 3, class: 2, print: 1, self: 2, assign: 4, SOBEL_WEIGHT: 4, Sc: 1, lambda: 2, _x: 1, out_: 2}
input: [1, 8, 8]
blocks:
  unit:
    args: {out: 2, class: 1, x: 3, __init__: 1}
    layers: [conv: {out: $out, kernel: $x, padding: $class, groups: $__init__}, relu]
  class:
    layers: [conv: {out: $_x, kernel: 1}]
layers:
  - conv: {weights: [[1, 0, -1], [2, 0, -2], [1, 0, -1]], padding: 1, trainable: false, name: sobel}
  - conv: {out: $assign, kernel: 1}
  - unit: {out: "$out + $self + $out_ + 1", class: $print}
  - unit: {out: $SOBEL_WEIGHT, x: "$lambda + 1", class: 2, __init__: 2}
  - class
  - conv: {out: $Sc, kernel: 1}
"""


def test_python_names_mangle_only_what_python_refuses() -> None:
    assert names.python_names(["width", "out", "class", "out_", "_x", "__init__", "a-b", "1a", "\u00e9", "x", "len"]) == {
        "width": "width", "out_": "out_", "out": "out_2", "class": "class_", "_x": "x_", "__init__": "init_",
        "a-b": "a_b_", "1a": "arg_1a_", "\u00e9": "arg_", "x": "x_2", "len": "len_"}


def test_params_and_block_arguments_python_refuses_are_mangled_and_equal_onnx(tmp_path: Path) -> None:
    """Params and block arguments named like keywords, builtins, the generated code's names, a constant
    (`SOBEL_WEIGHT`, D3) or the model's class (`Sc`): ``check`` accepts them, so the torch module must run
    and compute what onnxruntime computes with the same weights."""
    import numpy as np
    import onnxruntime as ort
    import torch

    import cnnspec

    spec = tmp_path / "sc.yaml"
    spec.write_text(NAMES)
    model = cnnspec.load(spec)
    source = model.to_source()
    assert ("    def __init__(\n        self,\n        out_2: int = 3,\n        class_: int = 2,\n        print_: int = 1,\n"
            "        self_: int = 2,\n        assign_: int = 4,\n        SOBEL_WEIGHT: int = 4,\n        Sc: int = 1,\n"
            "        lambda_: int = 2,\n        x_: int = 1,\n        out_: int = 2,\n    ) -> None:\n") in source
    assert "self.add_module('2', Unit(assign_, out_2=out_2 + self_ + out_ + 1, class_=print_))" in source
    assert "assign(self.sobel.weight, SOBEL_WEIGHT2, trainable=False)" in source
    net = model.to_torch().eval()
    assert torch.equal(net.sobel.weight[0, 0], torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]))
    model.to_onnx(tmp_path / "sc.onnx", module=net)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(tmp_path / "sc.onnx"), providers=["CPUExecutionProvider"])
    [got] = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert got.shape == (2, 1, 10, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    wider = model.to_torch(out=5, assign=6)  # the spec's names reach the mangled constructor parameters
    assert wider.get_submodule("1").out_channels == 6 and wider.get_submodule("2").get_submodule("0").out_channels == 10


@pytest.mark.parametrize("name", ["class", "self", "torch", "print", "_x", "__class__", "assign", "x", "len", "Net"])
def test_every_param_name_check_accepts_builds(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(f"name: net\nparams: {{{name}: 3}}\ninput: [1, 8, 8]\nblocks:\n  {name}:\n    args: {{{name}: 2}}\n"
                    f"    layers: [conv: {{out: ${name}, kernel: 3}}]\nlayers: [conv: {{out: ${name}, kernel: 1}}, {name}]\n")
    assert main(["check", str(spec)]) == 0
    assert main(["build", str(spec), "--target", "torch", "-o", str(tmp_path / "net.py"), "-q"]) == 0
    import torch

    assert build_module(analyse_file(spec))(torch.zeros(1, 1, 8, 8)).shape == (1, 2, 6, 6)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("layer", ["out", "print", "self", "assign", "x", "nn", "torch", "SOBEL_WEIGHT", "Net", "super"])
def test_every_layer_name_check_accepts_builds_and_keeps_its_state_dict_key(tmp_path: Path, layer: str) -> None:
    import cnnspec

    spec = tmp_path / "net.yaml"
    spec.write_text(f"name: net\ninput: [1, 8, 8]\nlayers:\n  - conv: {{weights: [[1, 0], [0, 1]], trainable: false, "
                    f"name: sobel}}\n  - conv: {{out: 2, kernel: 1, name: {layer}}}\n  - relu\n  - conv: {{out: 2, kernel: 1}}\n")
    net = cnnspec.load(spec).to_torch()
    assert list(net.state_dict()) == ["sobel.weight", f"{layer}.weight", f"{layer}.bias", "3.weight", "3.bias"]
    import torch

    assert net(torch.ones(1, 1, 8, 8)).shape == (1, 2, 7, 7)


def test_a_layer_named_like_a_keyword_is_refused_by_check_as_by_the_build(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\ninput: [1, 8, 8]\nlayers: [conv: {out: 2, kernel: 1, name: class}]\n")
    line = f"{spec}:3:42: error: layer name `class` is a Python keyword\n"
    assert main(["check", str(spec)]) == 1 and capsys.readouterr().err == line
    assert main(["build", str(spec), "--target", "torch", "-o", str(tmp_path / "n.py")]) == 1
    assert capsys.readouterr().err == line and not (tmp_path / "n.py").exists()
