"""The language server's analysis layer, without the protocol: diagnostics equal ``cnnspec check`` (text and
place) with the exact range of the key or value at fault, import errors at the ``use:`` entry, inlay hints
equal ``cnnspec summary``, hover, completion, navigation, symbols and quick fixes, each with exact values."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from lsp_client import THREE_MISTAKES

from cnnspec.commands.check import check_file
from cnnspec.frontend import analyse
from cnnspec.frontend.read import load_file
from cnnspec.lsp import actions, completion, hints, hover, navigation, symbols
from cnnspec.lsp.document import DocumentAnalysis, View, analyse_document, unique
from cnnspec.lsp.pipeline import analyse_buffer
from cnnspec.lsp.text import Span
from cnnspec.report.rows import rows

ROOT = Path(__file__).parents[1]
SPECS = ROOT / "specs"
ZOO = sorted(SPECS.rglob("*.yaml"))
BROKEN = sorted((ROOT / "tests" / "broken").rglob("*.yaml"))
NO_ARGS = {"overrides": None, "input_shape": None}


def analysed(path: Path, text: str | None = None, buffers: dict[str, str] | None = None) -> DocumentAnalysis:
    return analyse_document(path.read_text() if text is None else text, str(path), buffers)


def view_of(path: Path, *runs: Path) -> View:
    doc = analysed(path)
    others = [analysed(run) for run in runs]
    return View(doc, ([doc] if doc.graph else []) + others)


# -- diagnostics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ZOO + BROKEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_buffer_pipeline_equals_the_front_end(path: Path) -> None:
    """The buffer pipeline (imports read through open buffers) repeats ``analyse``: same errors, same places."""
    try:
        doc = load_file(path)
    except Exception:  # noqa: BLE001 (a file the loader refuses has no analysis to compare)
        return
    ours, theirs = analyse_buffer(doc, str(path), {}), analyse(doc, path)
    assert [(str(e.pos), e.message) for e in ours.errors] == [(str(e.pos), e.message) for e in theirs.errors]
    assert (ours.kind, ours.graph is None) == (theirs.kind, theirs.graph is None)
    if ours.graph is not None and theirs.graph is not None and not ours.errors:
        assert [r for r in rows(ours.graph.root)] == [r for r in rows(theirs.graph.root)]


@pytest.mark.parametrize("path", ZOO + BROKEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_diagnostics_are_what_check_reports(path: Path) -> None:
    """Every error ``cnnspec check`` gives, with the same text, at its line and column (an error of an
    imported file at the ``use:`` entry, naming the file, line and column), each once."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8: an editor has no such buffer
    result = analysed(path, text)
    expected = []
    for error in unique(check_file(path, NO_ARGS).errors):
        assert error.pos is not None
        if os.path.realpath(error.pos.file) == os.path.realpath(path):
            expected.append((error.pos.line - 1, error.pos.col - 1, error.message))
        else:
            shown = os.path.relpath(os.path.realpath(error.pos.file), path.parent)
            use = next(p for p in result.problems if p.related and p.related[0].message == error.message)
            expected.append((use.span.line, use.span.start, f"{shown}:{error.pos.line}:{error.pos.col}: {error.message}"))
    assert [(p.span.line, p.span.start, p.message) for p in result.problems] == expected


def test_three_mistakes_three_exact_ranges_then_two_after_a_fix() -> None:
    path = SPECS / "three.yaml"
    result = analysed(path, THREE_MISTAKES)
    assert [(p.span, p.message, p.code) for p in result.problems] == [
        (Span(3, 19, 3, 25), "unknown option `kernal` for `conv`; did you mean `kernel`?", "unknown-key"),
        (Span(4, 4, 4, 9), "unknown layer `rellu`; did you mean `relu`?", "unknown-name"),
        (Span(5, 18, 5, 29), "`$num_clases` is not defined (defined here: none)", "unknown-name"),
    ]
    fixed = analysed(path, THREE_MISTAKES.replace("rellu", "relu"))
    assert [p.message for p in fixed.problems] == [result.problems[0].message, result.problems[2].message]


def test_ranges_cover_the_key_or_the_value() -> None:
    cases = {
        "misspelt_option.yaml": [Span(4, 30, 4, 35)],  # the key `strid`
        "zero_stride.yaml": None,  # the value
        "over_budget.yaml": [Span(3, 26, 3, 29)],  # the budget's value `500`
    }
    for name, spans in cases.items():
        result = analysed(ROOT / "tests" / "broken" / name)
        got = [p.span for p in result.problems]
        if spans is None:
            line = result.lines[got[0].line]
            assert line[got[0].start:got[0].end] == "0", line
        else:
            assert got == spans


