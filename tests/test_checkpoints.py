"""Checkpoints are checked before they are trusted (attack findings D1, D2, M6, C4, P3, P12, P13): dtypes
that convert exactly, refusals that name the tensor, metadata compared with the spec before any value is
read, prefixes stripped on request, and the Python API's type errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

import cnnspec
from cnnspec.cli import main
from cnnspec.compile.onnx import CheckpointError
from cnnspec.compile.onnx.model import to_model_proto
from cnnspec.compile.onnx.safetensors_file import _float8_table
from cnnspec.compile.onnx.weights import init_weights, read_checkpoint
from cnnspec.frontend import analyse_file

ROOT = Path(__file__).resolve().parents[1]
LENET = str(ROOT / "specs/lenet5.yaml")
CNN1D = str(ROOT / "specs/cnn1d_example.yaml")


def lenet_state() -> dict[str, torch.Tensor]:
    """lenet5's seeded weights as torch tensors (random values, every tensor non-zero)."""
    return {k: torch.from_numpy(v) for k, v in init_weights(analyse_file(LENET), seed=3).items()}


def build(weights: Path | dict, spec: str = LENET, **opts: object) -> bytes:
    """The ONNX bytes of ``spec`` with ``weights`` (a file or a state_dict)."""
    graph = analyse_file(spec)
    if isinstance(weights, Path):
        from cnnspec.compile.onnx.weights import load_weights

        weights = load_weights(graph, weights, opts.pop("strip", None))  # type: ignore[arg-type]
    return to_model_proto(graph, weights, source="w", **opts).SerializeToString(deterministic=True)


def refusal(capsys: pytest.CaptureFixture[str], path: Path, *args: str, spec: str = LENET) -> str:
    """The one line ``cnnspec build --weights path`` prints; it must exit 1 and write nothing."""
    out = path.parent / "out.onnx"
    capsys.readouterr()
    code = main(["build", spec, "--target", "onnx", "-o", str(out), "--weights", str(path), *args])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and err.count("\n") == 1, err
    return err.rstrip("\n")


