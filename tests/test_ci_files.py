"""The CI files shipped for users stay in step with the CLI: every `cnnspec` command line in the pre-commit
hooks and the example GitHub workflow parses with the current argument parser."""

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


def test_pre_commit_hooks() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert sorted(hooks) == ["cnnspec-check", "cnnspec-generated"]
    assert hooks["cnnspec-check"]["entry"] == "cnnspec check"
    assert hooks["cnnspec-generated"]["entry"] == "cnnspec build --check"
    assert hooks["cnnspec-generated"]["pass_filenames"] is False
    _parses(hooks["cnnspec-check"]["entry"] + " specs/a.yaml specs/b.yaml")
    _parses(hooks["cnnspec-generated"]["entry"])
    check = re.compile(hooks["cnnspec-check"]["files"])
    assert [bool(check.search(p)) for p in ("specs/a.yaml", "models/specs/blocks/b.yaml", "docs/a.yaml")] == [
        True, True, False]
    generated = re.compile(hooks["cnnspec-generated"]["files"])
    assert [bool(generated.search(p)) for p in ("specs/a.yml", "generated/a.py", "README.md")] == [True, True, False]


def test_example_workflow_commands_parse() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "github-workflow.yml").read_text())
    scripts = [step["run"] for step in workflow["jobs"]["specs"]["steps"] if "run" in step]
    text = "\n".join(scripts).replace("\\\n", " ")
    commands = [line.strip().split(" || ")[0] for line in text.splitlines() if line.strip().startswith("cnnspec ")]
    assert [c.split()[1] for c in commands] == ["check", "build", "diff", "summary"]
    for command in commands:
        _parses(command)
