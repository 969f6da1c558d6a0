"""``cnnspec build``: the torch target, the manifest of generated files and ``--check``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.cli import main

ROOT = Path(__file__).parents[1]


def test_generated_files_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--check", "--manifest", str(ROOT / "generated" / "manifest")]) == 0
    assert "up to date" in capsys.readouterr().out


KEPT = ("lenet5", "vgg16", "resnet18", "cnn1d_example")  # what these tests change or must not name


def _copy_project(tmp_path: Path) -> Path:
    """The zoo and its generated files, with a manifest of the :data:`KEPT` entries only (the whole manifest
    is checked by ``test_generated_files_are_up_to_date``; rebuilding it three times took 30 s)."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "generated", tmp_path / "generated")
    manifest = tmp_path / "generated" / "manifest"
    lines = manifest.read_text().splitlines()
    kept = [line for line in lines if line.startswith("#") or line.split()[0] in {f"specs/{n}.yaml" for n in KEPT}]
    assert {line.split()[0] for line in kept if not line.startswith("#")} == {f"specs/{n}.yaml" for n in KEPT}
    manifest.write_text("\n".join(kept) + "\n")
    return manifest


def test_check_names_stale_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _copy_project(tmp_path)
    stale = tmp_path / "generated" / "lenet5.py"
    stale.write_text(stale.read_text().replace("nn.Sigmoid()", "nn.ReLU()", 1))
    (tmp_path / "generated" / "vgg16.py").unlink()
    before = stale.read_bytes()

    assert main(["build", "--check", "--manifest", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "generated/lenet5.py: stale" in err
    assert "generated/vgg16.py: missing" in err
    assert "resnet18" not in err
    assert stale.read_bytes() == before  # --check writes nothing

    assert main(["build", "--manifest", str(manifest)]) == 0  # rebuild every entry
    assert main(["build", "--check", "--manifest", str(manifest)]) == 0
    assert stale.read_bytes() == (ROOT / "generated" / "lenet5.py").read_bytes()


def test_check_sees_a_changed_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _copy_project(tmp_path)
    spec = tmp_path / "specs" / "cnn1d_example.yaml"
    spec.write_text(spec.read_text().replace("num_classes: 4", "num_classes: 5"))
    assert main(["build", "--check", "--manifest", str(manifest)]) == 1
    assert "generated/cnn1d_example.py: stale" in capsys.readouterr().err


def test_bad_manifest_line_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "generated" / "manifest"
    manifest.parent.mkdir()
    manifest.write_text("# comment\nspecs/x.yaml --target torch\n")
    assert main(["build", "--check", "--manifest", str(manifest)]) == 1
    assert f"{manifest}:2:1: error:" in capsys.readouterr().err


def test_build_one_spec_and_check_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.py"
    spec = str(ROOT / "specs" / "resnet18.yaml")
    assert main(["build", spec, "--target", "torch", "-o", str(out), "--set", "num_classes=10"]) == 0
    text = out.read_text()
    assert "def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:" in text
    assert main(["build", spec, "-o", str(out), "--set", "num_classes=10", "--check"]) == 0
    assert main(["build", spec, "-o", str(out), "--check"]) == 1
    assert f"{out}: stale" in capsys.readouterr().err


def test_unknown_target_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(ROOT / "specs" / "lenet5.yaml")
    assert main(["build", spec, "--target", "tensorflow", "-o", str(tmp_path / "x")]) == 2
    assert "unknown target `tensorflow`" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_generated_modules_pass_ruff_with_default_rules() -> None:
    files = sorted(str(p) for p in (ROOT / "generated").glob("*.py"))
    assert len(files) >= 10
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_spec_name_with_any_character_builds_and_pickles() -> None:
    """The name goes into the generated module's name: a NUL or a dot in it must not break the import."""
    import pickle

    import torch

    from cnnspec.compile.torch.loader import build_module
    from cnnspec.frontend import analyse_text

    graph = analyse_text('name: "odd.fl\\0t"\ninput: [7]\nlayers: [linear: {out: 3}]\n', "odd.yaml")
    model = build_module(graph)
    assert type(model).__module__.startswith("cnnspec_generated.odd_fl_t_")
    assert tuple(pickle.loads(pickle.dumps(model))(torch.zeros(1, 7)).shape) == (1, 3)
