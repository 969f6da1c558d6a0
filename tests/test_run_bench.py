"""``cnnspec run`` and ``bench`` on any ONNX model and any ``.npy`` input (attack findings C1, C2, M8), and on
a spec with ``build``'s options: a result, or one line with exit 1 (2 for usage errors), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto as T
from onnx import helper as h

from cnnspec.cli import main
from cnnspec.compile.onnx.check import run_model
from cnnspec.compile.onnx.model import to_model_proto
from cnnspec.compile.onnx.weights import init_weights
from cnnspec.frontend import analyse_file

ROOT = Path(__file__).resolve().parents[1]
LENET = str(ROOT / "specs/lenet5.yaml")
vi = h.make_tensor_value_info


def model(path: Path, nodes: list, inputs: list, outputs: list, inits: tuple = ()) -> str:
    graph = h.make_graph(nodes, path.stem, inputs, outputs, list(inits))
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 20)])
    m.ir_version = 9
    onnx.save(m, str(path))
    return str(path)


MODELS = {
    "two_inputs": lambda: ([h.make_node("Add", ["a", "b"], ["y"])],
                           [vi("a", T.FLOAT, ["N", 3]), vi("b", T.FLOAT, ["N", 3])], [vi("y", T.FLOAT, ["N", 3])]),
    "int64_in": lambda: ([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], [vi("x", T.INT64, ["N", 4])],
                         [vi("y", T.FLOAT, ["N", 4])]),
    "bool_in": lambda: ([h.make_node("Not", ["x"], ["y"])], [vi("x", T.BOOL, [2])], [vi("y", T.BOOL, [2])]),
    "string_in": lambda: ([h.make_node("Identity", ["x"], ["y"])], [vi("x", T.STRING, [2])], [vi("y", T.STRING, [2])]),
    "double_in": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.DOUBLE, ["N", 3])], [vi("y", T.DOUBLE, ["N", 3])]),
    "f16_in": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT16, ["N", 5])], [vi("y", T.FLOAT16, ["N", 5])]),
    "zero_d": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [])], [vi("y", T.FLOAT, [])]),
    "no_inputs": lambda: ([h.make_node("Constant", [], ["y"], value=h.make_tensor("c", T.FLOAT, [2], [1.0, 2.0]))],
                          [], [vi("y", T.FLOAT, [2])]),
    "scalar_out": lambda: ([h.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], [vi("x", T.FLOAT, ["N", 3])],
                           [vi("y", T.FLOAT, [])]),
    "seq_out": lambda: ([h.make_node("SequenceConstruct", ["x", "x"], ["y"])], [vi("x", T.FLOAT, ["N", 3])],
                        [h.make_tensor_sequence_value_info("y", T.FLOAT, None)]),
    "seq_in": lambda: ([h.make_node("SequenceLength", ["x"], ["y"])],
                       [h.make_tensor_sequence_value_info("x", T.FLOAT, None)], [vi("y", T.INT64, [])]),
    "bf16_in": lambda: ([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], [vi("x", T.BFLOAT16, [2])],
                        [vi("y", T.FLOAT, [2])]),
    "bad_reshape": lambda: ([h.make_node("Reshape", ["x", "s"], ["y"])], [vi("x", T.FLOAT, ["N", 3])],
                            [vi("y", T.FLOAT, None)], (h.make_tensor("s", T.INT64, [2], [5, 7]),)),
    "alloc": lambda: ([h.make_node("ConstantOfShape", ["s"], ["y"], value=h.make_tensor("v", T.FLOAT, [1], [1.0])),
                       h.make_node("Add", ["y", "x"], ["z"])], [vi("x", T.FLOAT, [1])], [vi("z", T.FLOAT, None)],
                      (h.make_tensor("s", T.INT64, [1], [2**40]),)),
    "huge_in": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, ["N", 3, 100000, 100000])],
                        [vi("y", T.FLOAT, ["N", 3, 100000, 100000])]),
    "fixed_2_31": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [2**31, 2])],
                           [vi("y", T.FLOAT, [2**31, 2])]),
    "fixed_batch": lambda: ([h.make_node("Relu", ["x"], ["y"])], [vi("x", T.FLOAT, [4, 3])], [vi("y", T.FLOAT, [4, 3])]),
    "two_outputs": lambda: ([h.make_node("Relu", ["x"], ["y"]), h.make_node("Neg", ["x"], ["z"])],
                            [vi("x", T.FLOAT, ["N", 3])], [vi("y", T.FLOAT, ["N", 3]), vi("z", T.FLOAT, ["N", 3])]),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    paths = {name: model(root / f"{name}.onnx", *make()) for name, make in MODELS.items()}
    (root / "garbage.onnx").write_bytes(b"\0garbage" * 10)
    paths["garbage"] = str(root / "garbage.onnx")
    return paths


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main([*args, "--provider", "cpu"])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def body(out: list[str]) -> list[str]:
    """``run``'s output after the model and provider lines."""
    assert out[0].startswith("model:    ") and out[1] == "provider: CPUExecutionProvider"
    return out[2:]


