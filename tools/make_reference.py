"""Make the reference figures the zoo tests compare with: ``tests/reference/*.json``.

``torchvision_models.json`` holds every figure cnnspec is checked against for 14 torchvision models and three
hand-written ``nn.Sequential`` CNNs (lenet5, cnn3d_example, cnn1d_example): state_dict, every leaf module
call, parameter and buffer counts, fvcore MACs (total, per operator, per leaf), torchinfo mult-adds (total
and per leaf layer), ``torch.utils.flop_counter.FlopCounterMode`` FLOPs and torchvision's weight meta data.
``coverage_models.json`` holds fewer figures (state_dict, leaf calls, FlopCounterMode FLOPs, default weight
meta data) for 22 torchvision models (mobilenet_v2 again among them) and a MONAI 3-D BasicUNet. Every
model is built with ``weights=None`` (an attempt to download weights stops the tool), in ``eval()`` mode,
float32, batch 1, on the CPU. Both files take about 40 s on two CPU cores.

The committed files were made with Python 3.11.7, torch 2.14.1+cu130, torchvision 0.29.1+cu130,
torchinfo 1.8.0, fvcore 0.1.5.post20221221 and monai 1.6.1. These are not the project's dependencies;
use a separate environment (``.venv-ref/`` is ignored by git)::

    python3 -m venv .venv-ref && . .venv-ref/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1
    pip install torchinfo==1.8.0 fvcore==0.1.5.post20221221 monai==1.6.1

Run it from the repository root::

    python tools/make_reference.py                          # rewrite both files in tests/reference/
    python tools/make_reference.py --out /tmp/ref --compare   # write elsewhere, compare with them
    python tools/make_reference.py --only resnet18 lenet5 --out /tmp/ref --compare

``--compare`` compares the new files with ``tests/reference/`` field by field and exits 1 on a difference;
``analysis_seconds`` and the environment's ``platform`` are expected to differ and are not compared.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "tests" / "reference"
TORCHVISION_FILE = "torchvision_models.json"
COVERAGE_FILE = "coverage_models.json"
SKIPPED_FIELDS = frozenset({"analysis_seconds", "platform"})

NOTES = [
    (
        "fvcore counts one fused multiply-add as one flop, i.e. fvcore_macs is MACs; it counts conv, "
        "linear/addmm/matmul, batch_norm, layer_norm, adaptive_avg_pool2d, upsample etc. (see "
        "fvcore_by_operator) and skips e.g. max_pool, add, relu (fvcore_unsupported_ops)."
    ),
    (
        "torchinfo total_mult_adds = sum over layers with parameters: Conv*: numel(param)*prod(output "
        "spatial)*batch for weight AND bias; other layers (Linear, BatchNorm, LayerNorm...): "
        "batch*numel(param) for weight and bias; parameterless layers count 0."
    ),
    (
        "torch_flop_counter_flops is torch.utils.flop_counter.FlopCounterMode, which counts 2 FLOPs per "
        "MAC and only conv/mm-like ops."
    ),
    "torchvision meta _ops is labelled GFLOPS but equals ~ (conv+linear MACs)/1e9 for these models.",
    (
        "leaf_calls lists leaf modules in call order; a module object used twice appears twice (ResNet "
        "BasicBlock/Bottleneck reuse self.relu). Functional ops (torch.flatten, residual add, ConvNeXt "
        "permute) are not modules and do not appear."
    ),
]

Json = dict[str, Any]


@dataclass(frozen=True)
class ModelSpec:
    """One reference model: how to build it, at which input shape, and which file records it."""

    name: str
    input_shape: tuple[int, ...]
    file: str
    source: str
    build: Callable[[], nn.Module]
    torchvision: bool


# --- the models ---------------------------------------------------------------------------------------------


def lenet5() -> nn.Sequential:
    """The classic LeNet-5 on 1x32x32 inputs, tanh activations and average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(),
        nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10),
    )


def cnn3d_example() -> nn.Sequential:
    """A small 3-D CNN regressing one value from a 1x32x32x32 volume."""
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(16, 1),
    )


