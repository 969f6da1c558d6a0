"""Every op, structure and fallback of the torch backend, on small specs written for the purpose: each
generated module must match its analysis exactly (see ``check_model``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnspec.compile.torch import render_source
from cnnspec.frontend import analyse_file
from tests.test_torch_zoo import check_model

ROOT = Path(__file__).parents[1]

KITCHEN_SINK = """\
name: kitchen_sink
description: every op the torch backend emits
params: {num_classes: 5, in_channels: 3, growth: 4, width: 8}
input: [$in_channels, 16, 16]
blocks:
  fire:
    args: {squeeze: int, expand: int}
    layers:
      - conv: {out: $squeeze, kernel: 1, name: squeeze}
      - relu: {name: squeeze_activation}
      - concat:
          branches:
            - [{conv: {out: $expand, kernel: 1, name: expand1x1}}, {relu: {name: expand1x1_activation}}]
            - [{conv: {out: $expand, kernel: 3, padding: 1, name: expand3x3}}, {relu: {name: expand3x3_activation}}]
  dense:
    args: {}
    layers:
      - concat:
          branches:
            - []
            - [{batchnorm: {name: norm}}, {relu: {name: relu}}, {conv: {out: $growth, kernel: 3, padding: 1, name: conv}}]
  outer:
    args: {c: int}
    layers:
      - fire: {squeeze: "$c // 2", expand: $c, name: fire}
      - sequential:
          name: tail
          layers:
            - residual:
                body:
                  - conv: {out: "$c * 2", kernel: 3, padding: 1, padding_mode: reflect, bias: false, name: conv}
                  - groupnorm: {groups: 2, name: gn}
                  - leaky_relu: {slope: 0.2, name: act}
            - silu
layers:
  - conv: {out: $width, kernel: 3, padding: 1, name: stem}
  - stage: {name: dense, block: dense, repeat: 2}
  - outer: {c: 8, name: o1}
  - outer: {c: 16, name: o2}
  - sumpool: {kernel: 2, name: sum}
  - avgpool: {kernel: 2, stride: 1, padding: 1, count_include_pad: false, name: avg}
  - maxpool: {kernel: 2, ceil_mode: true, name: maxp}
  - gelu: {approximate: tanh, name: g}
  - linear: {out: 12, over: channels, name: pw}
  - permute: {dims: [0, 2, 3, 1], name: to_last}
  - layernorm: {over: last, name: ln}
  - linear: {out: 6, over: last, name: last}
  - permute: {dims: [0, 3, 1, 2], name: to_first}
  - softmax: {over: channels, name: sm}
  - adaptive_maxpool: {out: [2, 1], name: amp}
  - global_maxpool: {name: gmp}
  - flatten
  - dropout: {p: 0.1, name: drop}
  - tanh: {name: t}
  - linear: {out: $num_classes, name: head}
  - identity: {name: idn}
  - sigmoid
"""

ONE_D = """\
name: one_d
params: {num_classes: 3}
input: [2, 32]
layers:
  - conv: {out: 8, kernel: 5, padding: same, padding_mode: reflect, name: conv}
  - batchnorm: {name: bn}
  - sumpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, name: sum}
  - layernorm: {over: channels, name: ln}
  - linear: {out: 6, over: channels, name: pw}
  - groupnorm: {groups: 3, affine: false, name: gn}
  - avgpool: {kernel: 2, name: avg}
  - adaptive_avgpool: {out: 2, name: pool}
  - flatten
  - linear: {out: $num_classes, bias: false, name: head}
"""

THREE_D = """\
name: three_d
params: {width: 4}
input: [1, 8, 8, 8]
blocks:
  res3:
    args: {w: int, stride: 1}
    layers:
      - residual:
          body:
            - conv: {out: $w, kernel: 3, stride: $stride, padding: 1, bias: false, name: conv}
            - batchnorm: {name: bn}
          shortcut: {projection: auto, name: downsample}
      - relu: {name: relu}
layers:
  - conv: {out: $width, kernel: 3, padding: 1, name: stem}
  - maxpool: {kernel: 2, name: pool}
  - stage: {name: stage, block: res3, repeat: 2, args: {w: 8}, first: {stride: 2}}
  - sumpool: {kernel: 2, name: sum}
  - global_avgpool: {name: gap}
  - flatten
  - linear: {out: 2, name: fc}
"""

MIXED_NAMES = """\
name: mixed
input: [3, 8, 8]
layers:
  - sequential:
      name: body
      layers:
        - conv: {out: 4, kernel: 3, name: conv}
        - maxpool: {kernel: 2}
        - relu
        - batchnorm: {name: bn}
  - flatten
  - linear: {out: 2}
"""

# One block at two spatial sizes: its linear layer's input size depends on the spatial size, so the
# class cannot compute it from its arguments and takes it as an extra constructor argument.
SPATIAL = """\
name: spatial
input: [3, 8, 8]
blocks:
  probe:
    args: {}
    layers:
      - conv: {out: 2, kernel: 1, name: conv}
      - flatten
      - linear: {out: 4, name: fc}
