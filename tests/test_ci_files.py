"""The CI files shipped for users stay in step with the CLI: every `cnnspec` command line in the pre-commit
hooks and the example GitHub workflow parses with the current argument parser, the workflow installs cnnspec
from the checkout (it is not on PyPI) and uploads the SARIF file that its check step writes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from cnnspec.cli import _parser

ROOT = Path(__file__).parents[1]
PLACEHOLDERS = {'"$base"': "HEAD", '"$spec"': "specs/x.yaml"}


def _parses(command: str) -> None:
    for name, value in PLACEHOLDERS.items():
        command = command.replace(name, value)
    argv = shlex.split(command)
    assert argv[0] == "cnnspec", command
    _parser()[0].parse_args(argv[1:])  # exits (SystemExit) on an unknown option


def _steps() -> list[dict]:
    workflow = yaml.safe_load((ROOT / "docs" / "github-workflow.yml").read_text())
    return workflow["jobs"]["specs"]["steps"]


def test_pre_commit_hooks() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert sorted(hooks) == ["cnnspec-check", "cnnspec-generated"]
    assert hooks["cnnspec-check"]["entry"] == "cnnspec check --with-importers --quiet"
    assert hooks["cnnspec-generated"]["entry"] == "cnnspec build --check --if-manifest-exists"
    assert hooks["cnnspec-generated"]["pass_filenames"] is False
    _parses(hooks["cnnspec-check"]["entry"] + " specs/a.yaml specs/b.yaml")
    _parses(hooks["cnnspec-generated"]["entry"])
    check = re.compile(hooks["cnnspec-check"]["files"])
    assert [bool(check.search(p)) for p in ("specs/a.yaml", "models/specs/blocks/b.yaml", "docs/a.yaml")] == [
        True, True, False]
    generated = re.compile(hooks["cnnspec-generated"]["files"])
    assert [bool(generated.search(p)) for p in ("specs/a.yml", "generated/a.py", "README.md")] == [True, True, False]


def test_example_workflow_commands_parse() -> None:
    scripts = [step["run"] for step in _steps() if "run" in step]
    text = "\n".join(scripts).replace("\\\n", " ")
    commands = [re.split(r" \|\| | > ", line.strip())[0] for line in text.splitlines()
                if line.strip().startswith("cnnspec ")]
    assert [c.split()[1] for c in commands] == ["check", "check", "build", "diff", "summary"]
    for command in commands:
        _parses(command)


def test_example_workflow_installs_from_the_checkout_and_uploads_the_sarif_file() -> None:
    steps = {step.get("name", step.get("uses")): step for step in _steps()}
    assert steps["Install cnnspec"]["run"] == 'python -m pip install ".[source]"'
    sarif_run = steps["Check specs for code scanning (SARIF)"]["run"]
    assert sarif_run == "cnnspec check specs/ --format sarif > cnnspec.sarif || [ $? -eq 1 ]"
    upload = steps["Upload to code scanning"]
    assert upload["uses"] == "github/codeql-action/upload-sarif@v3"
    assert upload["with"] == {"sarif_file": "cnnspec.sarif", "category": "cnnspec"}
    assert upload["if"].startswith("${{ !cancelled() && hashFiles('cnnspec.sarif') != ''")
    workflow = yaml.safe_load((ROOT / "docs" / "github-workflow.yml").read_text())
    assert workflow["jobs"]["specs"]["permissions"]["security-events"] == "write"
    assert not any("git+https" in step.get("run", "") for step in _steps())
