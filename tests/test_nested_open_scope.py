"""An open scope inside an open scope (``tests/data/nested_open_scope.yaml``: ``up.fuse`` in the model, and
``outer.inner`` in a block class). Each open scope is an ``nn.ModuleDict``; the inner one was emitted as
``self.up['fuse']['conv']``, which mypy types as ``nn.Module`` and refused (6 errors: not indexable, "Tensor"
not callable). It is now a local dict named once with its type: the generated module passes mypy, keeps the
spec's state_dict keys, and equals onnxruntime on cnnspec's ONNX graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_onnx_parity import randomised_module

from cnnspec.compile.onnx import export
from cnnspec.compile.torch import build_module, render_source
from cnnspec.frontend import analyse_file, analyse_text

SPEC = Path(__file__).parent / "data" / "nested_open_scope.yaml"


def test_the_inner_dict_is_a_typed_local() -> None:
    source = render_source(analyse_file(SPEC))
    assert "from typing import cast\n" in source
    init = ["        up_fuse = nn.ModuleDict()", "        self.up['fuse'] = up_fuse",
            "        up_fuse['conv'] = nn.Conv2d(16, 8, kernel_size=3, padding=1)", "        up_fuse['bn'] = nn.BatchNorm2d(8)"]
    forward = ["        up_fuse = cast(nn.ModuleDict, self.up['fuse'])",
               "        x = torch.cat([skip, x], dim=1)  # (N, 16, 16, 16)",
               "        x = up_fuse['conv'](x)  # (N, 8, 16, 16)", "        x = up_fuse['bn'](x)  # (N, 8, 16, 16)"]
    block = ["        outer_inner = cast(nn.ModuleDict, self.outer['inner'])",
             "        x = torch.cat([base, x], dim=1)  # (N, 12, 16, 16)",
             "        x = outer_inner['conv'](x)  # (N, 6, 16, 16)"]
    lines = source.splitlines()
    for part in (init, forward, block):
        start = lines.index(part[0])
        assert lines[start:start + len(part)] == part


def test_one_level_open_scopes_need_no_cast() -> None:
    source = render_source(analyse_file(Path(__file__).parents[1] / "specs" / "monai_basicunet_3d.yaml"))
    assert "cast" not in source


@pytest.mark.slow
def test_generated_module_passes_mypy(tmp_path: Path, mypy_cache: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is part of the dev extra")
    module = tmp_path / "nested_open_scope.py"
    module.write_text(render_source(analyse_file(SPEC)))
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache), "--config-file", "",
                           str(module)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.stdout.splitlines()[-1] == "Success: no issues found in 1 source file", done.stdout


@pytest.mark.slow
def test_runs_with_the_specs_keys_and_equals_onnxruntime(tmp_path: Path) -> None:
    graph = analyse_file(SPEC)
    module = randomised_module(graph)
    assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()] == [
        (k, s) for k, s, _ in graph.state_dict_keys()]
    assert "up.fuse.bn.running_var" in module.state_dict() and "block2.outer.inner.conv.weight" in module.state_dict()
    (path,) = export(graph, tmp_path / "nested.onnx", module=module)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, *graph.input_shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            want = module(x).numpy()
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == want.shape == (batch, 2, 16, 16)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_tensor_named_cast_does_not_hide_typing_cast() -> None:
    text = SPEC.read_text().replace("as: skip}", "as: cast}").replace("of: [skip, previous]", "of: [cast, previous]")
    graph = analyse_text(text)
    source = render_source(graph)
    assert "        cast2 = self.stem(x)  # (N, 8, 16, 16)" in source
    assert "        up_fuse = cast(nn.ModuleDict, self.up['fuse'])" in source
    module = build_module(graph).eval()
    with torch.no_grad():
        assert module(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)
