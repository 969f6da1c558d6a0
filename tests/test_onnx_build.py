"""The ONNX target as a build product: names, metadata, determinism, options, weights files, CLI."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from safetensors.numpy import save_file

import cnnspec
from cnnspec.cli import main
from cnnspec.compile.onnx import CheckpointError, add_build_options, build, export, save, to_model_proto
from cnnspec.compile.onnx.check import declared_shapes, run_model
from cnnspec.compile.onnx.weights import init_weights
from cnnspec.frontend import analyse_file

LENET = "specs/lenet5.yaml"


def options(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_build_options(parser)
    return parser.parse_args([f"--{k}={v}" if v is not True else f"--{k}" for k, v in kw.items()])


def test_names_are_spec_paths() -> None:
    model = to_model_proto(analyse_file("specs/resnet18.yaml"))
    names = [n.name for n in model.graph.node]
    assert names[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert "layer2.0.downsample.0" in names and "layer2.0/add" in names
    assert names.count("layer1.0.relu") == 1 and "layer1.0.relu#2" in names  # one module called twice
    inits = [i.name for i in model.graph.initializer]
    assert inits[:5] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]
    assert len(inits) == 102  # 122 state_dict entries less 20 num_batches_tracked


def test_value_info_and_symbolic_batch() -> None:
    model = to_model_proto(analyse_file("specs/resnet18.yaml"))
    shapes = declared_shapes(model)
    assert len(model.graph.value_info) == len(model.graph.node) - 1  # every value but the output
    assert shapes["maxpool"] == ("N", 64, 56, 56)
    assert shapes["layer4.1/add"] == ("N", 512, 7, 7)
    assert shapes["output"] == ("N", 1000)


def test_fixed_batch() -> None:
    model = to_model_proto(analyse_file(LENET), batch=4)
    assert declared_shapes(model)["output"] == (4, 10)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [4, 1, 28, 28]


def test_metadata() -> None:
    graph = analyse_file("specs/resnet18.yaml")
    model = to_model_proto(graph)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["cnnspec.spec"] == "resnet18"
    assert props["cnnspec.params"] == "11689512"
    assert props["cnnspec.macs"] == "1814073344"
    assert props["cnnspec.spec_hash"] == graph.spec_hash and len(graph.spec_hash) == 16
    assert list(props) == sorted(props)
    assert (model.producer_name, model.opset_import[0].version) == ("cnnspec", 20)
    assert (model.producer_version, props["cnnspec.version"]) == (cnnspec.__version__, cnnspec.__version__)
    assert (model.model_version, model.doc_string) == (1, "resnet18")  # no description: the name alone


def test_metadata_doc_string_is_name_and_description(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: edges\ndescription: Sobel edges for the lecture\ninput: [1, 8, 8]\nlayers: [relu]\n")
    (path,) = build(analyse_file(spec), tmp_path / "s.onnx", options())
    model = onnx.load(str(path))
    assert (model.doc_string, model.model_version) == ("edges: Sobel edges for the lecture", 1)
    assert {p.key: p.value for p in model.metadata_props}["cnnspec.spec"] == "edges"


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    graph = analyse_file("specs/resnet18.yaml")
    digests = set()
    for i in range(2):
        (path,) = build(graph, tmp_path / f"{i}.onnx", options(seed=7))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    (other,) = build(graph, tmp_path / "other.onnx", options(seed=8))
    assert hashlib.sha256(other.read_bytes()).hexdigest() not in digests


def test_seeded_init_follows_pytorch_defaults() -> None:
    graph = analyse_file("specs/resnet18.yaml")
    w = init_weights(graph, seed=0)
    bound = 1 / np.sqrt(3 * 7 * 7)
    assert w["conv1.weight"].dtype == np.float32 and np.abs(w["conv1.weight"]).max() <= bound
    assert np.abs(w["conv1.weight"]).max() > 0.99 * bound  # uniform over the whole range
    assert np.all(w["bn1.weight"] == 1) and np.all(w["bn1.running_var"] == 1) and np.all(w["bn1.bias"] == 0)
    assert w["bn1.num_batches_tracked"].dtype == np.int64
    assert np.array_equal(init_weights(graph, seed=0)["fc.weight"], w["fc.weight"])


def test_fixed_kernel_weights() -> None:
    graph = analyse_file("specs/sobel_edges.yaml")
    leaf = next(n for n in graph.leaves() if n.op == "conv")
    w = init_weights(graph)[leaf.tensor_key(leaf.params[0])]
    assert np.array_equal(w, np.asarray(leaf.attrs.weights, np.float32).reshape(w.shape))


def test_external_data(tmp_path: Path) -> None:
    graph = analyse_file("specs/resnet18.yaml")
    files = export(graph, tmp_path / "r.onnx", external=True)
    assert [f.name for f in files] == ["r.onnx", "r.onnx.data"]
    assert files[0].stat().st_size < 200_000 and files[1].stat().st_size > 46_000_000
    onnx.checker.check_model(str(files[0]), full_check=True)
    x = np.ones((1, 3, 224, 224), np.float32)
    np.testing.assert_array_equal(run_model(files[0], x), run_model(to_model_proto(graph), x))


def test_external_data_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(save, "PROTOBUF_LIMIT", 1_000_000)  # stands in for 2 GB
    graph = analyse_file("specs/resnet18.yaml")
    assert [f.name for f in export(graph, tmp_path / "big.onnx")] == ["big.onnx", "big.onnx.data"]
    assert [f.name for f in export(analyse_file(LENET), tmp_path / "small.onnx")] == ["small.onnx"]


def test_fp16(tmp_path: Path) -> None:
    graph = analyse_file("specs/resnet18.yaml")
    (path,) = build(graph, tmp_path / "h.onnx", options(fp16=True))
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    full = run_model(to_model_proto(graph), x)
    half = run_model(model, x.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=0.05, atol=0.05 * np.abs(full).max())


def test_options() -> None:
    o = options()
    assert (o.weights, o.seed, o.opset, o.batch, o.fp16) == (None, 0, 20, None, False)
    assert options(batch=8).batch == 8 and options(batch="dynamic").batch is None
    with pytest.raises(SystemExit):
        options(batch=0)
    with pytest.raises(SystemExit):
        options(opset=12)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=5)  # another target's option is reused, not redefined
    add_build_options(parser)
    assert parser.parse_args([]).seed == 5


def test_opset_18_without_gelu_op() -> None:
    graph = analyse_file("specs/convnext_tiny.yaml", input_shape=(3, 32, 32))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    new, old = to_model_proto(graph, opset=20), to_model_proto(graph, opset=18)
    assert "Gelu" not in {n.op_type for n in old.graph.node}
    np.testing.assert_allclose(run_model(old, x), run_model(new, x), rtol=1e-4, atol=1e-5)


def _bad_checkpoint(tmp_path: Path) -> Path:
    graph = analyse_file(LENET)
    w = init_weights(graph)
    keys = list(w)
    del w[keys[0]]
    w[keys[2]] = np.zeros((3, 4), np.float32)
    w["head.weight"] = np.zeros(2, np.float32)
    path = tmp_path / "bad.safetensors"
    save_file(w, str(path))
    return path


def test_bad_checkpoint_is_refused_naming_every_tensor(tmp_path: Path) -> None:
    path = _bad_checkpoint(tmp_path)
    graph = analyse_file(LENET)
    with pytest.raises(CheckpointError) as err:
        build(graph, tmp_path / "out.onnx", options(weights=path))
    assert str(err.value) == (
        f"{path}: error: does not fit spec 'lenet5': missing 0.weight [6, 1, 5, 5]; unexpected head.weight [2]; "
        "3.weight is [3, 4] in the file but [16, 6, 5, 5] in the spec"
    )
    assert not (tmp_path / "out.onnx").exists()


def test_cli_run_and_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(1).standard_normal((1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", LENET, "--input", str(tmp_path / "x.npy"), "--provider", "cpu", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "provider: CPUExecutionProvider" in out and "output:   [1, 10] float32" in out
    expected = run_model(to_model_proto(analyse_file(LENET)), x[None])[0]
    top = np.argsort(-expected)[:3]
    assert f"top 3 of item 0: [{top[0]}] {expected[top[0]]:.5g}" in out
    assert main(["bench", LENET, "--batch", "2", "--runs", "3", "--warmup", "1", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert err == "note: no CUDA provider in this onnxruntime; running on the CPU\n"
    assert "provider: CPUExecutionProvider, intra-op threads: 1" in out
    assert "batch 2: median" in out and "over 3 runs after 1 warm-up runs" in out and "images/s" in out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 5), np.float32))
    assert main(["run", LENET, "--input", str(tmp_path / "x.npy")]) == 2
    assert "does not fit the model's input [N, 1, 28, 28]" in capsys.readouterr().err
    assert main(["run", LENET, "--provider", "cuda"]) == 2
    assert "has no CUDA provider" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.onnx")]) == 2


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lenet.onnx"
    assert main(["build", LENET, "--target", "onnx", "-o", str(out), "--batch", "2", "--seed", "1"]) == 0
    model = onnx.load(str(out))
    assert declared_shapes(model)["output"] == (2, 10)
    assert main(["build", LENET, "--target", "onnx", "-o", str(out), "--batch", "2", "--seed", "1", "--check"]) == 0
    capsys.readouterr()
    bad = _bad_checkpoint(tmp_path)
    assert main(["build", LENET, "--target", "onnx", "-o", str(tmp_path / "x.onnx"), "--weights", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: error: does not fit spec 'lenet5': missing 0.weight") and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_package_import_is_light() -> None:
    """`cnnspec build` adds the ONNX options on every run: that must not import onnx, numpy or torch."""
    code = ("import sys, cnnspec.compile.onnx as o; o.add_build_options(__import__('argparse').ArgumentParser()); "
            "print(sorted(m for m in ('onnx', 'numpy', 'torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