@pytest.mark.parametrize(("name", "lines"), [
    ("two_inputs", ["input:    a [1, 3] float32", "input:    b [1, 3] float32", "output:   y [1, 3] float32"]),
    ("int64_in", ["input:    [1, 4] int64", "output:   [1, 4] float32"]),
    ("bool_in", ["input:    [2] bool", "output:   [2] bool"]),
    ("string_in", ["input:    [2] string", "output:   [2] string"]),
    ("double_in", ["input:    [1, 3] float64", "output:   [1, 3] float64"]),
    ("f16_in", ["input:    [1, 5] float16", "output:   [1, 5] float16"]),
    ("no_inputs", ["input:    none", "output:   [2] float32", "top 2 of item 0: [1] 2, [0] 1"]),
    ("seq_out", ["input:    [1, 3] float32", "output:   sequence of 2 tensors"]),
    ("fixed_batch", ["input:    [4, 3] float32", "output:   [4, 3] float32"]),
    ("two_outputs", ["input:    x [1, 3] float32", "output:   y [1, 3] float32", "output:   z [1, 3] float32"]),
])
def test_C1_any_onnx_model_runs_with_inputs_of_its_dtypes(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                                         name: str, lines: list[str]) -> None:
    code, out, err = cli(capsys, "run", models[name], "--top", "2")
    assert (code, err) == (0, [])
    assert [line for line in body(out) if not line.startswith("top") or name == "no_inputs"] == lines


def test_C1_0d_input_and_scalar_output(capsys: pytest.CaptureFixture[str], models: dict[str, str]) -> None:
    x = np.asarray(np.random.default_rng(0).standard_normal((), dtype=np.float32))
    code, out, _ = cli(capsys, "run", models["zero_d"])
    assert code == 0 and body(out) == [f"input:    [] float32 = {float(x):.5g}", f"output:   [] float32 = {max(float(x), 0):.5g}"]
    code, out, _ = cli(capsys, "run", models["scalar_out"])
    x = np.random.default_rng(0).standard_normal((1, 3), dtype=np.float32)
    assert code == 0 and body(out)[1] == f"output:   [] float32 = {float(x.sum()):.5g}"


def test_C1_random_inputs_are_made_in_their_dtype() -> None:
    from cnnspec.compile.onnx.npy import InputSpec
    from cnnspec.compile.onnx.runtime import random_input

    rng = np.random.default_rng(0)
    ints = random_input(InputSpec("x", ("N", 1000), np.dtype(np.int8)), (1, 1000), rng)
    assert ints.dtype == np.int8 and (ints.min(), ints.max()) == (0, 9)
    half = random_input(InputSpec("x", (3, 5), np.dtype(np.float16)), (3, 5), np.random.default_rng(1))
    want = np.random.default_rng(1).standard_normal(15, dtype=np.float32).astype(np.float16).reshape(3, 5)
    np.testing.assert_array_equal(half, want)