layers:
  - concat:
      branches:
        - [{probe: {name: near}}]
        - [{maxpool: {kernel: 2, name: shrink}}, {probe: {name: far}}]
  - linear: {out: 2, name: head}
"""


def _graph(tmp_path: Path, text: str):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return analyse_file(spec)


@pytest.mark.parametrize("text", [KITCHEN_SINK, ONE_D, THREE_D, MIXED_NAMES, SPATIAL],
                         ids=["kitchen_sink", "one_d", "three_d", "mixed_names", "spatial"])
def test_generated_module_matches_analysis(tmp_path: Path, text: str) -> None:
    check_model(_graph(tmp_path, text))


def test_nested_blocks_and_spec_params_inside_blocks(tmp_path: Path) -> None:
    source = render_source(_graph(tmp_path, KITCHEN_SINK))
    assert "Dense(width + growth, growth=growth)" in source  # a spec param used inside a block
    assert "class OuterTail(nn.Module):" in source  # a scope with a residual inside a block: its own class
    assert "self.tail = OuterTail(" in source and ", c=c)" in source


def test_spatially_dependent_size_becomes_a_constructor_argument(tmp_path: Path) -> None:
    source = render_source(_graph(tmp_path, SPATIAL))
    assert "self.fc = nn.Linear(fc_in_features, 4)" in source
    assert "Probe(3, fc_in_features=128)" in source and "Probe(3, fc_in_features=32)" in source


def test_mixed_names_keep_their_state_dict_keys(tmp_path: Path) -> None:
    source = render_source(_graph(tmp_path, MIXED_NAMES))
    assert "self.add_module('1', nn.MaxPool2d(2))" in source
    assert "x = self.get_submodule('1')(x)" in source
    assert "x = torch.relu(x)" in source  # unnamed stateless op: a plain call


SINGLE_ARG_MIN_MAX = """\
name: single_arg_min_max
params: {width: 8}
input: [3, 8, 8]
blocks:
  unit:
    args: {w: int}
    layers:
      - conv: {out: "max($w)", kernel: 3, padding: "min($w // $w)", name: conv}
layers:
  - unit: {w: "max($width)", name: a}
  - unit: {w: 4, name: b}
"""


def test_single_argument_min_max_is_its_argument(tmp_path: Path) -> None:
    """``max($w)`` is ``$w`` in the spec language; Python's ``max`` needs two arguments (found by the fuzzer:
    a TypeError while verifying a block's symbolic arguments)."""
    graph = _graph(tmp_path, SINGLE_ARG_MIN_MAX)
    source = render_source(graph)
    assert "max(" not in source and "min(" not in source
    check_model(graph)


ROUNDING = """\
name: rounding
params: {width_mult: 1.4, depth: 10}
input: [3, 8, 8]
blocks:
  unit:
    args: {w: int}
    layers:
      - conv: {out: $w, kernel: 3, padding: 1, name: conv}
layers:
  - conv: {out: "ceil($depth * $width_mult)", kernel: 3, padding: "floor($width_mult)", name: stem}
  - unit: {w: "make_divisible(40 * $width_mult, 8)", name: a}
  - global_avgpool
  - flatten
  - linear: {out: 4, name: fc}
"""


def test_ceil_floor_make_divisible_in_generated_code(tmp_path: Path) -> None:
    """``ceil``/``floor`` are written ``math.ceil``/``math.floor`` (the module imports math), ``make_divisible``
    calls a helper the module defines; the module follows ``width_mult`` (Rounding(width_mult=2.0) is the spec
    analysed with 2.0)."""
    graph = _graph(tmp_path, ROUNDING)
    source = render_source(graph)
    assert '"""\n\nimport math\n\nimport torch\nfrom torch import nn\n' in source
    assert "nn.Conv2d(3, math.ceil(depth * width_mult), kernel_size=3, padding=math.floor(width_mult))" in source
    assert "Unit(math.ceil(depth * width_mult), make_divisible(40 * width_mult, 8))" in source
    assert "\n\n\ndef make_divisible(v: float, divisor: int) -> int:\n" in source
    assert "        new_v += divisor\n    return new_v\n\n\nclass Unit(nn.Module):" in source
    assert "raise ValueError" not in source  # both params followed
    check_model(graph)
    other = analyse_file(tmp_path / "spec.yaml", overrides={"width_mult": 2.0, "depth": 7})
    from cnnspec.compile.torch import build_module
    model = build_module(graph, width_mult=2.0, depth=7)
    keys = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert keys == other.state_dict_keys()
    assert [s for _, s, _ in keys[:3]] == [(14, 3, 3, 3), (14,), (80, 14, 3, 3)]  # ceil(7 * 2.0), make_divisible(80, 8)


