"""The package as users install it: metadata without an exact torch pin, one version, the licence, the PEP 561
marker, and the JSON Schema inside the package. The slow test builds the wheel and runs ``cnnspec schema``
from a virtual environment that holds only that wheel (and, from this environment, its two dependencies)."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import cnnspec
from cnnspec._version import __version__
from cnnspec.cli import main
from cnnspec.frontend.schema import schema_text

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIPPED_SCHEMA = ROOT / "cnnspec" / "data" / "cnnspec.schema.json"


def requirements() -> dict[str, list[str]]:
    project = PYPROJECT["project"]
    return {"": project["dependencies"], **project["optional-dependencies"]}


def test_no_exact_torch_pin_in_the_metadata() -> None:
    for extra, reqs in requirements().items():
        torch = [r for r in reqs if re.match(r"torch\b", r)]
        assert all("==" not in r for r in torch), extra
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["torch"] == ["jinja2>=3.1", "torch>=2.4"]
    assert extras["source"] == ["jinja2>=3.1"]  # PyTorch source without torch
    assert "torch>=2.4" in extras["all"] and "jinja2>=3.1" in extras["all"]
    assert PYPROJECT["project"]["dependencies"] == ["pydantic>=2.6,<3", "PyYAML>=6.0"]


def test_ci_and_readme_install_the_cpu_torch_pin_before_the_package() -> None:
    for text in ((ROOT / ".ci" / "run").read_text(), (ROOT / "README.md").read_text()):
        pin = re.search(r"pip install (-q )?torch==2\.13\.0", text)
        package = re.search(r"pip install (-q )?-e '\.\[all", text)
        assert pin and package and pin.start() < package.start()


def test_one_version_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnspec._version.__version__"}
    assert cnnspec.__version__ is __version__
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert (done.value.code, capsys.readouterr().out) == (0, f"cnnspec {__version__}\n")
    onnx_model = (ROOT / "cnnspec" / "compile" / "onnx" / "model.py").read_text()
    assert "from cnnspec._version import __version__" in onnx_model


def test_licence_and_typing_marker() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]
    assert (ROOT / "LICENSE").read_text().splitlines()[:3] == ["MIT License", "", "Copyright (c) 2026 the cnnspec authors"]
    assert (ROOT / "cnnspec" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["cnnspec"]


def test_shipped_schema_is_what_cnnspec_schema_prints() -> None:
    assert SHIPPED_SCHEMA.read_text() == schema_text(), (
        "run: python -m cnnspec schema -o cnnspec/data/cnnspec.schema.json")


def _build_wheel(out: Path) -> Path:
    try:
        import setuptools

        offline = int(setuptools.__version__.split(".")[0]) >= 77
    except ImportError:
        offline = False
    isolation = ["--no-build-isolation"] if offline else []  # else pip fetches setuptools from the index
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", *isolation, "-w", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    return next(out.glob("cnnspec-*.whl"))


@pytest.mark.slow
def test_wheel_contents_and_cnnspec_schema_from_the_installed_wheel(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    assert wheel.name == f"cnnspec-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert {"cnnspec/data/cnnspec.schema.json", "cnnspec/py.typed", "cnnspec/compile/torch/templates/module.py.j2",
            f"cnnspec-{__version__}.dist-info/licenses/LICENSE"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(f"cnnspec-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert [line for line in metadata.splitlines() if re.match(r"Requires-Dist: torch\b", line)] == [
        'Requires-Dist: torch>=2.4; extra == "torch"', 'Requires-Dist: torch>=2.4; extra == "all"']

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    # pydantic and PyYAML from this environment, by path (its own .pth files, which install cnnspec in
    # editable mode here, are not read from a directory added this way)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "cnnspec"), *args], cwd=tmp_path, capture_output=True, text=True,
                              check=False, timeout=120, env={"PATH": "/usr/bin:/bin"})

    where = subprocess.run([str(python), "-c", "import cnnspec; print(cnnspec.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == f"{site}/cnnspec/__init__.py"
    schema = run("schema")
    assert (schema.returncode, schema.stdout, schema.stderr) == (0, (ROOT / "schema" / "cnnspec.schema.json").read_text(), "")
    shipped = Path(site, "cnnspec", "data", "cnnspec.schema.json").read_text()
    assert shipped == schema.stdout
    assert run("--version").stdout == f"cnnspec {__version__}\n"
