"""The smallest input ``summary`` states is one the network as built runs on (issue 10, item 8): the
generated module takes it, ``check --input`` accepts it, and ``summary --format json`` writes it."""

from __future__ import annotations

import json

import pytest

import cnnspec
from cnnspec.cli import main
from cnnspec.frontend import analyse_file, size_fixed_by, smallest_input

LENET_LINE = ("Smallest valid input: 1x28x28 (the weights of layer 7 (linear) depend on the input size; "
              "`--input` re-sizes them)")
EXPECTED = {
    "specs/lenet5.yaml": ((1, 28, 28), "layer 7 (linear)"),
    "specs/alexnet.yaml": ((3, 63, 63), None),
    "specs/vgg16.yaml": ((3, 32, 32), None),
    "specs/resnet18.yaml": ((3, 1, 1), None),
    "specs/cnn1d_example.yaml": ((2, 1), None),
    "specs/cnn3d_example.yaml": ((1, 2, 2, 2), None),
    "specs/sobel_edges.yaml": ((1, 1, 1), None),
}


@pytest.mark.parametrize("spec", sorted(EXPECTED))
def test_smallest_input_of_the_zoo(spec: str) -> None:
    graph = analyse_file(spec)
    smallest = smallest_input(graph)
    assert (smallest, size_fixed_by(graph, smallest)) == EXPECTED[spec]


def test_summary_names_the_layer_that_fixes_the_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "specs/lenet5.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == LENET_LINE
    assert cnnspec.load("specs/lenet5.yaml").summary().splitlines()[-1] == LENET_LINE
    assert main(["summary", "specs/resnet18.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Smallest valid input: 3x1x1"


def test_summary_json_has_the_smallest_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "specs/cnn3d_example.yaml", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["smallest_input"] == [1, 2, 2, 2]
    assert json.loads(cnnspec.load("specs/lenet5.yaml").summary("json"))["smallest_input"] == [1, 28, 28]


@pytest.mark.parametrize("spec", ["specs/lenet5.yaml", "specs/resnet18.yaml", "specs/cnn3d_example.yaml"])
def test_check_accepts_the_smallest_input(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    shape = ",".join(map(str, EXPECTED[spec][0]))
    assert main(["check", spec, "--input", shape]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["specs/lenet5.yaml", "specs/resnet18.yaml", "specs/cnn1d_example.yaml",
                                  "specs/cnn3d_example.yaml", "specs/sobel_edges.yaml"])
def test_generated_module_runs_at_the_smallest_input(spec: str) -> None:
    torch = pytest.importorskip("torch")
    module = cnnspec.load(spec).to_torch().eval()
    smallest = EXPECTED[spec][0]
    with torch.no_grad():
        out = module(torch.zeros(2, *smallest))
    assert tuple(out.shape) == (2, *analyse_file(spec, input_shape=smallest).output_shape)


@pytest.mark.slow
def test_generated_lenet_refuses_one_pixel_less() -> None:
    torch = pytest.importorskip("torch")
    module = cnnspec.load("specs/lenet5.yaml").to_torch().eval()
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x256 and 400x120\)"):
        module(torch.zeros(2, 1, 27, 27))
