"""``cnnspec lsp`` end to end: the server as a subprocess, driven over stdio by a JSON-RPC client
(``tests/lsp_client.py``), one session for the module. Every feature is asserted with exact values."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_client import THREE_MISTAKES, LspClient, position, span

from cnnspec.cli import main

ROOT = Path(__file__).parents[1]
SPECS = ROOT / "specs"
WHOLE = {"start": position(0, 0), "end": position(200, 0)}


@pytest.fixture(scope="module")
def client() -> Iterator[LspClient]:
    lsp = LspClient()
    lsp.initialize({"workspace": {"inlayHint": {"refreshSupport": True}}})
    yield lsp
    assert lsp.close() == 0  # `shutdown` then `exit`: status 0


def doc(uri: str) -> dict[str, str]:
    return {"uri": uri}


def test_capabilities() -> None:
    lsp = LspClient()
    try:
        capabilities = lsp.initialize()["capabilities"]
    finally:
        assert lsp.close() == 0
    assert {key for key, value in capabilities.items() if value} >= {
        "textDocumentSync", "completionProvider", "hoverProvider", "definitionProvider", "referencesProvider",
        "documentSymbolProvider", "codeActionProvider", "inlayHintProvider"}
    assert capabilities["textDocumentSync"]["change"] == 2  # incremental
    assert capabilities["completionProvider"]["triggerCharacters"] == ["$", "{", ",", " ", "-"]


def test_three_mistakes_then_an_unsaved_fix(client: LspClient) -> None:
    uri = client.open(SPECS / "unsaved_three.yaml", THREE_MISTAKES)
    index, _, diagnostics = client.diagnostics(uri, 1)
    assert [(d["range"], d["message"], d["code"], d["severity"], d["source"]) for d in diagnostics] == [
        (span(3, 19, 25), "unknown option `kernal` for `conv`; did you mean `kernel`?", "unknown-key", 1, "cnnspec"),
        (span(4, 4, 9), "unknown layer `rellu`; did you mean `relu`?", "unknown-name", 1, "cnnspec"),
        (span(5, 18, 29), "`$num_clases` is not defined (defined here: none)", "unknown-name", 1, "cnnspec"),
    ]
    client.change(uri, 2, [{"range": span(4, 4, 9), "text": "relu"}])
    _, _, diagnostics = client.diagnostics(uri, 2, after=index + 1)
    assert [(d["range"], d["message"]) for d in diagnostics] == [
        (span(3, 19, 25), "unknown option `kernal` for `conv`; did you mean `kernel`?"),
        (span(5, 18, 29), "`$num_clases` is not defined (defined here: none)"),
    ]
    actions = client.request("textDocument/codeAction", {
        "textDocument": doc(uri), "range": span(3, 19, 25), "context": {"diagnostics": diagnostics[:1]}})
    assert [(a["title"], a["kind"], a["isPreferred"], a["edit"]) for a in actions] == [
        ("Replace `kernal` with `kernel`", "quickfix", True,
         {"changes": {uri: [{"range": span(3, 19, 25), "newText": "kernel"}]}})]
    client.notify("textDocument/didClose", {"textDocument": doc(uri)})


def test_a_stale_result_never_overwrites_a_newer_one(client: LspClient) -> None:
    uri = client.open(SPECS / "unsaved_stale.yaml", THREE_MISTAKES)
    index, _, _ = client.diagnostics(uri, 1)
    for version, word in ((2, "relu"), (3, "rlu"), (4, "relu")):  # faster than an analysis
        client.change(uri, version, [{"range": span(4, 4, 4 + len(word) + (version == 3)), "text": word}])
    _, _, diagnostics = client.diagnostics(uri, 4, after=index + 1)
    versions = [m["params"]["version"] for _, m in client.notifications[index + 1:]
                if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri]
    assert versions == sorted(versions) and versions[-1] == 4
    assert len(diagnostics) == 2
    client.notify("textDocument/didClose", {"textDocument": doc(uri)})


def summary_table(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str, str]]:
    """``cnnspec summary``'s rows: path -> (output shape, params, MACs) as printed."""
    assert main(["summary", str(path)]) == 0
    table = {}
    for line in capsys.readouterr().out.splitlines()[4:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6:
            table[cells[0]] = (cells[2], cells[3], cells[4])
    return table


def test_inlay_hints_on_resnet18_equal_the_summary_line_for_line(client: LspClient,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = SPECS / "resnet18.yaml"
    uri = client.open(path)
    found = client.request("textDocument/inlayHint", {"textDocument": doc(uri), "range": WHOLE})
    table = summary_table(path, capsys)
    lines = path.read_text().splitlines()
    assert [h["position"]["line"] for h in found] == [i for i, line in enumerate(lines) if line.startswith("  - ")]
    for hint in found:
        shape, params, macs = table[hint["tooltip"]]
        line = lines[hint["position"]["line"]]
        expected = f"→ {shape}" + (f" · {params} params, {macs} MACs" if "stage:" in line else "")
        assert (hint["label"], hint["position"]["character"], hint["paddingLeft"]) == (expected, len(line), True)
    assert found[4]["label"] == "→ 64x56x56 · 147,968 params, 462,422,016 MACs"
    client.notify("textDocument/didClose", {"textDocument": doc(uri)})


def test_hover_completion_definition_symbols_on_resnet50(client: LspClient) -> None:
    path = SPECS / "resnet50.yaml"
    uri = client.open(path)
    hover = client.request("textDocument/hover", {"textDocument": doc(uri), "position": position(8, 6)})
    assert hover == {"contents": {"kind": "markdown", "value": (
        "**conv 7x7, 64, stride 2** `conv1`\n\n3x224x224 → 64x112x112 · 9,408 params · 118,013,952 MACs · "
        "RF 7x7 (stride 2x2)")}, "range": span(8, 4, 8)}
    definition = client.request("textDocument/definition", {"textDocument": doc(uri), "position": position(12, 40)})
    assert definition == [{"uri": (SPECS / "blocks" / "resnet.yaml").resolve().as_uri(), "range": span(16, 2, 12)}]
    references = client.request("textDocument/references", {
        "textDocument": doc(uri), "position": position(12, 40), "context": {"includeDeclaration": False}})
    assert [(r["uri"] == uri, r["range"]) for r in references] == [(True, span(line, 33, 43)) for line in range(12, 16)]
    symbols = client.request("textDocument/documentSymbol", {"textDocument": doc(uri)})
    assert [s["name"] for s in symbols] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                            "avgpool", "9", "fc"]
    layer2 = symbols[5]
    assert (layer2["detail"], layer2["selectionRange"], [c["name"] for c in layer2["children"]]) == (
        "stage → 512x28x28", span(13, 4, 9), ["layer2.0", "layer2.1", "layer2.2", "layer2.3"])
    assert [c["name"] for c in layer2["children"][0]["children"]][:3] == [
        "layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu"]
    # completion in an unsaved edit: settings of the op being written
    client.change(uri, 2, [{"range": span(19, 0, 0), "text": "  - maxpool: {kernel: 2, "}])
    completion = client.request("textDocument/completion", {"textDocument": doc(uri), "position": position(19, 25)})
    assert [(i["label"], i.get("detail")) for i in completion["items"]] == [
        ("stride", "optional"), ("padding", "default 0"), ("ceil_mode", "default false"), ("dilation", "default 1"),
        ("name", "optional")]
    client.notify("textDocument/didClose", {"textDocument": doc(uri)})


def test_an_open_library_shows_the_errors_its_users_find(client: LspClient) -> None:
    spec = client.open(SPECS / "resnet50.yaml")
    index, _, diagnostics = client.diagnostics(spec, 1)
    assert diagnostics == []
    library_path = SPECS / "blocks" / "resnet.yaml"
    library = client.open(library_path)
    client.change(library, 2, [{"range": span(27, 27, 33), "text": "$widht"}])  # bottleneck's conv3: `$width * 4`
    _, _, in_library = client.diagnostics(library, 2, after=index + 1)
    message = "`$widht` is not defined; did you mean `$width`?"
    assert [(d["range"], d["message"]) for d in in_library] == [(span(27, 26, 38), message)]
    _, _, in_spec = client.diagnostics(spec, 1, after=index + 1)
    assert [(d["range"], d["message"], d["relatedInformation"][0]["location"]["uri"]) for d in in_spec] == [
        (span(5, 6, 24), f"blocks/resnet.yaml:28:27: {message}", library)]  # once, not once per instance
    for uri in (library, spec):
        client.notify("textDocument/didClose", {"textDocument": doc(uri)})


def test_the_default_debounce_is_the_commands() -> None:
    from cnnspec.commands.lsp import DEFAULT_DEBOUNCE_MS
    from cnnspec.lsp.scheduler import DEBOUNCE_S

    assert DEFAULT_DEBOUNCE_MS / 1000 == DEBOUNCE_S == 0.005


def test_missing_pygls_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "cnnspec.lsp.server", raising=False)
    monkeypatch.setitem(sys.modules, "pygls", None)
    assert main(["lsp"]) == 2
    assert capsys.readouterr().err == ("cnnspec lsp: error: the language server needs the lsp extra (no module "
                                       "`pygls`): pip install 'cnnspec[lsp]'\n")