def test_budget_errors_come_from_constraints() -> None:
    text = (SPECS / "lenet5.yaml").read_text().replace("layers:", "constraints: {max_params: 60000}\nlayers:")
    result = analysed(SPECS / "lenet5.yaml", text)
    assert [(p.message, p.code) for p in result.problems] == [
        ("max_params: the network has 61,706 parameters, over the budget of 60,000 by 1,706 (1.03x)", "budget")]
    line = result.lines[result.problems[0].span.line]
    assert line[result.problems[0].span.start:result.problems[0].span.end] == "60000"


def test_library_error_shown_at_the_use_entry_and_in_the_library(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    library = tmp_path / "blocks" / "lib.yaml"
    library.write_text("blocks:\n  b:\n    args: {width: int}\n    layers:\n      - conv: {out: $width, kernel: 9}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\ninput: [3, 8, 8]\nuse: [blocks/lib.yaml]\nlayers:\n  - b: {width: 4}\n")
    result = analysed(spec)
    message = "layer `0.0` (conv): kernel 9x9 is larger than its 8x8 input; the output would be empty"
    assert [(p.span, p.message) for p in result.problems] == [
        (Span(2, 6, 2, 21), f"blocks/lib.yaml:5:37: {message}")]  # at `blocks/lib.yaml` of `use: [...]`
    assert result.problems[0].related[0].path == os.path.realpath(library)
    assert list(result.elsewhere) == [os.path.realpath(library)]
    assert [(p.span, p.message) for p in result.elsewhere[os.path.realpath(library)]] == [(Span(4, 36, 4, 37), message)]
    # the library's unsaved buffer is what the spec reads
    fixed = analysed(spec, buffers={os.path.realpath(library): library.read_text().replace("kernel: 9", "kernel: 3")})
    assert fixed.problems == [] and fixed.graph is not None


def test_yaml_error_is_one_problem_at_its_place() -> None:
    result = analysed(SPECS / "x.yaml", "name: x\ninput: [1, 8, 8\nlayers: [relu]\n")
    assert [(p.span.line, p.code) for p in result.problems] == [(2, "yaml-syntax")]
    assert result.problems[0].message.startswith("YAML syntax error:")


# -- hints ---------------------------------------------------------------------------------------------
def summary_rows(path: Path) -> dict[str, tuple[str, int, int]]:
    graph = analysed(path).graph
    assert graph is not None
    return {row.path: (row.output_shape, row.params, row.macs) for row in rows(graph.root)}


def test_hints_on_resnet18_equal_the_summary_line_for_line() -> None:
    path = SPECS / "resnet18.yaml"
    result = analysed(path)
    assert result.layers is not None
    found = hints.hints(result.real, result.lines, [result.layers])
    table = summary_rows(path)
    layer_lines = [i for i, line in enumerate(result.lines) if re.match(r"  - ", line)]
    assert [h.line for h in found] == layer_lines
    for hint in found:
        shape, params, macs = table[hint.tooltip]
        line = result.lines[hint.line]
        expected = f"→ {shape}" + (f" · {params:,} params, {macs:,} MACs" if "stage:" in line else "")
        assert (hint.label, hint.column) == (expected, len(line))
    assert [h.label for h in found[4:6]] == ["→ 64x56x56 · 147,968 params, 462,422,016 MACs",
                                             "→ 128x28x28 · 525,568 params, 411,041,792 MACs"]


def test_hints_in_a_block_library_come_from_the_specs_that_use_it() -> None:
    library = SPECS / "blocks" / "resnet.yaml"
    doc = analysed(library)
    run = analysed(SPECS / "resnet18.yaml")
    assert run.layers is not None
    found = {h.line + 1: h.label for h in hints.hints(doc.real, doc.lines, [run.layers])}
    assert found == {
        7: "→ 64x56x56 … 512x7x7 (8 instances)",
        9: "→ 64x56x56 … 512x7x7 (8 instances)", 10: "→ 64x56x56 … 512x7x7 (8 instances)",
        11: "→ 64x56x56 … 512x7x7 (8 instances)", 12: "→ 64x56x56 … 512x7x7 (8 instances)",
        13: "→ 64x56x56 … 512x7x7 (8 instances)",
        14: "→ 128x28x28 … 512x7x7 (3 of 8 instances)",
        15: "→ 64x56x56 … 512x7x7 (8 instances)",
    }


def test_hint_of_a_layer_every_instance_agrees_on_is_one_shape(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ninput: [3, 8, 8]\nblocks:\n  b:\n    layers:\n      - relu\n"
                    "layers:\n  - stage: {name: st, block: b, repeat: 3}\n")
    result = analysed(spec)
    assert result.layers is not None
    assert [(h.line, h.label) for h in hints.hints(result.real, result.lines, [result.layers])] == [
        (5, "→ 3x8x8"), (7, "→ 3x8x8 · 0 params, 0 MACs")]


# -- hover, completion, navigation, symbols, actions ----------------------------------------------------
def test_hover_on_a_layer_a_stage_and_a_param() -> None:
    view = view_of(SPECS / "resnet50.yaml")
    text, span = hover.hover(view, 8, 5) or ("", None)
    assert (text, span) == (("**conv 7x7, 64, stride 2** `conv1`\n\n3x224x224 → 64x112x112 · 9,408 params · "
                            "118,013,952 MACs · RF 7x7 (stride 2x2)"), Span(8, 4, 8, 8))
    text, _ = hover.hover(view, 15, 6) or ("", None)
    assert text.splitlines()[:3] == [
        "**block `bottleneck`**(width: int, stride: int = 1, dilation: int = 1), defined at blocks/resnet.yaml:17", "",
        "- `layer4` stage: 1024x14x14 → 2048x7x7 · 14,964,736 params · 809,238,528 MACs · RF 427x427 (stride 32x32)"]
    assert text.splitlines()[3].startswith("  - `layer4.0` (width=512, stride=2, dilation=1): 1024x14x14 → 2048x7x7 · 6,039,552 params")
    text, span = hover.hover(view, 18, 22) or ("", None)
    assert (text, span) == (("`$num_classes` = 1000: parameter of spec `resnet50` (`--set num_classes=...` overrides "
                            "it), defined at line 4"), Span(18, 18, 18, 30))


def test_hover_on_a_block_argument_in_the_library() -> None:
    view = view_of(SPECS / "blocks" / "resnet.yaml", SPECS / "resnet50.yaml")
    text, span = hover.hover(view, 27, 30) or ("", None)
    assert (text, span) == (("`$width`: argument `width: int` of block `bottleneck`, defined at line 18; values in "
                            "use: 64, 128, 256, 512"), Span(27, 27, 27, 33))


def test_hover_and_completion_show_union_argument_types(tmp_path: Path) -> None:
    """``int | list[int]`` arguments, required or with a ``{type, default}`` (inception_v3's one conv block)."""
    view = view_of(SPECS / "inception_v3.yaml")
    text, _ = hover.hover(view, 32, 18) or ("", None)
    assert text.splitlines()[0] == ("**block `basic_conv`**(width: int, kernel: int | list[int] = 1, stride: int = 1, "
                                    "padding: int | list[int] = 0), defined at line 13")
    text, _ = hover.hover(view, 19, 38) or ("", None)
    assert text == ("`$kernel`: argument `kernel: int | list[int] = 1` of block `basic_conv`, defined at line 16; "
                    "values in use: 3, 1, 5, [1, 7], [7, 1], [1, 3], [3, 1]")
    items = completion.complete(view, ["layers:", "  - basic_conv: {width: 3, "], 1, 27)
    assert [(i.label, i.detail) for i in items] == [
        ("kernel", "int | list[int], default 1"), ("stride", "default 1"), ("padding", "int | list[int], default 0"),
        ("name", "optional")]
    spec = tmp_path / "spec.yaml"
    spec.write_text('name: s\ninput: [1, 8, 8]\nblocks:\n  c:\n    args: {k: "float | list[float]"}\n'
                    "    layers: [{avgpool: {kernel: 2}}]\nlayers:\n  - c: {k: [0.5, 1]}\n")
    view = view_of(spec)
    assert (hover.hover(view, 7, 5) or ("",))[0].splitlines()[0] == (
        "**block `c`**(k: float | list[float]), defined at line 4")
    assert [(i.label, i.detail) for i in completion.complete(view, ["layers:", "  - c: {"], 1, 9)] == [
        ("k", "float | list[float], required"), ("name", "optional")]


def test_completion_of_ops_settings_values_blocks_and_params() -> None:
    view = view_of(SPECS / "resnet50.yaml")

    def labels(*lines: str) -> list[str]:
        return [i.label for i in completion.complete(view, list(lines), len(lines) - 1, len(lines[-1]))]

    ops = labels("layers:", "  - ")
    assert ops[:3] == ["adaptive_avgpool", "adaptive_maxpool", "avgpool"] and ops[-9:] == [
        "sequential", "residual", "concat", "stage", "add", "mul", "gate", "basic", "bottleneck"]
    assert labels("layers:", "  - conv: {out: 64, ") == [
        "kernel", "stride", "padding", "dilation", "groups", "bias", "padding_mode", "weights", "trainable", "name"]
    items = completion.complete(view, ["layers:", "  - conv:", "      padding_mode: "], 2, 20)
    assert [(i.label, i.detail) for i in items] == [(w, "`padding_mode` of `conv`") for w in
                                                    ("zeros", "reflect", "replicate", "circular")]
    stride = next(i for i in completion.complete(view, ["layers:", "  - conv: {"], 1, 11) if i.label == "stride")
    assert (stride.detail, stride.documentation) == ("default 1", "Stride: one int or one per spatial dim.")
    assert labels("layers:", "  - stage: {name: x, block: b") == ["basic", "bottleneck"]
    assert labels("layers:", "  - stage: {block: basic, args: {") == ["width", "stride"]
    assert labels("layers:", "  - bottleneck: {width: 3, ") == ["stride", "dilation", "name"]
    assert [(i.label, i.detail) for i in completion.complete(view, ["  - linear: {out: $"], 0, 19)] == [
        ("num_classes", "= 1000"), ("in_channels", "= 3")]
    library = view_of(SPECS / "blocks" / "resnet.yaml", SPECS / "resnet50.yaml")
    assert [i.label for i in completion.complete(library, library.doc.lines, 8, 31)] == [
        "width", "stride", "num_classes", "in_channels"]


def test_definition_across_use_and_of_params() -> None:
    view = view_of(SPECS / "resnet50.yaml")
    library = os.path.realpath(SPECS / "blocks" / "resnet.yaml")
    assert navigation.definition(view, 12, 40) == [navigation.Location(library, Span(16, 2, 16, 12))]
    assert navigation.definition(view, 18, 22) == [
        navigation.Location(os.path.realpath(SPECS / "resnet50.yaml"), Span(3, 9, 3, 20))]
    in_library = view_of(SPECS / "blocks" / "resnet.yaml", SPECS / "resnet50.yaml")
    assert navigation.definition(in_library, 27, 30) == [navigation.Location(library, Span(17, 11, 17, 16))]


def test_references_of_a_block() -> None:
    view = view_of(SPECS / "resnet50.yaml")
    spec = os.path.realpath(SPECS / "resnet50.yaml")
    library = os.path.realpath(SPECS / "blocks" / "resnet.yaml")
    assert navigation.references(view, "bottleneck", include_declaration=True) == [
        navigation.Location(library, Span(16, 2, 16, 12)),
        *(navigation.Location(spec, Span(line, 33, line, 43)) for line in (12, 13, 14, 15))]


def test_references_find_a_stage_that_names_its_output() -> None:
    # layer3 is written with `as: features_aux`: it was missed before
    view = view_of(SPECS / "deeplabv3_resnet50.yaml")
    spec = os.path.realpath(SPECS / "deeplabv3_resnet50.yaml")
    assert navigation.references(view, "bottleneck", include_declaration=False) == [
        navigation.Location(spec, Span(line, 39, line, 49)) for line in (17, 18, 19, 21)]


def test_symbols_of_a_library_whose_block_names_a_tensor(tmp_path: Path) -> None:
    # a layer with `as:` in a block library (symbols as written): it raised AttributeError before
    text = "blocks:\n  pair:\n    args: {width: int}\n    layers:\n      - conv: {out: $width, kernel: 3, as: a}\n" \
           "      - relu\n"
    found = symbols.symbols(analysed(tmp_path / "lib.yaml", text))
    assert [(s.name, s.kind, s.selection) for s in found] == [("pair", "block", Span(1, 2, 1, 6))]
    assert [(c.name, c.selection) for c in found[0].children] == [("conv", Span(4, 8, 4, 12)),
                                                                   ("relu", Span(5, 8, 5, 12))]


def test_symbols_are_the_scope_tree_with_paths() -> None:
    found = symbols.symbols(analysed(SPECS / "resnet18.yaml"))
    assert [s.name for s in found] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                       "avgpool", "9", "fc"]
    layer2 = found[5]
    assert (layer2.detail, layer2.selection) == ("stage → 128x28x28", Span(13, 4, 13, 9))
    block = layer2.children[0]
    assert [c.name for c in block.children] == ["layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu", "layer2.0.conv2",
                                                "layer2.0.bn2", "layer2.0.downsample", "layer2.0 +", "layer2.0.relu"]
    assert block.children[0].detail == "conv 3x3, 128, stride 2 → 128x28x28"
    assert block.children[0].selection == Span(13, 4, 13, 9)  # written in the library: at the stage's line
    library = symbols.symbols(analysed(SPECS / "blocks" / "resnet.yaml"))
    assert [(s.name, s.kind, s.selection) for s in library] == [
        ("basic", "block", Span(3, 2, 3, 7)), ("bottleneck", "block", Span(16, 2, 16, 12))]