# D1, P13: every float dtype converts exactly -----------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64, torch.float8_e4m3fn,
                                   torch.float8_e5m2])
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_D1_bf16_safetensors_converts_exactly(tmp_path: Path, dtype: torch.dtype, suffix: str) -> None:
    """Finding D1 (bf16 safetensors became zeros) and P13 (float8 was refused): the ONNX file equals the
    one built from the same values given as float32."""
    state = {k: v.to(dtype).contiguous() for k, v in lenet_state().items()}
    path = tmp_path / f"w{suffix}"
    save_torch(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    exact = {k: v.to(torch.float32).numpy() for k, v in state.items()}
    assert build(path) == build(exact)
    assert all(np.abs(v).max() > 0 for v in exact.values())  # nothing became zero


def test_D1_ml_dtypes_bfloat16_state_dict_converts_exactly() -> None:
    """A state_dict from safetensors.numpy holds ml_dtypes bfloat16 arrays: their values, not int64 zeros."""
    state = {k: v.numpy().astype(ml_dtypes.bfloat16) for k, v in lenet_state().items()}
    assert build(state) == build({k: v.astype(np.float32) for k, v in state.items()})


def test_P13_float8_tables_equal_ml_dtypes() -> None:
    raw = np.arange(256, dtype=np.uint8)
    for name in ("float8_e4m3fn", "float8_e5m2"):
        want = raw.view(getattr(ml_dtypes, name)).astype(np.float32)
        np.testing.assert_array_equal(_float8_table(name), want)


# D2: dtypes and values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool", "complex64"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_D2_integer_bool_complex_tensors_refused_naming_the_tensor(capsys: pytest.CaptureFixture[str], tmp_path: Path, dtype: str, suffix: str) -> None:
    state = lenet_state()
    state["3.weight"] = (state["3.weight"] * 10).to(getattr(torch, dtype))
    path = tmp_path / f"w{suffix}"
    save_torch(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    assert refusal(capsys, path) == (f"{path}: error: `3.weight` is {dtype} in the file; weights must be floating point "
                             "(float16, bfloat16, float32 or float64)")


def test_D2_num_batches_tracked_may_be_any_integer_but_not_a_float(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    graph = analyse_file(CNN1D)
    state = {k: torch.from_numpy(v) for k, v in init_weights(graph, seed=1).items()}
    for dtype in (torch.int32, torch.int64, torch.uint8):
        state["1.num_batches_tracked"] = torch.tensor(7, dtype=dtype)
        save_torch(state, str(tmp_path / "w.safetensors"))
        assert build(tmp_path / "w.safetensors", CNN1D) == build({k: v.numpy() for k, v in state.items()}, CNN1D)
    state["1.num_batches_tracked"] = torch.tensor(7.0)
    save_torch(state, str(tmp_path / "w.safetensors"))
    assert refusal(capsys, tmp_path / "w.safetensors", spec=CNN1D) == (
        f"{tmp_path / 'w.safetensors'}: error: `1.num_batches_tracked` is float32 in the file, but the spec's "
        "tensor is an int64 counter")


@pytest.mark.parametrize(("value", "what"), [(float("nan"), "2 NaN values"), (float("inf"), "2 infinite values")])
def test_D2_nan_and_inf_refused_with_the_tensor_name(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: float, what: str) -> None:
    state = lenet_state()
    state["9.bias"][[3, 7]] = value
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == (f"{tmp_path / 'w.pt'}: error: `9.bias` holds {what} (of 84); weights "
                                          "must be finite numbers")


def test_D2_fp16_overflow_refused_naming_the_tensor_and_the_largest_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = lenet_state()
    state["7.weight"][5, 9] = -70000.0
    save_torch(state, str(tmp_path / "w.safetensors"))
    assert refusal(capsys, tmp_path / "w.safetensors", "--fp16") == (
        f"{tmp_path / 'w.safetensors'}: error: `7.weight` holds values up to 70000 in magnitude, beyond float16's "
        "largest (65,504): with --fp16 they would become infinite; build without --fp16 or rescale the weights")
    assert main(["build", LENET, "--target", "onnx", "-o", str(tmp_path / "ok.onnx"), "--weights",
                 str(tmp_path / "w.safetensors")]) == 0  # float32 holds it
    state["7.weight"][5, 9] = 65519.0  # rounds to 65504 in float16
    save_torch(state, str(tmp_path / "w.safetensors"))
    assert main(["build", LENET, "--target", "onnx", "-o", str(tmp_path / "h.onnx"), "--fp16", "--weights",
                 str(tmp_path / "w.safetensors")]) == 0


def test_D2_float64_beyond_float32_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = {k: v.double() for k, v in lenet_state().items()}
    state["0.bias"][2] = 1e300
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == (
        f"{tmp_path / 'w.pt'}: error: `0.bias` holds float64 values up to 1e+300 in magnitude, beyond float32's "
        "largest (3.40282e+38), where they would become infinite")


# C4: sparse and meta tensors ---------------------------------------------------------------------------

def test_C4_sparse_tensor_refused_with_its_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = lenet_state()
    state["7.weight"] = state["7.weight"].to_sparse()
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == (f"{tmp_path / 'w.pt'}: error: `7.weight` is a sparse_coo tensor; "
                                          "checkpoints must hold dense tensors with values")


def test_C4_meta_tensor_refused_with_its_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = lenet_state()
    state["3.bias"] = torch.empty(16, device="meta")
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == (
        f"{tmp_path / 'w.pt'}: error: `3.bias` is a meta tensor: it has a shape but no values (the checkpoint was "
        "saved from a model on the meta device)")


def test_C4_expanded_tensor_of_the_right_shape_is_read(tmp_path: Path) -> None:
    state = lenet_state()
    state["3.bias"] = torch.tensor([0.25]).expand(16)  # stride 0, one stored value
    torch.save(state, tmp_path / "w.pt")
    assert build(tmp_path / "w.pt") == build({k: v.contiguous().numpy() for k, v in state.items()})


# M6: metadata first ------------------------------------------------------------------------------------

def test_M6_stride0_view_of_10_to_the_12_refused_before_allocating(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = lenet_state()
    state["zzz"] = torch.zeros(1, dtype=torch.bfloat16).expand(10**12)
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == f"{tmp_path / 'w.pt'}: error: does not fit spec 'lenet5': unexpected zzz [1000000000000]"


PEAK = """
import resource, sys
from cnnspec.cli import main
import torch, onnx, numpy  # loaded before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
print(code, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def peak_mib(*args: str) -> tuple[int, int, str]:
    """Exit code, growth of peak RSS in MiB, and stderr of a ``cnnspec`` command in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          check=False)
    code, grown = proc.stdout.split()
    return int(code), int(grown), proc.stderr


@pytest.mark.slow
def test_M6_zip_bomb_refused_before_it_is_inflated(tmp_path: Path) -> None:
    """A 0.4 MB .pt whose deflated record holds 400 MB of zeros for an unexpected tensor."""
    with torch.serialization.skip_data():
        torch.save({**lenet_state(), "zzz": torch.empty(100_000_000)}, tmp_path / "skel.pt")
    bomb = tmp_path / "bomb.pt"
    _deflate_zeros(tmp_path / "skel.pt", bomb)
    assert bomb.stat().st_size < 1_000_000
    code, grown, err = peak_mib("build", LENET, "--target", "onnx", "-o", str(tmp_path / "x.onnx"), "--weights", str(bomb))
    assert (code, err) == (1, f"{bomb}: error: does not fit spec 'lenet5': unexpected zzz [100000000]\n")
    assert grown < 100  # inflating the record would take 400 MiB


def _deflate_zeros(skeleton: Path, out: Path) -> None:
    """Write ``out``: the records of ``skeleton``, its large data record replaced by deflated zeros."""
    with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if "/data/" in info.filename and info.file_size > 10**6:
                record = zipfile.ZipInfo(info.filename)
                record.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(record, "w", force_zip64=True) as fh:
                    zeros = bytes(2**24)
                    for start in range(0, info.file_size, len(zeros)):
                        fh.write(zeros[: min(len(zeros), info.file_size - start)])
            elif "/data/" in info.filename:  # skip_data left these unwritten
                dst.writestr(info, bytes(info.file_size))
            else:
                dst.writestr(info, src.read(info.filename))


def safetensors_bytes(header: dict, data_size: int) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data_size)


@pytest.mark.slow
def test_M6_sparse_safetensors_declaring_3_GiB_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    head = safetensors_bytes({"zzz": {"dtype": "F32", "shape": [3, 2**28], "data_offsets": [0, 3 * 2**30]}}, 0)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + 3 * 2**30)  # a sparse file: a few blocks on disk
    code, grown, err = peak_mib("build", LENET, "--target", "onnx", "-o", str(tmp_path / "x.onnx"), "--weights", str(path))
    assert (code, err.split("; unexpected ")[-1]) == (1, "zzz [3, 268435456]\n")
    assert grown < 100


@pytest.mark.parametrize(("header", "size", "why"), [
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8,
     "the data offsets of `a` do not lie inside the file's 8 data bytes"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [2],
                                                                           "data_offsets": [8, 16]}}, 16,
     "the data of `a` and `b` overlap"),
    ({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, 16,
     "`a` is F32 of shape [5], 20 bytes, but its data offsets span 16 bytes"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}}, 16, "`a` has no valid shape (a list of sizes)"),
])
def test_M6_safetensors_header_is_checked(tmp_path: Path, header: dict, size: int, why: str) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes(header, size))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"{path}: error: not a valid safetensors file: {why}"


