"""The README's spec-language reference covers the language: its ops table names exactly the ops that
``cnnspec schema`` lists, its structure table every construct, and each row's example is a layer the schema
and ``cnnspec check`` accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from cnnspec.cli import main
from cnnspec.frontend import analyse_text
from cnnspec.frontend.read import load_text
from cnnspec.frontend.spec import STRUCTURES

README = (Path(__file__).parents[1] / "README.md").read_text()
CODE = re.compile(r"`([^`]+)`")


def _table(heading: str) -> list[list[str]]:
    """The cells of the first table under ``heading``, header and rule left out."""
    lines = README.split(f"\n{heading}\n", 1)[1].lstrip("\n").splitlines()
    rows = lines[:next(i for i, line in enumerate(lines) if not line.startswith("|"))]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def _schema_layers(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, object], set[str]]:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    keys = {next(iter(e["properties"])) for e in schema["definitions"]["layer"]["oneOf"] if "properties" in e}
    return schema, keys


def test_ops_table_names_the_ops_of_cnnspec_schema(capsys: pytest.CaptureFixture[str]) -> None:
    _, layer_keys = _schema_layers(capsys)
    in_table = {name for row in _table("### Ops") for name in CODE.findall(row[0])}
    assert in_table == layer_keys - set(STRUCTURES)
    constructs = {name for row in _table("### Structure") for name in CODE.findall(row[0])}
    assert set(STRUCTURES) | {"as:", "from:"} <= constructs


def test_every_ops_table_example_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    schema, _ = _schema_layers(capsys)
    validator = jsonschema.Draft7Validator(schema)
    rows = _table("### Ops")
    for row in rows:
        examples = CODE.findall(row[-1])
        assert examples, row[0]
        for example in examples:
            layer = load_text(f"l: [{example}]").data["l"][0]  # YAML as cnnspec reads it (1e-6: a float)
            spec = {"name": "x", "input": [96, 16, 16], "layers": [layer]}
            assert list(validator.iter_errors(spec)) == [], example
    assert len(rows) >= 30


@pytest.mark.parametrize(("example", "input_shape"), [
    ("reshape: {shape: [512, 4, 4]}", "[8192]"), ("linear: {out: 10}", "[12]"), ("flatten", "[3, 4, 4]"),
    ("pixel_shuffle: {factor: 2}", "[12, 4, 4]"), ("pad: {left: 6}", "[2, 16]"),
    ("instancenorm: {affine: true}", "[32, 8, 8, 8]"), ("layer_scale: {name: layer_scale}", "[96, 4, 4]"),
])
def test_examples_that_need_their_own_input_analyse(example: str, input_shape: str) -> None:
    assert any(example in row[-1] for row in _table("### Ops")), example
    graph = analyse_text(f"name: x\ninput: {input_shape}\nlayers: [{example}]\n", "x.yaml")
    assert graph.output_shape
