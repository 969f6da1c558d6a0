"""The JSON Schema (``cnnspec schema``): in sync with its committed copy, wired into every zoo spec, and
never stricter than ``cnnspec check`` (a spec the schema rejects, check rejects)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cnnspec.cli import main
from cnnspec.commands.check import check_file
from cnnspec.errors import SpecError
from cnnspec.frontend.read import load_file, load_text
from cnnspec.frontend.schema import OPS, schema_text, spec_schema
from cnnspec.frontend.spec import STRUCTURES

ROOT = Path(__file__).parents[1]
COMMITTED = ROOT / "schema" / "cnnspec.schema.json"
ZOO = sorted((ROOT / "specs").rglob("*.yaml"))
BROKEN = sorted((ROOT / "tests" / "broken").rglob("*.yaml"))
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)$")
NO_ARGS = {"overrides": None, "input_shape": None}


@cache
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(COMMITTED.read_text()))


def schema_errors(data: Any) -> list[str]:
    """The most relevant problem (``best_match``: what an editor shows) as ``path: message``, or []."""
    best = jsonschema.exceptions.best_match(validator().iter_errors(data))
    return [] if best is None else [f"{'/'.join(map(str, best.absolute_path))}: {best.message}"]


def test_committed_copy_is_in_sync_with_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert COMMITTED.read_text() == schema_text(), "run: python -m cnnspec schema -o schema/cnnspec.schema.json"
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == COMMITTED.read_text()


def test_schema_output_file_is_written(tmp_path: Path) -> None:
    target = tmp_path / "out" / "cnnspec.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text() == COMMITTED.read_text()


def test_schema_is_valid_draft_07() -> None:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_every_op_and_structure_has_an_entry_with_summary_and_example() -> None:
    entries = spec_schema()["definitions"]["layer"]["oneOf"]
    by_key = {next(iter(e["properties"])): e for e in entries if "properties" in e}
    assert sorted(by_key) == sorted([*OPS, *STRUCTURES])
    for name, entry in by_key.items():
        assert entry["description"], name
        example = entry["examples"][0]
        assert schema_errors({"name": "x", "input": [3, 32, 32], "layers": [example]}) == [], name
        if name in OPS:
            settings = {k: 10 if str(v).startswith("$") else v for k, v in OPS[name].example.items()}
            OPS[name].model_validate(settings)  # the example is valid for the op's model


def test_every_option_has_a_description_and_an_example() -> None:
    missing = [f"{model}.{field}: {key}"
               for model, schema in spec_schema()["definitions"].items()
               for field, prop in schema.get("properties", {}).items()
               for key in ("description", "examples") if key not in prop]
    assert missing == []


@pytest.mark.parametrize("path", ZOO, ids=lambda p: str(p.relative_to(ROOT)))
def test_zoo_spec_points_at_the_schema_and_validates(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    match = MODELINE.fullmatch(first)
    assert match, f"{path.name}: first line should be the yaml-language-server modeline, got {first!r}"
    assert (path.parent / match.group(1)).resolve() == COMMITTED.resolve()
    assert schema_errors(load_file(path).data) == []
    assert check_file(path, NO_ARGS).errors == []


SPEC = "name: x\ninput: [3, 8, 8]\nlayers:\n"
CASES = {
    # layers text -> the schema's first error (None: valid)
    "  - conv: {out: $w, kernel: [3, $k], bias: $b, padding: same}\n  - relu\n  - relu:\n": None,
    "  - my_block\n  - my_block: {width: 4}\n  - gelu: {approximate: $mode}\n": None,
    "  - conv: {outt: 3, kernel: 3}\n": "layers/0/conv: Additional properties are not allowed ('outt' was unexpected)",
    "  - conv: {out: 0, kernel: 3}\n": "layers/0/conv/out: 0 is less than the minimum of 1",
    "  - dropout: {p: 1.5}\n": "layers/0/dropout/p: 1.5 is greater than the maximum of 1",
    "  - gelu: {approximate: fast}\n": "layers/0/gelu/approximate: 'fast' is not valid under any of the given schemas",
    "  - linear\n": "layers/0: 'linear' is not valid under any of the given schemas",
    "  - stage: {block: b, repeat: 0}\n": "layers/0/stage/repeat: 0 is less than the minimum of 1",
}


@pytest.mark.parametrize("layers", CASES)
def test_schema_verdicts(layers: str) -> None:
    errors = schema_errors(load_text(SPEC + layers).data)
    expected = CASES[layers]
    assert errors == ([] if expected is None else [expected])


def test_blocks_library_and_constraints() -> None:
    library = "blocks:\n  b:\n    args: {width: int}\n    layers: [{conv: {out: $width, kernel: 3}}]\n"
    assert schema_errors(load_text(library).data) == []
    budget = SPEC + "  - relu\nconstraints: {max_params: 10, input_sizes: [[3, 4, 4]]}\n"
    assert schema_errors(load_text(budget).data) == []
    assert schema_errors(load_text(budget.replace("max_params", "max_parms")).data) == [
        "constraints: Additional properties are not allowed ('max_parms' was unexpected)"]
    written = SPEC + "  - relu\nconstraints: {max_params: 20_000_000, max_macs: 2e7, max_flops: 4.0e+7,\n" \
        "  min_receptive_field: [8, 8], input_sizes: [[3, $side, 4]]}\n"
    assert schema_errors(load_text(written).data) == []  # as check accepts them


@pytest.mark.parametrize("path", ZOO + BROKEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_and_check_agree(path: Path) -> None:
    """Over the zoo and the broken-spec catalogue: where the schema decides (it rejects), check rejects
    too. YAML the loader refuses (syntax, anchors, tags, duplicate keys) has no data to validate: check
    must report it."""
    check_errors = check_file(path, NO_ARGS).errors
    try:
        data = load_file(path).data
    except SpecError:
        assert check_errors
        return
    assert not (schema_errors(data) and not check_errors), "the schema rejects a spec that check accepts"