def test_quick_fixes() -> None:
    result = analysed(SPECS / "three.yaml", THREE_MISTAKES)
    fixes = [actions.fixes(p.message, p.span, result.lines) for p in result.problems]
    assert fixes[0] == [actions.Action("Replace `kernal` with `kernel`", (actions.Edit(Span(3, 19, 3, 25), "kernel"),))]
    assert fixes[1] == [actions.Action("Replace `rellu` with `relu`", (actions.Edit(Span(4, 4, 4, 9), "relu"),))]
    assert fixes[2] == []
    flat = analysed(ROOT / "tests" / "broken" / "linear_without_flatten.yaml")
    assert actions.fixes(flat.problems[0].message, flat.problems[0].span, flat.lines) == [
        actions.Action("Add `- flatten` before it", (actions.Edit(Span(5, 0, 5, 0), "  - flatten\n"),))]
    inline = "name: x\ninput: [1, 4, 4]\nlayers: [relu, {linear: {out: 2}}]\n"
    flow = analysed(SPECS / "x.yaml", inline)
    assert actions.fixes(flow.problems[0].message, flow.problems[0].span, flow.lines) == [
        actions.Action("Add `- flatten` before it", (actions.Edit(Span(2, 15, 2, 15), "flatten, "),))]
    quoted = '  - conv: {out: "$widht * 2"}'
    assert actions.fixes("`$widht` is not defined; did you mean `$width`?", Span(0, 16, 0, 28), [quoted]) == [
        actions.Action("Replace `$widht` with `$width`", (actions.Edit(Span(0, 17, 0, 23), "$width"),))]