@pytest.mark.parametrize(("name", "line"), [
    ("seq_in", "error: input `x` is seq(tensor(float)); cnnspec feeds tensors of numbers, booleans or strings"),
    ("bf16_in", "error: input `x` is tensor(bfloat16); cnnspec feeds tensors of numbers, booleans or strings"),
    ("bad_reshape", ("error: onnxruntime failed running it: Non-zero status code returned while running Reshape node. "
                    "Name:'' Status Message: input_shape_size == requested_shape_size was false. The input tensor "
                    "cannot be reshaped to the requested shape. Input shape:{1,3}, requested shape:{5,7}")),
    ("alloc", ("error: onnxruntime failed running it: Non-zero status code returned while running ConstantOfShape "
              "node. Name:'' Status Message: Failed to allocate memory for requested buffer of size 4398046511104")),
])
def test_C1_onnxruntime_failures_are_one_line_with_its_log_silenced(capsys: pytest.CaptureFixture[str],
                                                                    models: dict[str, str], name: str, line: str) -> None:
    for command in ("run", "bench"):
        code, out, err = cli(capsys, command, models[name])
        assert (code, out, err) == (1, [], [f"{models[name]}: {line}"])


def test_C1_unloadable_model_is_exit_1(capsys: pytest.CaptureFixture[str], models: dict[str, str]) -> None:
    code, _, err = cli(capsys, "run", models["garbage"])
    assert (code, err) == (1, [(f"{models['garbage']}: error: onnxruntime cannot load it: Load model from "
                               f"{models['garbage']} failed:Protobuf parsing failed.")])


@pytest.mark.parametrize(("name", "args", "line"), [
    ("huge_in", (), "the model's inputs need 30,000,000,000 values (111.7 GiB), over the input limit of 2.0 GiB"),
    ("fixed_2_31", (), "the model's inputs need 4,294,967,296 values (16.0 GiB), over the input limit of 2.0 GiB"),
    ("lenet", ("--batch", "10000000"), ("the model's inputs need 7,840,000,000 values (29.2 GiB), over the input limit "
                                       "of 2.0 GiB")),
    ("two_inputs", ("--batch", "1000", "--max-input-bytes", "16KiB"), ("the model's inputs need 6,000 values "
                                                                      "(23.4 KiB), over the input limit of 16.0 KiB")),
])
def test_C1_inputs_too_large_are_refused_before_they_are_made(capsys: pytest.CaptureFixture[str],
                                                              models: dict[str, str], name: str, args: tuple, line: str) -> None:
    path = LENET if name == "lenet" else models[name]
    for command in ("run", "bench"):
        code, _, err = cli(capsys, command, path, *args)
        assert (code, err) == (2, [(f"cnnspec {command}: error: {line}; use a smaller --batch, or raise the limit with "
                                   "--max-input-bytes or $CNNSPEC_MAX_INPUT_BYTES")])


def test_C1_fixed_batch_must_match(capsys: pytest.CaptureFixture[str], models: dict[str, str]) -> None:
    code, _, err = cli(capsys, "run", models["fixed_batch"], "--batch", "2")
    assert (code, err) == (2, ["cnnspec run: error: input `x` has a fixed batch dimension of 4; use --batch 4"])


@pytest.mark.parametrize(("array", "name", "line"), [
    (np.array(["a", "b"]), "double_in", "input of shape [1, 2] does not fit the model's input [N, 3]"),
    (np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), "double_in",
     "the array holds records of type |V8; give an array of numbers, booleans or strings"),
    (np.ones((1, 3), np.complex64), "double_in",
     "the array holds complex values, but the model's input `x` is float64 (the imaginary parts would be lost)"),
    (np.full((1, 5), 1e300), "f16_in",
     ("the array holds values up to 1e+300 in magnitude, beyond what float16 holds (65504); the model's input `x` is "
     "float16")),
    (np.full((1, 4), 0.5), "int64_in", "the array holds float64 values, but the model's input `x` is int64"),
    (np.array([1, 0]), "bool_in", "the array holds int64 values, but the model's input `x` is bool"),
    (np.ones((1, 4), np.uint64) * 2**63, "int64_in",
     ("the array holds values from 9223372036854775808 to 9223372036854775808, but the model's input `x` is int64, "
     "which holds -9223372036854775808 to 9223372036854775807")),
])
def test_C2_npy_inputs_that_cannot_be_fed_are_one_line(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                                       tmp_path: Path, array: np.ndarray, name: str, line: str) -> None:
    np.save(tmp_path / "x.npy", array)
    code, _, err = cli(capsys, "run", models[name], "--input", str(tmp_path / "x.npy"))
    assert (code, err) == (2, [f"cnnspec run: error: {tmp_path / 'x.npy'}: {line}"])


