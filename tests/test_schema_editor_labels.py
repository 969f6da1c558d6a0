"""What the YAML language server shows from the schema: each layer alternative labelled by its `title`
(not `object(cnnspec spec)`), and no `$width` offered as a value of every setting (the expression
alternative contributes no `examples`)."""

from __future__ import annotations

from typing import Any

from cnnspec.frontend.schema import OPS, spec_schema
from cnnspec.frontend.spec import STRUCTURES


def examples_of(node: Any, definitions: dict[str, Any]) -> list[Any]:
    """Every example the language server collects for a value: its own, its alternatives' and references'."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        return examples_of(definitions[node["$ref"].rsplit("/", 1)[1]], definitions)
    found = list(node.get("examples", []))
    for member in node.get("anyOf", []) + node.get("oneOf", []):
        found += examples_of(member, definitions)
    return found


def test_every_layer_alternative_has_a_title() -> None:
    entries = spec_schema()["definitions"]["layer"]["oneOf"]
    assert [e["title"] for e in entries] == ["op or block name", *OPS, *STRUCTURES, "block call"]


def test_expression_alternative_offers_no_values() -> None:
    definitions = spec_schema()["definitions"]
    assert "examples" not in definitions["expression"]
    stride = definitions["op.conv"]["properties"]["stride"]
    assert {"$ref": "#/definitions/expression"} in stride["anyOf"]
    assert examples_of(stride, definitions) == [2]
    offered = [value for name, model in OPS.items()
               for prop in definitions[f"op.{name}"]["properties"].values()
               for value in examples_of(prop, definitions)]
    assert "$width" not in offered and "$num_classes" not in offered
