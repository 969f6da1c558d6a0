"""Constructor arguments of a generated model (issue 10, item 8): a spec param the source follows is an
ordinary argument; one that changes sizes the source writes as numbers (``pad`` before a flatten) is
refused by the constructor with a ValueError saying how to generate the module for that value; and
``Model.to_torch(pad=0)`` analyses the spec again, so it gets every size right."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnspec
from cnnspec.compile.torch.loader import import_source
from cnnspec.errors import SpecError

torch = pytest.importorskip("torch")

CIFAR = """\
name: lenet_cifar
params: {num_classes: 10, pad: 2, in_channels: 3, p: 0.5, depth: 1}
input: [$in_channels, 32, 32]
blocks:
  unit:
    layers:
      - conv: {out: 6, kernel: 3, padding: 1}
      - relu
layers:
  - conv: {out: 6, kernel: 5, padding: $pad}
  - stage: {block: unit, repeat: $depth}
  - maxpool: {kernel: 2}
  - conv: {out: 16, kernel: 5}
  - relu
  - maxpool: {kernel: 2}
  - flatten
  - dropout: {p: $p}
  - linear: {out: 120}
  - relu
  - linear: {out: $num_classes}
"""
PAD_REFUSAL = ("pad=0: LenetCifar was generated for pad=2, and other values change layers or numbers that it writes "
               "out; generate it for another value: cnnspec build cifar.yaml --target torch --set pad=VALUE")


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> cnnspec.Model:
    monkeypatch.chdir(tmp_path)
    Path("cifar.yaml").write_text(CIFAR)
    return cnnspec.load("cifar.yaml")


def test_the_constructor_refuses_what_the_source_cannot_follow(model: cnnspec.Model) -> None:
    source = model.to_source()
    cls = import_source(source, "cnnspec_generated.test_params_cifar").LenetCifar
    with pytest.raises(ValueError) as refused:
        cls(pad=0)
    assert str(refused.value) == PAD_REFUSAL
    with pytest.raises(ValueError, match=r"^depth=2: LenetCifar was generated for depth=1, "):
        cls(depth=2)  # a stage's repeat changes the layers themselves
    for followed in ("num_classes", "in_channels", "p"):
        assert f"if {followed} !=" not in source
    net = cls(num_classes=7, in_channels=1, p=0.1).eval()
    assert tuple(net(torch.zeros(2, 1, 32, 32)).shape) == (2, 7)
    assert net.get_submodule("7").p == 0.1


def test_to_torch_analyses_the_spec_again_for_spec_params(model: cnnspec.Model) -> None:
    net = model.to_torch(pad=0, num_classes=4, depth=2).eval()
    assert tuple(net(torch.zeros(2, 3, 32, 32)).shape) == (2, 4)
    assert net.get_submodule("8").in_features == 16 * 5 * 5  # 28 -> 14 -> 10 -> 5 without padding
    assert len(net.get_submodule("1")) == 2


def test_a_value_the_spec_refuses_is_a_spec_error(model: cnnspec.Model) -> None:
    with pytest.raises(SpecError) as refused:
        model.to_torch(pad="wide")
    assert str(refused.value) == ("cifar.yaml:2:32: error: --set pad=wide: `pad` is a whole number (2 in the "
                                  "spec), got a string")


def test_a_param_without_another_value_to_try_is_refused_saying_so(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("modes.yaml").write_text("name: modes\nparams: {mode: reflect}\ninput: [3, 16, 16]\nlayers:\n"
                                  "  - conv: {out: 4, kernel: 3, padding: 1, padding_mode: $mode}\n")
    cls = import_source(cnnspec.load("modes.yaml").to_source(), "cnnspec_generated.test_params_modes").Modes
    with pytest.raises(ValueError) as refused:
        cls(mode="zeros")
    assert str(refused.value) == (
        "mode='zeros': Modes was generated for mode='reflect', and cnnspec could not check that its code follows "
        "other values; generate it for another value: cnnspec build modes.yaml --target torch --set mode=VALUE")
    assert cls().get_submodule("0").padding_mode == "reflect"