def test_C2_npy_of_strings_and_of_other_numbers_are_fed(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                                        tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    code, out, _ = cli(capsys, "run", models["string_in"], "--input", str(tmp_path / "s.npy"))
    assert code == 0 and body(out) == ["input:    [2] string", "output:   [2] string"]
    np.save(tmp_path / "i.npy", np.array([[1, -2, 3]], np.int32))
    code, out, _ = cli(capsys, "run", models["double_in"], "--input", str(tmp_path / "i.npy"), "--top", "1")
    assert code == 0 and body(out) == ["input:    [1, 3] float64", "output:   [1, 3] float64", "top 1 of item 0: [2] 3"]


def test_C2_npy_pickle_and_huge_header_are_refused_before_reading(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = cli(capsys, "run", LENET, "--input", str(tmp_path / "o.npy"))
    assert (code, err) == (2, [(f"cnnspec run: error: {tmp_path / 'o.npy'}: the array holds Python objects (a pickle); "
                               "give an array of numbers, booleans or strings")])
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32)) | {"shape": (10**11,)}
    with open(tmp_path / "claim.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(bytes(16))
    code, _, err = cli(capsys, "run", LENET, "--input", str(tmp_path / "claim.npy"))
    assert (code, err) == (2, [(f"cnnspec run: error: {tmp_path / 'claim.npy'}: the array has 100,000,000,000 values "
                               "(372.5 GiB), over the input limit of 2.0 GiB; raise it with --max-input-bytes or "
                               "$CNNSPEC_MAX_INPUT_BYTES")])
    np.save(tmp_path / "t.npy", np.ones((1, 28, 28), np.float32))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:-8])
    code, _, err = cli(capsys, "run", LENET, "--input", str(tmp_path / "t.npy"))
    assert (code, err) == (2, [(f"cnnspec run: error: {tmp_path / 't.npy'}: the file is shorter than its header says "
                               "(truncated?)")])


def test_C2_float64_overflowing_float32_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    x = np.zeros((1, 28, 28))
    x[0, 3, 4] = -1e300
    np.save(tmp_path / "x.npy", x)
    code, _, err = cli(capsys, "run", LENET, "--input", str(tmp_path / "x.npy"))
    assert (code, err) == (2, [(f"cnnspec run: error: {tmp_path / 'x.npy'}: the array holds values up to 1e+300 in "
                               "magnitude, beyond what float32 holds (3.40282e+38); the model's input `input` is float32")])


def test_C2_npy_for_a_model_with_several_inputs(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                                tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((1, 3), np.float32))
    code, _, err = cli(capsys, "run", models["two_inputs"], "--input", str(tmp_path / "x.npy"))
    assert (code, err) == (2, ["cnnspec run: error: --input X.npy feeds a model with one input; this one has 2 (`a`, `b`)"])


def test_M8_bench_threads_are_capped(capsys: pytest.CaptureFixture[str]) -> None:
    cores = os.cpu_count() or 1
    code, _, err = cli(capsys, "bench", LENET, "--threads", "5000")
    assert (code, err) == (2, [(f"cnnspec bench: error: --threads is at most {cores * 4} on this machine (4 per core, "
                               f"{cores} cores), got 5000")])


def test_bench_any_model(capsys: pytest.CaptureFixture[str], models: dict[str, str]) -> None:
    for name, batch in (("two_inputs", "3"), ("no_inputs", None), ("string_in", None)):
        code, out, err = cli(capsys, "bench", models[name], "--runs", "2", "--warmup", "0",
                             *(("--batch", batch) if batch else ()))
        assert (code, err) == (0, [])
        assert out[2].startswith(f"batch {batch or (2 if name == 'string_in' else 1)}: median ")