def cnn1d_example() -> nn.Sequential:
    """A small 1-D CNN classifying a 2x128 signal; its second conv pads 'same' (fvcore cannot count it)."""
    return nn.Sequential(
        nn.Conv1d(2, 16, 7, stride=2, padding=3), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Conv1d(16, 32, 5, padding="same"), nn.ReLU(), nn.AdaptiveMaxPool1d(1),
        nn.Flatten(),
        nn.Linear(32, 4),
    )


def monai_basicunet_3d() -> nn.Module:
    """MONAI's BasicUNet, 3-D, one input channel, two output classes."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=1, out_channels=2, features=(32, 32, 64, 128, 256, 32))


def torchvision_spec(name: str, shape: tuple[int, ...], file: str, **config: Any) -> ModelSpec:
    """A torchvision model built by ``get_model(name, weights=None, **config)``."""
    arguments = "".join(f", {key}={value!r}" for key, value in {"weights": None, **config}.items())
    build = functools.partial(torchvision.models.get_model, name, weights=None, **config)
    return ModelSpec(name, shape, file, f"torchvision.models.get_model({name!r}{arguments})", build, True)


def hand_written_spec(build: Callable[[], nn.Module], shape: tuple[int, ...]) -> ModelSpec:
    """One of the hand-written ``nn.Sequential`` models of this file."""
    source = f"tools/make_reference.py:{build.__name__} (nn.Sequential)"
    return ModelSpec(build.__name__, shape, TORCHVISION_FILE, source, build, False)


IMAGE = (1, 3, 224, 224)
VIDEO = (1, 3, 16, 112, 112)
# weights_backbone=None: with weights=None alone the segmentation builders download ImageNet backbone weights.
# aux_loss=True: FCN and DeepLabV3 have their auxiliary head only when asked (or with pretrained weights);
# the reference figures include it (aux_classifier.* in the state_dict, 'aux' in the output).
SEGMENTATION = {"weights_backbone": None}

MODELS: tuple[ModelSpec, ...] = (
    *(
        torchvision_spec(name, IMAGE, TORCHVISION_FILE)
        for name in (
            "alexnet", "vgg11", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
            "resnext50_32x4d", "wide_resnet50_2", "convnext_tiny", "convnext_small", "mobilenet_v2",
            "squeezenet1_0",
        )
    ),
    hand_written_spec(lenet5, (1, 1, 32, 32)),
    hand_written_spec(cnn3d_example, (1, 1, 32, 32, 32)),
    hand_written_spec(cnn1d_example, (1, 2, 128)),
    *(
        torchvision_spec(name, IMAGE, COVERAGE_FILE)
        for name in (
            "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0",
        )
    ),
    torchvision_spec("efficientnet_b1", (1, 3, 240, 240), COVERAGE_FILE),  # b1-b7: b0 scaled, at their resolution
    torchvision_spec("efficientnet_b4", (1, 3, 380, 380), COVERAGE_FILE),
    torchvision_spec("efficientnet_b7", (1, 3, 600, 600), COVERAGE_FILE),
    torchvision_spec("efficientnet_v2_s", (1, 3, 384, 384), COVERAGE_FILE),
    *(
        torchvision_spec(name, IMAGE, COVERAGE_FILE)
        for name in (
            "mnasnet1_0", "regnet_x_400mf", "regnet_y_400mf", "densenet121", "squeezenet1_1",
            "shufflenet_v2_x1_0", "googlenet",
        )
    ),
    torchvision_spec("inception_v3", (1, 3, 299, 299), COVERAGE_FILE),
    torchvision_spec("fcn_resnet50", IMAGE, COVERAGE_FILE, **SEGMENTATION, aux_loss=True),
    torchvision_spec("deeplabv3_resnet50", IMAGE, COVERAGE_FILE, **SEGMENTATION, aux_loss=True),
    torchvision_spec("lraspp_mobilenet_v3_large", IMAGE, COVERAGE_FILE, **SEGMENTATION),
    *(torchvision_spec(name, VIDEO, COVERAGE_FILE) for name in ("r3d_18", "mc3_18", "r2plus1d_18")),
    ModelSpec(
        "monai_basicunet_3d", (1, 1, 64, 64, 64), COVERAGE_FILE,
        "monai.networks.nets.BasicUNet(spatial_dims=3, in_channels=1, out_channels=2, "
        "features=(32, 32, 64, 128, 256, 32))",
        monai_basicunet_3d, False,
    ),
)


# --- measuring one model ------------------------------------------------------------------------------------


def shape_of(value: Any) -> Any:
    """A tensor's shape as a list; dicts, tuples and lists of tensors keep their structure."""
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, Mapping):
        return {key: shape_of(item) for key, item in value.items()}
    return [shape_of(item) for item in value]


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules without children, in registration order, each once."""
    return [(name, module) for name, module in model.named_modules() if not any(module.children())]


def parameter_counts(model: nn.Module) -> Json:
    """Parameters (all and trainable) and their tensor count."""
    parameters = list(model.parameters())
    return {
        "params_total": sum(p.numel() for p in parameters),
        "params_trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "num_parameter_tensors": len(parameters),
    }


def buffer_counts(model: nn.Module) -> Json:
    """Buffers: tensor count, elements, and elements without BatchNorm's ``num_batches_tracked``."""
    buffers = list(model.named_buffers())
    return {
        "num_buffer_tensors": len(buffers),
        "buffers_numel_total": sum(b.numel() for _, b in buffers),
        "buffers_numel_excl_num_batches_tracked": sum(
            b.numel() for name, b in buffers if not name.endswith("num_batches_tracked")
        ),
    }