def test_M6_safetensors_header_length_past_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(CheckpointError, match="its header length is 1,099,511,627,776 bytes, over the limit"):
        read_checkpoint(path)
    path.write_bytes(struct.pack("<Q", 100) + b"{}")
    with pytest.raises(CheckpointError, match="its header length is 100 bytes, but only 2 bytes follow it"):
        read_checkpoint(path)


def test_M6_unknown_safetensors_dtype_refused_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = {k: v.numpy() for k, v in lenet_state().items()}
    save_numpy(state, str(tmp_path / "w.safetensors"))
    raw = (tmp_path / "w.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["0.bias"]["dtype"] = "F4"
    text = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    (tmp_path / "w.safetensors").write_bytes(raw[:8] + text + raw[8 + n:])
    assert refusal(capsys, tmp_path / "w.safetensors") == (
        f"{tmp_path / 'w.safetensors'}: error: `0.bias` is F4 in the file; weights must be floating point "
        "(float16, bfloat16, float32 or float64)")


def test_M6_compressed_data_record_refused_not_misread(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A .pt rewritten by a zip tool that compresses: mapping the record would give wrong values."""
    torch.save(lenet_state(), tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as src, zipfile.ZipFile(tmp_path / "w.pt", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    assert refusal(capsys, tmp_path / "w.pt").startswith(f"{tmp_path / 'w.pt'}: error: the data of `0.weight` (")
    assert "is compressed; torch.save stores tensors uncompressed" in refusal(capsys, tmp_path / "w.pt")


def test_M6_legacy_format_is_read_within_its_budget(tmp_path: Path) -> None:
    state = lenet_state()
    torch.save(state, tmp_path / "w.pt", _use_new_zipfile_serialization=False)
    assert build(tmp_path / "w.pt") == build({k: v.numpy() for k, v in state.items()})
    with pytest.raises(CheckpointError, match=r"a legacy-format checkpoint \(PyTorch before 1.6, not a zip\) is read "
                                              r"whole, and this one is [\d,]+ bytes, more than this spec's weights could take \(1,000\)"):
        read_checkpoint(tmp_path / "w.pt", budget=1000)


# P3: prefixes and long lists -------------------------------------------------------------------------

@pytest.mark.parametrize(("wrap", "prefix", "origin"), [
    (lambda sd: sd, "module.", "as torch.nn.DataParallel and DistributedDataParallel save them"),
    (lambda sd: {"state_dict": sd, "epoch": 3}, "model.",
     "as PyTorch Lightning saves a LightningModule whose network is its `model` attribute"),
])
def test_P3_prefix_on_every_name_gets_a_hint_and_strip_prefix_builds(capsys: pytest.CaptureFixture[str], tmp_path: Path, wrap, prefix: str,
                                                                      origin: str) -> None:
    state = lenet_state()
    torch.save(wrap({prefix + k: v for k, v in state.items()}), tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt") == (
        f"{tmp_path / 'w.pt'}: error: does not fit spec 'lenet5': every tensor name in the file starts with "
        f"`{prefix}` ({origin}); rerun with --strip-prefix {prefix} (strip_prefix='{prefix}' in Python)")
    out = tmp_path / "w.onnx"
    assert main(["build", LENET, "--target", "onnx", "-o", str(out), "--weights", str(tmp_path / "w.pt"),
                 "--strip-prefix", prefix.rstrip(".")]) == 0
    assert out.read_bytes() == build({k: v.numpy() for k, v in state.items()})


def test_P3_resnet50_dataparallel_message_is_one_short_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The finding's case: a 26,955-character line listing every resnet50 tensor twice. Here every tensor
    also has the wrong shape (the header alone is written: empty tensors need no data)."""
    keys = [k for k, _, _ in analyse_file(ROOT / "specs/resnet50.yaml").state_dict_keys()]
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes({"module." + k: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                        for k in keys}, 0))
    line = refusal(capsys, path, spec=str(ROOT / "specs/resnet50.yaml"))
    assert line.startswith(f"{path}: error: does not fit spec 'resnet50': every tensor name in the file starts with "
                           "`module.` (as torch.nn.DataParallel and DistributedDataParallel save them); rerun with "
                           "--strip-prefix module. (strip_prefix='module.' in Python); with it stripped: conv1.weight "
                           "is [0] in the file but [64, 3, 7, 7] in the spec; ")
    assert line.endswith(f"; and {len(keys) - 5} more misshapen") and len(line) < 1000


def test_P3_missing_and_unexpected_lists_are_capped(tmp_path: Path) -> None:
    state = {f"x{i}": np.zeros(2, np.float32) for i in range(12)}
    with pytest.raises(CheckpointError) as err:
        build(state)
    assert str(err.value) == (
        "w: error: does not fit spec 'lenet5': missing 0.weight [6, 1, 5, 5]; missing 0.bias [6]; missing 3.weight "
        "[16, 6, 5, 5]; missing 3.bias [16]; missing 7.weight [120, 400]; and 5 more missing; unexpected x0 [2]; "
        "unexpected x1 [2]; unexpected x2 [2]; unexpected x3 [2]; unexpected x4 [2]; and 7 more unexpected")


def test_P3_strip_prefix_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = lenet_state()
    torch.save(state, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt", "--strip-prefix", "module.") == (
        f"{tmp_path / 'w.pt'}: error: --strip-prefix module.: no tensor name in the file starts with it")
    torch.save({**state, "module.0.bias": state["0.bias"]}, tmp_path / "w.pt")
    assert refusal(capsys, tmp_path / "w.pt", "--strip-prefix", "module") == (
        f"{tmp_path / 'w.pt'}: error: --strip-prefix module.: `0.bias` is in the file both with and without the prefix")
    assert main(["build", LENET, "--target", "onnx", "--strip-prefix", "module."]) == 2


# P12: the Python API's types ---------------------------------------------------------------------------

def test_P12_to_onnx_refuses_a_batch_below_one(tmp_path: Path) -> None:
    model = cnnspec.load(LENET)
    for batch in (0, -3):
        with pytest.raises(ValueError) as err:
            model.to_onnx(tmp_path / "x.onnx", batch=batch)
        assert str(err.value) == (f"batch must be a positive integer (a fixed batch size) or None (a symbolic batch "
                                  f"dimension), got {batch}: a model needs at least one item per batch")
    with pytest.raises(TypeError, match="batch must be a positive integer .* got float"):
        model.to_onnx(tmp_path / "x.onnx", batch=2.5)
    assert not (tmp_path / "x.onnx").exists()
    assert [p.name for p in model.to_onnx(tmp_path / "x.onnx", batch=np.int64(2))] == ["x.onnx"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weights": 123}, ("weights must be a checkpoint path (str or pathlib.Path to a .pt, .pth or .safetensors "
                        "file), a state_dict (a dict of numpy arrays or torch tensors) or None, got int")),
    ({"weights": {"0.weight": [1.0, 2.0]}}, "state_dict values must be numpy arrays or torch tensors; `0.weight` is a list"),
    ({"weights": {3: np.zeros(2)}}, "state_dict keys must be strings, got 3 (int)"),
    ({"module": object()}, "module must be a torch.nn.Module (something with a state_dict()), got object"),
])
def test_P12_bad_weights_types_raise_type_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError) as err:
        cnnspec.load(LENET).to_onnx(tmp_path / "x.onnx", **kwargs)
    assert str(err.value) == message


