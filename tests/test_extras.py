"""With only ``pip install .`` (pydantic and PyYAML), the commands that need an extra say which one in one
line and exit 2, without a traceback; PyTorch source needs jinja2 only. The missing packages are
simulated in a subprocess whose import system refuses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXTRAS_MODULES = "torch,onnx,onnxruntime,jinja2,markupsafe,numpy,safetensors"
# refuse the named top-level modules (as when they are not installed), then run the CLI
BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Refuse())
from cnnspec.cli import main
sys.exit(main(sys.argv[2:]))
"""


def cnnspec_without(modules: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER, modules, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("args", "message"), [
    (["build", "specs/lenet5.yaml", "--target", "onnx", "-o", "{tmp}/x.onnx"],
     "cnnspec build: error: --target onnx needs the onnx extra (no module `numpy`): pip install 'cnnspec[onnx]'"),
    (["build", "specs/lenet5.yaml", "--target", "torch", "-o", "{tmp}/x.py"],
     "cnnspec build: error: --target torch needs the source extra (no module `jinja2`): pip install 'cnnspec[source]'"),
    (["build", "--check"],
     ("cnnspec build: error: checking generated/manifest needs the source extra (no module `jinja2`): "
     "pip install 'cnnspec[source]'")),
    (["run", "specs/lenet5.yaml"],
     "cnnspec run: error: running a model needs the onnx extra (no module `numpy`): pip install 'cnnspec[onnx]'"),
    (["bench", "specs/lenet5.yaml", "--runs", "1"],
     ("cnnspec bench: error: benchmarking a model needs the onnx extra (no module `numpy`): "
     "pip install 'cnnspec[onnx]'")),
])
def test_a_missing_extra_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = cnnspec_without(EXTRAS_MODULES, *(a.format(tmp=tmp_path) for a in args))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message + "\n")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_onnx_itself(tmp_path: Path) -> None:
    done = cnnspec_without("onnx", "build", "specs/lenet5.yaml", "--target", "onnx", "-o", str(tmp_path / "x.onnx"))
    assert (done.returncode, done.stderr) == (2, ("cnnspec build: error: --target onnx needs the onnx extra (no module "
                                                 "`onnx`): pip install 'cnnspec[onnx]'\n"))


def test_pytorch_source_needs_jinja2_only(tmp_path: Path) -> None:
    without = cnnspec_without("torch,onnx,onnxruntime,numpy,safetensors", "build", "specs/lenet5.yaml",
                              "--target", "torch", "-o", str(tmp_path / "a.py"))
    assert (without.returncode, without.stdout) == (0, "")
    assert without.stderr.startswith(f"wrote {tmp_path / 'a.py'} (")
    assert (tmp_path / "a.py").read_text().startswith('"""')
    with_all = cnnspec_without("nothing", "build", "specs/lenet5.yaml", "--target", "torch", "-o",
                               str(tmp_path / "b.py"))
    assert with_all.returncode == 0
    assert (tmp_path / "a.py").read_bytes() == (tmp_path / "b.py").read_bytes()


def test_check_summary_diff_schema_need_no_extra(tmp_path: Path) -> None:
    for args in (["check", "specs"], ["summary", "specs/lenet5.yaml"], ["diff", "specs/resnet18.yaml",
                 "specs/resnet34.yaml"], ["schema"], ["build", "specs/lenet5.yaml", "--target", "dot", "-o",
                 str(tmp_path / "x.dot")]):
        done = cnnspec_without(EXTRAS_MODULES, *args)
        assert (done.returncode, "Traceback" in done.stderr) == (0, False), (args, done.stderr)