def test_an_unexpected_failure_is_one_problem_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnspec.lsp import scheduler

    def broken(*args: object) -> DocumentAnalysis:
        raise KeyError("boom")

    monkeypatch.setattr(scheduler, "analyse_document", broken)
    result = scheduler._analyse_safely("name: x\n", str(SPECS / "x.yaml"), {})
    assert [(p.span, p.message) for p in result.problems] == [
        (Span(0, 0, 0, 0), "cnnspec lsp: internal error while analysing this file (KeyError: 'boom'); please report it")]


def test_the_server_loads_a_library_once_and_again_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's memo: squeezenet1_1's block library is loaded at the first keystroke, not at every one;
    an unsaved edit of the library open in the editor is loaded (once) and reaches the spec."""
    from cnnspec.frontend import read
    from cnnspec.frontend.read import DocMemo

    loaded: list[str] = []
    load_text = read.load_text
    monkeypatch.setattr(read, "load_text", lambda text, file: loaded.append(file) or load_text(text, file))
    spec, library = SPECS / "squeezenet1_1.yaml", SPECS / "blocks" / "squeezenet.yaml"
    memo = DocMemo(limit=64)
    text = spec.read_text()
    for edit in ("64", "65", "64"):
        result = analyse_document(text.replace("expand: 64}", f"expand: {edit}}}", 1), str(spec), {}, memo)
        assert result.problems == []
    assert len(loaded) == 1 and loaded[0].endswith("blocks/squeezenet.yaml")
    broken = library.read_text().replace("args: {squeeze: int, expand: int}", "args: {squeeze: int}")
    for _ in range(2):
        result = analyse_document(text, str(spec), {os.path.realpath(library): broken}, memo)
        assert any("has no argument `expand`" in p.message for p in result.problems)
    assert len(loaded) == 2


def test_a_bounded_memo_forgets_the_least_recently_used() -> None:
    from cnnspec.frontend.read import DocMemo

    memo = DocMemo(limit=2)
    a, b = memo.load_text("name: a\n", "a.yaml"), memo.load_text("name: b\n", "b.yaml")
    assert memo.load_text("name: a\n", "a.yaml") is a  # a is now the most recently used
    memo.load_text("name: c\n", "c.yaml")  # b goes
    assert memo.load_text("name: a\n", "a.yaml") is a and memo.load_text("name: b\n", "b.yaml") is not b
    assert len(memo.docs) == 2
