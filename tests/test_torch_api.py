"""The Python API's torch methods: ``cnnspec.load(path, **params)`` -> ``to_source()`` / ``to_torch()``."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import pytest
import torch

import cnnspec

ROOT = Path(__file__).parents[1]


def test_load_to_source_and_to_torch_are_one_backend() -> None:
    first = cnnspec.load(ROOT / "specs" / "resnet18.yaml", num_classes=10)
    model = cnnspec.load(ROOT / "specs" / "resnet18.yaml", num_classes=10)  # still the function, not the package
    source = model.to_source()
    assert source == first.to_source()
    net = model.to_torch()
    assert type(net).__name__ == "Resnet18"
    assert "def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:" in source
    # the object is the rendered source, imported: its class is defined in that text
    assert type(net).__module__.startswith("cnnspec_generated.resnet18_")
    assert inspect.getsource(type(net)) in source
    with torch.no_grad():
        assert tuple(net.eval()(torch.randn(2, 3, 32, 32)).shape) == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == model.graph.root.total_params


def test_to_torch_takes_constructor_overrides() -> None:
    net = cnnspec.load(ROOT / "specs" / "lenet5.yaml").to_torch(num_classes=3)
    assert net[11].out_features == 3


ZOO = sorted(p.name for p in (ROOT / "specs").glob("*.yaml"))
BIG = {"alexnet.yaml", "vgg16.yaml", "resnet50.yaml", "resnet34.yaml", "convnext_tiny.yaml", "inception_v3.yaml"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in ZOO])
def test_to_torch_modules_pickle_and_torch_save_round_trip(name: str, tmp_path: Path) -> None:
    """The generated module's package (``cnnspec_generated``) is registered, so pickle finds the class."""
    net = cnnspec.load(ROOT / "specs" / name).to_torch().eval()
    again = pickle.loads(pickle.dumps(net))
    torch.save(net, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    for other in (again, loaded):
        assert type(other) is type(net)
        ours, theirs = net.state_dict(), other.state_dict()
        assert list(ours) == list(theirs)
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_any_spec_name_imports() -> None:
    """A spec's name may hold any character (found by the fuzzer: a NUL); the module name is made of
    identifier characters, so compile() and pickle accept it."""
    from cnnspec.compile.torch.loader import build_module
    from cnnspec.frontend import analyse_text

    graph = analyse_text('name: "odd_fl\\0t-x.y"\ninput: [7]\nlayers:\n- linear: {out: 3, bias: false}\n')
    net = build_module(graph)
    assert type(net).__module__.startswith("cnnspec_generated.odd_fl_t_x_y_")
    with torch.no_grad():
        assert tuple(net(torch.zeros(2, 7)).shape) == (2, 3)


def test_a_network_without_layers_builds() -> None:
    """`layers: []` is the identity (found by the fuzzer: the torch backend indexed the empty input shape of
    a scope without members)."""
    from cnnspec.compile.torch.loader import build_module
    from cnnspec.frontend import analyse_text

    graph = analyse_text("name: nothing\ninput: [1, 9]\nlayers: []\n")
    x = torch.randn(2, 1, 9)
    with torch.no_grad():
        assert torch.equal(build_module(graph)(x), x)