def test_params_named_math_and_make_divisible_do_not_shadow_them(tmp_path: Path) -> None:
    """A param named ``math`` or ``make_divisible`` would hide the module or the helper in the constructor
    (C10): they become ``math_`` and ``make_divisible_``."""
    graph = _graph(tmp_path, """\
name: shadow
params: {math: 1.4, make_divisible: 5}
input: [3, 8, 8]
layers:
  - conv: {out: "make_divisible($make_divisible * $math, 8) + ceil($math)", kernel: 1, name: c}
""")
    source = render_source(graph)
    assert "def __init__(self, math_: float = 1.4, make_divisible_: int = 5) -> None:" in source
    assert "nn.Conv2d(3, make_divisible(make_divisible_ * math_, 8) + math.ceil(math_), kernel_size=1)" in source
    check_model(graph)


def test_projection_flag_and_symbolic_stride_in_3d(tmp_path: Path) -> None:
    source = render_source(_graph(tmp_path, THREE_D))
    assert "nn.Conv3d(in_channels, w, kernel_size=1, stride=stride, bias=False)" in source
    assert "Res3(width, 8, stride=2, downsample=True)" in source


def test_same_bytes_under_any_hash_seed(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(KITCHEN_SINK)
    out = []
    for seed in ("1", "2"):
        target = tmp_path / f"out{seed}.py"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "cnnspec", "build", str(spec), "-o", str(target)], env=env,
                       cwd=tmp_path, check=True, capture_output=True)
        out.append(target.read_bytes())
    assert out[0] == out[1]


# The resampling and layout ops in blocks whose instances differ: a DCGAN-style generator (linear,
# reshape to 4x4, transposed convolutions), causal 1D padding written as an expression, upsampling,
# pixel and channel shuffles, and the learnable PReLU.
GENERATOR = """\
name: generator
params: {z: 16, width: 8}
input: [$z]
blocks:
  up:
    args: {c: int}
    layers:
      - conv_transpose: {out: $c, kernel: 4, stride: 2, padding: 1, bias: false, name: conv}
      - batchnorm: {name: bn}
      - prelu: {per_channel: true, name: act}
  smooth:
    args: {c: int, mode: nearest}
    layers:
      - upsample: {scale: 2, mode: $mode, name: up}
      - pad: {padding: 1, mode: reflect, name: pad}
      - conv: {out: $c, kernel: 3, name: conv}
      - elu: {name: act}
layers:
  - linear: {out: "$width * 4 * 16", name: project}
  - reshape: {shape: ["$width * 4", 4, 4], name: unflatten}
  - up: {c: "$width * 2", name: up1}
  - up: {c: $width, name: up2}
  - smooth: {c: 8, name: s1}
  - smooth: {c: 8, mode: linear, name: s2}
  - pixel_unshuffle: {factor: 2}
  - channel_shuffle: {groups: 4}
  - pixel_shuffle: {factor: 2}
  - pad: {left: 2, top: 1, value: 0.5}
  - reshape: {shape: [8, 65, -1]}
  - mish
  - conv_transpose: {out: 3, kernel: 3, stride: [1, 2], output_padding: [0, 1], groups: 1}
  - tanh
"""

CAUSAL = """\
name: causal
input: [2, 50]
blocks:
  causal:
    args: {width: int, k: int, d: 1}
    layers:
      - pad: {left: "($k - 1) * $d", name: pad}
      - conv: {out: $width, kernel: $k, dilation: $d, name: conv}
      - elu: {alpha: 0.5, name: act}
layers:
  - causal: {width: 4, k: 3, name: b1}
  - causal: {width: 4, k: 3, d: 2, name: b2}
  - causal: {width: 4, k: 5, d: 4, name: b3}
"""


@pytest.mark.parametrize("text", [GENERATOR, CAUSAL], ids=["generator", "causal"])
def test_resampling_and_layout_ops_match_analysis(tmp_path: Path, text: str) -> None:
    check_model(_graph(tmp_path, text))


def test_resampling_and_layout_ops_read_like_pytorch(tmp_path: Path) -> None:
    source = render_source(_graph(tmp_path, GENERATOR))
    for line in [
        "self.conv = nn.ConvTranspose2d(in_channels, c, kernel_size=4, stride=2, padding=1, bias=False)",
        "self.act = nn.PReLU(num_parameters=c)",
        "self.up = nn.Upsample(scale_factor=2, mode=up_mode)",
        "self.s2 = Smooth(8, 8, mode='linear', up_mode='bilinear')",
        "self.pad = nn.ReflectionPad2d(1)",
        "self.unflatten = nn.Unflatten(1, (width * 4, 4, 4))",
        "self.add_module('10', Reshape((8, 65, 66)))",
        "self.add_module('6', nn.PixelUnshuffle(2))",
        "self.add_module('7', nn.ChannelShuffle(4))",
        "self.add_module('9', nn.ConstantPad2d((2, 0, 1, 0), 0.5))",
        "x = nn.functional.mish(x)  # (N, 8, 65, 66)",
        "self.add_module('12', nn.ConvTranspose2d(8, 3, kernel_size=3, stride=(1, 2), output_padding=(0, 1)))",
    ]:
        assert line in source, line
    causal = render_source(_graph(tmp_path, CAUSAL))
    assert "self.pad = nn.ZeroPad1d(((k - 1) * d, 0))" in causal
    assert "self.act = nn.ELU(alpha=0.5, inplace=True)" in causal