def test_P12_strip_prefix_in_python(tmp_path: Path) -> None:
    state = lenet_state()
    model = cnnspec.load(LENET)
    model.to_onnx(tmp_path / "x.onnx", weights={"module." + k: v for k, v in state.items()}, strip_prefix="module.")
    assert (tmp_path / "x.onnx").read_bytes() == build({k: v.numpy() for k, v in state.items()})


def test_torch_is_imported_only_for_pt_checkpoints(tmp_path: Path) -> None:
    save_numpy({k: v.numpy() for k, v in lenet_state().items()}, str(tmp_path / "w.safetensors"))
    code = ("import sys; from cnnspec.cli import main; "
            f"assert main(['build', {LENET!r}, '--target', 'onnx', '-o', {str(tmp_path / 'x.onnx')!r}, "
            f"'--weights', {str(tmp_path / 'w.safetensors')!r}]) == 0; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "False"


def test_M6_zip_that_python_cannot_open_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    torch.save(lenet_state(), tmp_path / "w.pt")
    data = bytearray((tmp_path / "w.pt").read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6:central + 8] = struct.pack("<H", 159)  # "version needed to extract": 15.9
    (tmp_path / "w.pt").write_bytes(bytes(data))
    assert refusal(capsys, tmp_path / "w.pt") == (f"{tmp_path / 'w.pt'}: error: cannot read checkpoint: not a valid "
                                                  "zip archive (zip file version 15.9)")


def test_M6_torch_warnings_are_not_printed(tmp_path: Path) -> None:
    """torch warns over several lines while it reads a quantized tensor; a command prints one line."""
    import warnings

    state = lenet_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation warning for making one
        state["3.bias"] = torch.quantize_per_tensor(state["3.bias"], 0.1, 0, torch.qint8)
    torch.save(state, tmp_path / "w.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError) as err:
            build(tmp_path / "w.pt")
    assert [str(w.message) for w in caught] == []
    assert str(err.value) == (f"{tmp_path / 'w.pt'}: error: cannot read checkpoint: it holds quantized tensors; "
                              "weights must be floating point (float16, bfloat16, float32 or float64)")


# a whole model (torch.save(model, path)) given as --weights --------------------------------------------

def test_whole_model_pickle_as_weights_says_to_save_the_state_dict(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    model = cnnspec.load(LENET).to_torch()
    torch.save(model, tmp_path / "w.pt")
    name = f"{type(model).__module__}.{type(model).__name__}"
    assert refusal(capsys, tmp_path / "w.pt") == (
        f"{tmp_path / 'w.pt'}: error: cannot read checkpoint: it holds a pickled Python object (`{name}`), not "
        "only tensors; if it is a whole model, save its weights with `torch.save(model.state_dict(), path)` and "
        "pass that file")
