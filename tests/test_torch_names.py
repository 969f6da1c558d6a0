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
from cnnspec.errors import SpecError
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
    # values fall back to numbers (or to extra constructor arguments) checked against the analysis
    assert "nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)" in text
    assert "nn.Conv2d(in_channels, conv1_out_channels, kernel_size=3, stride=conv1_stride," in text
    assert "Basic(128, 256, stride=2, downsample=True, conv1_out_channels=256, conv1_stride=2)" in text
    assert "self.bn1 = nn.BatchNorm2d(conv1_out_channels)" in text
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


@pytest.mark.parametrize("param", ["class", "self", "torch", "print", "_x"])
def test_hostile_param_names_are_refused(tmp_path: Path, param: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\nparams: {{{param}: 3}}\ninput: [1, 8, 8]\n"
                    f"layers:\n  - conv: {{out: ${param}, kernel: 3}}\n")
    try:
        graph = analyse_file(spec)
    except SpecError:
        return  # the front end refused it already
    with pytest.raises(SpecError, match="cannot be a Python parameter name"):
        render_source(graph)


@pytest.mark.parametrize("arg", ["import", "self", "x", "len", "a b"])
def test_hostile_block_arguments_are_refused(arg: str) -> None:
    graph = _graph()
    block = next(s for s in graph.root.scopes() if s.kind == "block")
    assert block.block is not None
    object.__setattr__(block.block, "args", {**block.block.args, arg: 1})
    with pytest.raises(SpecError, match=r"argument of block 'basic'"):
        render_source(graph)
