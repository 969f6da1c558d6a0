"""``cnnspec check --format sarif``: SARIF 2.1.0 valid against the OASIS schema (tests/data/), exact results,
URIs relative to the repository; the kinds of errors (SARIF rule ids, annotation titles); end columns."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cnnspec._version import __version__
from cnnspec.cli import main
from cnnspec.commands.check import check_file
from cnnspec.error_codes import KINDS, classify
from cnnspec.errors import SourcePos, SpecError
from cnnspec.report.regions import token_end
from cnnspec.report.sarif import artifact_location

ROOT = Path(__file__).parents[1]
SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
NO_ARGS = {"overrides": None, "input_shape": None}

# the kind of every spec of the broken-spec catalogue (its first error)
KIND_OF_BROKEN = {
    "yaml-syntax": ["bad_indentation", "control_character", "list_item_after_mapping", "tab_indentation",
                    "two_documents", "unclosed_quote", "yaml_syntax_error"],
    "yaml-feature": ["alias_bomb", "anchor_reused_layer", "duplicate_key", "duplicate_option", "explicit_tag",
                     "non_string_key"],
    "file": ["document_is_list", "empty_file", "not_utf8"],
    "limit": ["nesting_too_deep", "not_a_finite_number"],
    "unknown-key": ["activation_inside_conv", "conv_in_channels_written", "linear_in_features_written", "missing_space_after_colon",
                    "misspelt_option", "unknown_block_argument", "unknown_key_in_block", "unknown_top_level_key"],
    "unknown-name": ["dense_for_linear", "deconv_for_conv_transpose", "interpolate_for_upsample",
                     "resize_for_upsample", "unflatten_for_reshape", "view_for_reshape", "op_name_with_newline",
                     "stage_block_inside_block", "tensor_undefined", "undefined_param", "unknown_block_in_stage",
                     "unknown_layer", "tensor_from_undefined"],
    "missing-key": ["missing_block_argument", "missing_layers", "pad_nothing", "stage_missing_block_argument",
                    "upsample_without_scale"],
    "structure": ["dropout_bare_number", "block_list_argument_wrong_type", "block_uses_itself", "empty_layer",
                  "layer_settings_not_mapping", "layer_with_two_keys", "layers_not_a_list", "settings_not_indented",
                  "stage_settings_not_mapping", "tensor_later", "tensor_from_later", "tensor_outside_block",
                  "sequential_layers_expression", "layers_as_expression"],
    "wrong-type": ["quoted_number", "bad_expression", "block_argument_wrong_type", "float_in_integer_arithmetic",
                   "bool_as_number", "input_not_integer", "sexagesimal_is_a_string",
                   "wrong_type"],
    "invalid-value": ["channels_in_makes_out_negative", "shortcut_unknown_form", "dropout_probability", "groups_zero", "input_five_sizes", "input_zero_size", "linear_bad_axis",
                      "negative_kernel", "pad_negative", "reshape_zero_size", "softmax_bad_axis", "stage_repeat_zero",
                      "upsample_scale_zero", "zero_out_channels", "zero_stride"],
    "expression": ["expression_division_by_zero", "block_reads_spec_in_channels", "channels_in_in_block_argument",
                   "channels_in_outside_block"],
    "name": ["name_single_underscore", "block_name_not_a_name", "block_named_like_op", "duplicate_layer_name",
             "name_dunder", "name_empty", "name_keyword", "name_with_dot", "name_quote_newline",
             "name_shadows_module_attribute", "name_unicode_lookalike", "tensor_name_not_identifier",
             "tensor_name_twice", "stage_prefix_with_dot"],
    "import": ["block_defined_twice/lib", "block_defined_twice/spec", "import_cycle/a", "import_cycle/b", "import_cycle/spec",
               "import_missing_file", "import_outside_directory"],
    "shape": ["residual_squeeze_excitation", "concat_spatial_mismatch", "conv_after_flatten", "fixed_weights_wrong_channels",
              "groupnorm_groups_not_dividing", "groups_not_dividing", "kernel_larger_than_input", "kernel_wrong_rank",
              "linear_without_flatten", "maxpool_padding_dilated", "padding_same_stride_2", "permute_dims_invalid",
              "pool_padding_over_half", "reflect_padding_too_large", "residual_channel_mismatch",
              "residual_projection_impossible", "weights_ragged",
              "channel_shuffle_groups_not_dividing", "instancenorm_flat_input", "instancenorm_one_position",
              "conv_transpose_groups_not_dividing", "conv_transpose_output_empty",
              "conv_transpose_output_padding", "pad_circular_too_large", "pad_padding_and_sides", "pad_pair_of_three",
              "pad_reflect_too_large", "pad_side_of_missing_axis", "pad_value_with_reflect", "pixel_shuffle_1d",
              "pixel_shuffle_channels", "pixel_unshuffle_odd_size", "reshape_element_count", "reshape_five_axes",
              "reshape_two_unknowns", "reshape_unknown_not_whole", "upsample_align_corners_nearest",
              "upsample_bilinear_1d", "upsample_scale_and_size", "upsample_scale_not_whole",
              "merge_shape_mismatch", "merge_spatial_mismatch", "merge_add_strided",
              "conv_transpose_negative_3d", "upsample_scale_not_whole_3d",
              "channel_split_part_missing", "crop_larger_than_input", "weights_empty_row",
              "gate_does_not_broadcast", "mul_rank_mismatch"],
    "budget": ["input_sizes_refused", "over_budget", "over_mac_budget"],
}
# several outputs, `from: input`, `upsample: {size_of}`, `training_only` (issue 12)
for _kind, _names in {"yaml-feature": ["outputs_name_twice"],
                      "unknown-name": ["outputs_undefined_tensor", "upsample_size_of_undefined"],
                      "structure": ["training_only_read_at_inference"],
                      "name": ["outputs_tensor_twice", "outputs_same_tensor_twice", "outputs_name_not_identifier",
                               "as_input_reserved"],
                      "shape": ["upsample_size_of_and_scale", "upsample_size_of_flat_tensor"]}.items():
    KIND_OF_BROKEN[_kind] = [*KIND_OF_BROKEN[_kind], *_names]
# union block argument types and `{type, default}` (issue 12)
KIND_OF_BROKEN["wrong-type"] += ["block_union_argument_wrong_type", "block_typed_default_wrong_type"]
KIND_OF_BROKEN["invalid-value"] += ["block_typed_default_unknown_type", "block_argument_misspelt_type"]
# `crop: {size_of}` and `slice` (issue 12)
for _kind, _names in {"missing-key": ["crop_without_size", "slice_without_ranges"],
                      "unknown-name": ["crop_size_of_undefined", "center_crop_for_crop", "narrow_for_slice"],
                      "shape": ["crop_size_and_size_of", "crop_size_of_flat_tensor", "crop_size_of_larger",
                                "slice_empty_range", "slice_empty_channels", "slice_ranges_wrong_count",
                                "slice_range_not_a_pair", "slice_every_range_null"]}.items():
    KIND_OF_BROKEN[_kind] = [*KIND_OF_BROKEN[_kind], *_names]

# ceil/floor/make_divisible, and a scaled stage depth left unrounded (efficientnet_b0's width_mult/depth_mult)
KIND_OF_BROKEN["expression"] = [*KIND_OF_BROKEN["expression"], "ceil_two_arguments", "make_divisible_one_argument"]
KIND_OF_BROKEN["wrong-type"] = [*KIND_OF_BROKEN["wrong-type"], "stage_repeat_float"]


@cache
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def sarif(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--format", "sarif", *paths])
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


def test_sarif_of_two_broken_specs_and_a_good_one(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    code, log = sarif(capsys, "specs/lenet5.yaml", "tests/broken/kernel_larger_than_input.yaml",
                      "tests/broken/misspelt_option.yaml")
    assert code == 1
    assert list(validator().iter_errors(log)) == []
    assert (log["version"], log["$schema"], len(log["runs"])) == (
        "2.1.0", "https://json.schemastore.org/sarif-2.1.0.json", 1)
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"], driver["semanticVersion"]) == ("cnnspec", __version__, __version__)
    assert "informationUri" not in driver  # optional; no placeholder address
    assert [rule["id"] for rule in driver["rules"]] == list(KINDS)
    assert driver["rules"][list(KINDS).index("shape")] == {
        "id": "shape", "name": "Shape", "shortDescription": {"text": "A layer cannot take the shape it receives."},
        "help": {"text": "Follow the shapes with `cnnspec summary`: change the layer's settings or the layers before "
                         "it, as the message suggests."},
        "defaultConfiguration": {"level": "error"}}
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["results"] == [
        {"ruleId": "shape", "ruleIndex": 13, "level": "error",
         "message": {"text": "layer 0 (conv): kernel 5x5 is larger than its 4x4 input; the output would be empty"},
         "locations": [{"physicalLocation": {
             "artifactLocation": {"uri": "tests/broken/kernel_larger_than_input.yaml", "uriBaseId": "%SRCROOT%"},
             "region": {"startLine": 5, "startColumn": 28, "endLine": 5, "endColumn": 29}}}]},
        {"ruleId": "unknown-key", "ruleIndex": 4, "level": "error",
         "message": {"text": "unknown option `strid` for `conv`; did you mean `stride`?"},
         "locations": [{"physicalLocation": {
             "artifactLocation": {"uri": "tests/broken/misspelt_option.yaml", "uriBaseId": "%SRCROOT%"},
             "region": {"startLine": 5, "startColumn": 31, "endLine": 5, "endColumn": 36}}}]},
    ]


def test_sarif_of_valid_specs_has_no_results(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    code, log = sarif(capsys, "specs")
    assert (code, log["runs"][0]["results"]) == (0, [])
    assert list(validator().iter_errors(log)) == []


def test_sarif_of_the_whole_broken_catalogue_is_valid(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    code, log = sarif(capsys, "tests/broken")
    results = log["runs"][0]["results"]
    assert code == 1 and len(results) >= 90
    assert list(validator().iter_errors(log)) == []
    assert {r["ruleId"] for r in results} == set(KINDS) - {"override", "spec"}
    assert all(log["runs"][0]["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_error_without_position_and_outside_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "repo").mkdir()
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("name: x\ninput: [1, 4, 4]\nlayers:\n  - conv: {out: 2, kernel: 5}\n")
    monkeypatch.chdir(tmp_path / "repo")
    code, log = sarif(capsys, str(outside))
    assert code == 1 and list(validator().iter_errors(log)) == []
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": outside.as_uri()},
                        "region": {"startLine": 4, "startColumn": 28, "endLine": 4, "endColumn": 29}}


@pytest.mark.parametrize(("file", "location"), [
    ("specs/a b.yaml", {"uri": "specs/a%20b.yaml", "uriBaseId": "%SRCROOT%"}),
    ("./specs/../specs/x.yaml", {"uri": "specs/x.yaml", "uriBaseId": "%SRCROOT%"}),
    ("<stdin>", {"uri": "%3Cstdin%3E", "uriBaseId": "%SRCROOT%"}),
])
def test_artifact_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str,
                            location: dict[str, str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_location(file) == location
    assert artifact_location(str(tmp_path / file)) == location


@pytest.mark.parametrize("code", sorted(KIND_OF_BROKEN))
def test_every_broken_spec_has_its_kind(code: str) -> None:
    for name in KIND_OF_BROKEN[code]:
        errors = check_file(ROOT / "tests" / "broken" / f"{name}.yaml", NO_ARGS).errors
        assert [e.code for e in errors[:1]] == [code], (name, errors[0].message)


def test_catalogue_is_covered() -> None:
    listed = {name for names in KIND_OF_BROKEN.values() for name in names}
    on_disk = {str(p.relative_to(ROOT / "tests" / "broken").with_suffix(""))
               for p in (ROOT / "tests" / "broken").rglob("*.yaml")}
    assert listed == on_disk - {"set_unknown_param", "set_wrong_type"}  # those need --set (below)


def test_kinds_of_command_line_and_explicit_codes() -> None:
    assert classify("--set classes: the spec has no parameter `classes`") == "override"
    assert classify("something nobody wrote yet") == "spec"
    assert SpecError("layer 0 (conv): kernel 5x5 is larger", SourcePos("a.yaml", 1, 1)).code == "shape"
    assert SpecError("anything", None, code="budget").code == "budget"


@pytest.mark.parametrize(("line", "col", "end"), [
    ("  - conv: {out: 6, kernel: 5, strid: 2}", 31, 36),  # a key in a flow mapping
    ("  - conv: {out: 6, kernel: 5, strid: 2}", 38, 39),  # its value
    ("  - conv: {out: 6, kernel: 5, strid: 2}", 11, 40),  # the flow mapping
    ("  max_params: 5000  # budget", 15, 19),  # a plain scalar before a comment
    ("  max_params: 5000", 3, 13),  # a block key
    ("    - [1, 32, 32]", 7, 18),  # a flow sequence
    ("name: 'it''s'", 7, 14),  # a quoted scalar with an escaped quote
    ('name: "a\\"b"', 7, 13),
    ("  - conv: {out: $widht, kernel: 3}", 17, 23),
    ("  - relu", 5, 9),
    ("name: 'never closed", 7, None),
    ("layers: [conv,", 9, None),
    ("short", 9, None),
    ("  indented", 1, None),
])
def test_token_end(line: str, col: int, end: int | None) -> None:
    assert token_end(line, col) == end
