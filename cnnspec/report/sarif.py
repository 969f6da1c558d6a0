"""``cnnspec check --format sarif``: SARIF 2.1.0 for GitHub code scanning (``upload-sarif``) and other
SARIF viewers. One run; ``tool.driver`` names cnnspec, its version and one rule per kind of error
(:data:`cnnspec.error_codes.KINDS`); each result has the rule, the message and the file, line and column
(with the end column where the token's end is known), the file as a URI relative to the checked-out
repository (``uriBaseId: %SRCROOT%``) when it lies under the working directory."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from cnnspec._version import __version__
from cnnspec.error_codes import KINDS
from cnnspec.errors import SourcePos, SpecError
from cnnspec.report.regions import EndColumns

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
RULE_IDS = list(KINDS)


def sarif_log(problems: Iterable[tuple[str, SpecError]], ends: EndColumns) -> dict[str, Any]:
    """The SARIF log of ``problems``: (the file that was checked, an error found in it or its imports)."""
    # no informationUri (optional in SARIF): cnnspec has no public address yet
    driver = {"name": "cnnspec", "version": __version__, "semanticVersion": __version__,
              "rules": [_rule(code) for code in RULE_IDS]}
    results = [_result(error, error.pos or SourcePos(file, 1, 1), ends) for file, error in problems]
    run = {"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def sarif_text(problems: Iterable[tuple[str, SpecError]], ends: EndColumns) -> str:
    return json.dumps(sarif_log(problems, ends), indent=2, ensure_ascii=False) + "\n"


def _rule(code: str) -> dict[str, Any]:
    kind = KINDS[code]
    return {"id": kind.id, "name": "".join(word.capitalize() for word in kind.id.split("-")),
            "shortDescription": {"text": kind.summary}, "help": {"text": kind.help},
            "defaultConfiguration": {"level": "error"}}


def _result(error: SpecError, pos: SourcePos, ends: EndColumns) -> dict[str, Any]:
    code = error.code if error.code in KINDS else "spec"
    region: dict[str, int] = {"startLine": pos.line, "startColumn": pos.col}
    end = ends.end(pos)
    if end is not None:
        region |= {"endLine": pos.line, "endColumn": end}
    location = {"physicalLocation": {"artifactLocation": artifact_location(pos.file), "region": region}}
    return {"ruleId": code, "ruleIndex": RULE_IDS.index(code), "level": "error",
            "message": {"text": error.message}, "locations": [location]}


def artifact_location(file: str) -> dict[str, str]:
    """``file`` as a URI relative to the working directory (the repository root in CI), or an absolute
    ``file:`` URI when it lies elsewhere."""
    path = Path(file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    relative = os.path.relpath(os.path.normpath(absolute), Path.cwd())
    if relative.split(os.sep)[0] == os.pardir:
        return {"uri": Path(os.path.normpath(absolute)).as_uri()}
    return {"uri": quote(str(PurePosixPath(*Path(relative).parts))), "uriBaseId": SRCROOT}