def state_dict_entries(model: nn.Module) -> list[Json]:
    """Every state_dict entry in PyTorch's order: key, shape, dtype (``float32``, ``int64``...)."""
    return [
        {"key": key, "shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
        for key, tensor in model.state_dict().items()
    ]


def leaf_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[Json], Any]:
    """Run the model once; every leaf module call in call order, and the model's output shape."""
    calls: list[Json] = []

    def record(name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        calls.append({
            "name": name,
            "type": type(module).__name__,
            "input_shape": shape_of(args[0]),
            "output_shape": shape_of(output),
        })

    handles = [
        module.register_forward_hook(functools.partial(record, name)) for name, module in leaf_modules(model)
    ]
    try:
        with torch.no_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls, shape_of(output)


def flop_counter(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total FLOPs and FLOPs by aten op (``aten.convolution``...), in first-seen order."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    by_op = {str(op): int(flops) for op, flops in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops()), by_op


def convolution_mode_handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """fvcore's own conv formula for ``aten::_convolution_mode`` (a conv with ``padding='same'``)."""
    from fvcore.nn.jit_handles import conv_flop_count, get_shape

    x_shape, w_shape, out_shape = get_shape(inputs[0]), get_shape(inputs[1]), get_shape(outputs[0])
    return Counter({"conv": conv_flop_count(x_shape, w_shape, out_shape, transposed=False)})


def fvcore_analysis(model: nn.Module, x: torch.Tensor, **handles: Any) -> Any:
    """An fvcore ``FlopCountAnalysis`` that stays quiet (no warnings on unsupported or uncalled modules)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x)
    for op, handle in handles.items():
        analysis.set_op_handle(op, handle)
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")


def fvcore_figures(model: nn.Module, x: torch.Tensor) -> Json:
    """fvcore MACs: total, by operator, ops counted as 0 (and the total with a handle for 'same' convs)."""
    analysis = fvcore_analysis(model, x)
    figures: Json = {
        "fvcore_macs": int(analysis.total()),
        "fvcore_by_operator": {op: int(n) for op, n in analysis.by_operator().items()},
        "fvcore_unsupported_ops": dict(analysis.unsupported_ops()),
    }
    if "aten::_convolution_mode" in figures["fvcore_unsupported_ops"]:
        handled = fvcore_analysis(model, x, **{"aten::_convolution_mode": convolution_mode_handle})
        figures["fvcore_macs_with_convolution_mode_handle"] = int(handled.total())
    return figures


def fvcore_leaf_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """fvcore MACs of every leaf module, in registration order."""
    by_module = fvcore_analysis(model, x).by_module()
    return {name: int(by_module[name]) for name, _ in leaf_modules(model)}


def torchinfo_figures(model: nn.Module, x: torch.Tensor) -> tuple[Json, list[Json]]:
    """torchinfo's totals, and its figures for every leaf layer call."""
    from torchinfo import summary

    stats = summary(model, input_data=x, device="cpu", verbose=0)
    totals = {
        "torchinfo_total_mult_adds": int(stats.total_mult_adds),
        "torchinfo_total_params": int(stats.total_params),
        "torchinfo_trainable_params": int(stats.trainable_params),
        "torchinfo_total_output_bytes": int(stats.total_output_bytes),
        "torchinfo_total_param_bytes": int(stats.total_param_bytes),
        "torchinfo_total_input": int(stats.total_input),
    }
    layers = [
        {
            "var_name": layer.var_name,
            "type": layer.class_name,
            "depth": layer.depth,
            "output_size": list(layer.output_size),
            "num_params": int(layer.num_params),
            "macs": int(layer.macs),
        }
        for layer in stats.summary_list
        if layer.is_leaf_layer
    ]
    return totals, layers


def jsonable(value: Any) -> Any:
    """Tuples as lists, recursively, so the value prints as JSON."""
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [jsonable(item) for item in value]
    return value


def weights_enum(spec: ModelSpec) -> Any:
    """The torchvision weights enum of a torchvision model, None for the others."""
    return torchvision.models.get_model_weights(spec.name) if spec.torchvision else None


def weights_meta(weights: Any) -> Json:
    """One set of torchvision weights, described without downloading it."""
    meta = weights.meta
    return {
        "_ops_GFLOPS": meta["_ops"],
        "num_params": meta["num_params"],
        "_file_size_MB": meta["_file_size"],
        "min_size": jsonable(meta["min_size"]),
        "url": weights.url,
        "transforms_keywords": jsonable(weights.transforms.keywords),
        "_metrics": jsonable(meta["_metrics"]),
    }


def full_torchvision_meta(spec: ModelSpec) -> Json | None:
    """Every set of weights torchvision offers for the model, and its default."""
    enum = weights_enum(spec)
    if enum is None:
        return None
    return {
        "enum": enum.__name__,
        "default": str(enum.DEFAULT),
        "weights": {str(weights): weights_meta(weights) for weights in enum},
    }


def default_torchvision_meta(spec: ModelSpec) -> Json | None:
    """The model's default torchvision weights: name, GFLOPS, parameters, minimum input size."""
    enum = weights_enum(spec)
    if enum is None:
        return None
    default = enum.DEFAULT
    return {
        "weights": str(default),
        "_ops_GFLOPS": default.meta["_ops"],
        "num_params": default.meta["num_params"],
        "min_size": jsonable(default.meta["min_size"]),
    }


def prepared(spec: ModelSpec) -> tuple[nn.Module, torch.Tensor]:
    """The model in eval mode on the CPU and a float32 input of its recorded shape (fixed seed)."""
    torch.manual_seed(0)
    model = spec.build().eval()
    return model, torch.randn(spec.input_shape, generator=torch.Generator().manual_seed(0))


def header(spec: ModelSpec) -> Json:
    """The fields every entry starts with."""
    return {"model": spec.name, "input_shape": list(spec.input_shape), "mode": "eval", "dtype": "float32"}


def torchvision_entry(spec: ModelSpec) -> Json:
    """All figures of one model of ``torchvision_models.json``, in that file's field order."""
    model, x = prepared(spec)
    start = time.perf_counter()
    state_dict = state_dict_entries(model)
    calls, output_shape = leaf_calls(model, x)
    leaves = [name for name, _ in leaf_modules(model)]
    called = {call["name"] for call in calls}
    flops, flops_by_op = flop_counter(model, x)
    torchinfo_totals, torchinfo_layers = torchinfo_figures(model, x)
    entry = {
        **header(spec),
        **parameter_counts(model),
        **buffer_counts(model),
        "state_dict_entries": len(state_dict),
        "state_dict_numel_total": sum(p.numel() for p in model.state_dict().values()),
        "state_dict": state_dict,
        "output_shape": output_shape,
        "num_leaf_modules": len(leaves),
        "num_leaf_calls": len(calls),
        "uncalled_leaf_modules": [name for name in leaves if name not in called],
        **fvcore_figures(model, x),
        **torchinfo_totals,
        "torch_flop_counter_flops": flops,
        "torch_flop_counter_by_op": flops_by_op,
        "leaf_calls": calls,
        "leaf_fvcore_macs": fvcore_leaf_macs(model, x),
        "torchinfo_leaf_layers": torchinfo_layers,
    }
    entry["analysis_seconds"] = round(time.perf_counter() - start, 3)
    entry["source"] = spec.source
    entry["torchvision_meta"] = full_torchvision_meta(spec)
    return entry


def coverage_entry(spec: ModelSpec) -> Json:
    """The figures of one model of ``coverage_models.json``, in that file's field order."""
    model, x = prepared(spec)
    parameters = parameter_counts(model)
    state_dict = state_dict_entries(model)
    calls, output_shape = leaf_calls(model, x)
    return {
        **header(spec),
        "params_total": parameters["params_total"],
        "params_trainable": parameters["params_trainable"],
        "buffers_numel_total": buffer_counts(model)["buffers_numel_total"],
        "state_dict_entries": len(state_dict),
        "state_dict": state_dict,
        "output_shape": output_shape,
        "leaf_calls": calls,
        "torch_flop_counter_flops": flop_counter(model, x)[0],
        "torchvision_meta": default_torchvision_meta(spec),
        "source": spec.source,
    }


# --- the files ----------------------------------------------------------------------------------------------


def torchvision_environment() -> Json:
    """The environment block of ``torchvision_models.json``."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": str(torch.__version__),
        "torchvision": torchvision.__version__,
        "torchinfo": version("torchinfo"),
        "fvcore": version("fvcore"),
        "torch_num_threads": torch.get_num_threads(),
        "notes": NOTES,
    }


def coverage_environment() -> Json:
    """The environment block of ``coverage_models.json``."""
    return {
        "torch": str(torch.__version__),
        "torchvision": torchvision.__version__,
        "monai": version("monai"),
    }


ENTRY_MAKERS: dict[str, Callable[[ModelSpec], Json]] = {
    TORCHVISION_FILE: torchvision_entry,
    COVERAGE_FILE: coverage_entry,
}
ENVIRONMENTS: dict[str, Callable[[], Json]] = {
    TORCHVISION_FILE: torchvision_environment,
    COVERAGE_FILE: coverage_environment,
}


def selected(only: Sequence[str] | None) -> list[ModelSpec]:
    """The models named in ``only`` (all when None), in catalogue order."""
    return [spec for spec in MODELS if only is None or spec.name in only]


def make_document(file: str, specs: Sequence[ModelSpec], log: Callable[[str], None]) -> Json:
    """One reference file's content: its environment and an entry per model, each timed on stderr."""
    entries = []
    for spec in specs:
        start = time.perf_counter()
        entries.append(ENTRY_MAKERS[file](spec))
        log(f"{file}: {spec.name}: {time.perf_counter() - start:.1f} s")
    return {"environment": ENVIRONMENTS[file](), "models": entries}


def dumps(document: Json) -> str:
    """The JSON text, laid out as the committed files are (indent 1, no final newline)."""
    return json.dumps(document, indent=1)


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: a temporary sibling first, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


# --- comparing with the committed files ---------------------------------------------------------------------


def differences(made: Any, committed: Any, where: str) -> Iterator[str]:
    """Every place two JSON values differ, as ``path: made != committed``; ``SKIPPED_FIELDS`` skipped."""
    if isinstance(made, dict) and isinstance(committed, dict):
        for key in list(committed) + [key for key in made if key not in committed]:
            if key in SKIPPED_FIELDS:
                continue
            if key not in made or key not in committed:
                yield f"{where}.{key}: only in {'made' if key in made else 'committed'}"
            else:
                yield from differences(made[key], committed[key], f"{where}.{key}")
        if [k for k in made if k in committed] != [k for k in committed if k in made]:
            yield f"{where}: keys in another order"
    elif isinstance(made, list) and isinstance(committed, list) and len(made) == len(committed):
        for index, (one, other) in enumerate(zip(made, committed, strict=True)):
            yield from differences(one, other, f"{where}[{index}]")
    elif not same_scalar(made, committed):
        yield f"{where}: {abbreviated(made)} != {abbreviated(committed)}"


def same_scalar(made: Any, committed: Any) -> bool:
    """Equal values of one type; NaN (torchvision's accuracy of weights without a classifier) equals NaN."""
    if type(made) is not type(committed):
        return False
    return made == committed or (isinstance(made, float) and math.isnan(made) and math.isnan(committed))


def abbreviated(value: Any, limit: int = 120) -> str:
    """A value's JSON text, cut to ``limit`` characters."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_document(file: str, made: Json, committed: Json) -> list[str]:
    """Compare a made file with the committed one, model by model; print a line per model; the differences."""
    found = list(differences(made["environment"], committed["environment"], f"{file}:environment"))
    committed_models = {entry["model"]: entry for entry in committed["models"]}
    for entry in made["models"]:
        name = entry["model"]
        if name not in committed_models:
            found.append(f"{file}:{name}: not in the committed file")
            continue
        model_differences = list(differences(entry, committed_models[name], f"{file}:{name}"))
        same = [field for field in entry if field not in SKIPPED_FIELDS and not any(
            line.startswith(f"{file}:{name}.{field}") for line in model_differences)]
        print(f"{file}:{name}: {len(same)} fields equal, {len(model_differences)} differences")
        found.extend(model_differences)
    return found


def committed_documents(files: Sequence[str], reference_dir: Path) -> dict[str, Json]:
    """The committed files, read before anything is written (``--out`` may be the committed directory)."""
    return {file: json.loads((reference_dir / file).read_text()) for file in files}


def compare(made: dict[str, Json], committed: dict[str, Json]) -> int:
    """Compare every made file with its committed twin; print the differences; 0 if none, else 1."""
    found: list[str] = []
    for file, document in made.items():
        found.extend(compare_document(file, document, committed[file]))
    for line in found:
        print(line)
    print(f"{len(found)} differences (analysis_seconds and platform not compared)")
    return 1 if found else 0


# --- command line -------------------------------------------------------------------------------------------


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these models")
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR, help="where to write (tests/reference)")
    parser.add_argument("--compare", action="store_true", help="compare what was made with tests/reference")
    parsed = parser.parse_args(argv)
    names = list(dict.fromkeys(spec.name for spec in MODELS))
    unknown = [name for name in parsed.only or () if name not in names]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; the models are {', '.join(names)}")
    if parsed.only and parsed.out.resolve() == REFERENCE_DIR:
        parser.error("--only would overwrite the committed files with a few models; give --out DIR")
    return parsed


def refuse_downloads() -> None:
    """Make any attempt to download weights fail loudly (every model here is built with ``weights=None``)."""

    def refuse(url: str, *args: Any, **kwargs: Any) -> None:
        raise SystemExit(f"make_reference: error: a model tried to download {url}; build it without weights")

    import torchvision.models._api as torchvision_api

    torch.hub.load_state_dict_from_url = refuse
    torchvision_api.load_state_dict_from_url = refuse  # torchvision's WeightsEnum.get_state_dict calls this


def main(argv: Sequence[str] | None = None) -> int:
    """Make the reference files (all models, or those named with ``--only``) and optionally compare them."""
    args = arguments(argv)
    warnings.filterwarnings("ignore")  # torchvision's init_weights FutureWarning, jit tracer warnings
    refuse_downloads()
    specs = selected(args.only)
    files = [file for file in ENTRY_MAKERS if any(spec.file == file for spec in specs)]
    committed = committed_documents(files, REFERENCE_DIR) if args.compare else {}
    made: dict[str, Json] = {}
    for file in files:
        file_specs = [spec for spec in specs if spec.file == file]
        made[file] = make_document(file, file_specs, lambda line: print(line, file=sys.stderr, flush=True))
        write(args.out / file, dumps(made[file]))
    return compare(made, committed) if args.compare else 0


if __name__ == "__main__":
    sys.exit(main())