# run and bench take a spec with build's options ------------------------------------------------------------

def test_run_spec_with_set_input_shape_weights_and_strip_prefix(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    graph = analyse_file(LENET, {"num_classes": 3}, (1, 32, 32))
    weights = init_weights(graph, seed=5)
    torch.save({"module." + k: torch.from_numpy(v) for k, v in weights.items()}, tmp_path / "w.pt")
    args = ("--set", "num_classes=3", "--input", "1,32,32", "--weights", str(tmp_path / "w.pt"))
    code, _, err = cli(capsys, "run", LENET, *args)
    assert code == 1 and err[0].startswith(f"{tmp_path / 'w.pt'}: error: does not fit spec 'lenet5': every tensor name")
    code, out, err = cli(capsys, "run", LENET, *args, "--strip-prefix", "module.", "--top", "1")
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32), dtype=np.float32)
    y = run_model(to_model_proto(graph, weights), x)[0]
    assert (code, err) == (0, [])
    assert out == [f"model:    lenet5 ({LENET}, weights from {tmp_path / 'w.pt'})", "provider: CPUExecutionProvider",
                   "input:    [1, 1, 32, 32] float32", "output:   [1, 3] float32",
                   f"top 1 of item 0: [{int(np.argmax(y))}] {float(y.max()):.5g}"]
    code, out, err = cli(capsys, "bench", LENET, *args, "--strip-prefix", "module", "--runs", "2", "--batch", "2")
    assert (code, err) == (0, []) and out[2].startswith("batch 2: median ")


@pytest.mark.parametrize(("args", "line"), [
    (("--set", "num_classes=3"), "--set applies to a spec, not to an .onnx file"),
    (("--input", "3,32,32"), "--input C,H,W applies to a spec, not to an .onnx file"),
    (("--weights", "w.pt"), "--weights applies to a spec, not to an .onnx file"),
    (("--input", "3,x"), "--input takes sizes like 3,224,224 (or 3x224x224), got `3,x`"),
])
def test_spec_options_on_an_onnx_file_are_usage_errors(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                                      args: tuple, line: str) -> None:
    for command in ("run", "bench"):
        code, _, err = cli(capsys, command, models["double_in"], *args)
        assert (code, err) == (2, [f"cnnspec {command}: error: {line}"])


def test_run_output_saves_the_first_tensor(capsys: pytest.CaptureFixture[str], models: dict[str, str],
                                           tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "run", models["two_outputs"], "--output", str(tmp_path / "y.npy"))
    assert code == 0 and out[-1] == f"wrote {tmp_path / 'y.npy'}" and np.load(tmp_path / "y.npy").shape == (1, 3)
    code, _, err = cli(capsys, "run", models["seq_out"], "--output", str(tmp_path / "s.npy"))
    assert (code, err) == (2, [("cnnspec run: error: --output saves a tensor, but the model's first output is sequence "
                               "of 2 tensors")])


def test_C6_sizes_of_any_length_and_only_ascii_digits(capsys: pytest.CaptureFixture[str]) -> None:
    """A 400-digit --max-bytes gave an OverflowError traceback; full-width digits were accepted. Both are
    usage errors now, saying what is accepted (sizes are at most 2^63 - 1 bytes)."""
    for option in ("--max-bytes", "--max-input-bytes"):
        with pytest.raises(SystemExit) as exc:
            main(["run", LENET, option, "9" * 400])
        assert exc.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"cnnspec run: error: argument {option}: expected a size such as 4GiB, 512MiB or 1000000, at most "
            f"8 EiB (2^63 - 1 bytes), got '{'9' * 40}... (400 characters)'")
    with pytest.raises(SystemExit) as exc:
        main(["run", LENET, "--max-input-bytes", "\uff11\uff12\uff13GiB"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "cnnspec run: error: argument --max-input-bytes: expected a size such as 4GiB, 512MiB or 1000000, got "
        "'\uff11\uff12\uff13GiB' (write the digits 0-9 and the unit in ASCII)")
