"""Which attack findings have no regression test named after them.

The attack report (issue 14: ``attack-findings.md``) names each finding ``S1``..``S6``, ``D1``.., ``M1``..,
``C1``.., ``P1``..; every finding has a test whose name starts with ``test_<ID>_`` or contains ``_<ID>_``.
``tests/data/attack_findings.txt`` keeps the ids (and titles) in the repository, so the audit
(``tests/test_findings_covered.py``) never reads outside it.

    python tools/findings_audit.py                      # ids without a test, from the kept list
    python tools/findings_audit.py --update REPORT.md   # refresh the kept list from a report, then audit
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / "tests" / "data" / "attack_findings.txt"
_HEADING = re.compile(r"^\*\*([SDMC][0-9]+)\. ([^\n]*)", re.MULTILINE)  # **S1. title.**
_BULLET = re.compile(r"^\* \*\*(P[0-9]+)\.\*\* *(.*)$", re.MULTILINE)  # * **P1.** text


def ids_in_report(text: str) -> list[tuple[str, str]]:
    """(id, title) of every finding of an attack report, in report order."""
    found = [(m.start(), m[1], m[2]) for m in (*_HEADING.finditer(text), *_BULLET.finditer(text))]
    return [(key, title.replace("**", "").strip()[:100]) for _, key, title in sorted(found)]


def kept_ids(path: Path = KEPT) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split(None, 1)[0] for line in lines if line.strip() and not line.startswith("#")]


def test_functions(tests: Path = ROOT / "tests") -> dict[str, list[ast.FunctionDef]]:
    """Every test function of ``tests/test_*.py`` (top level and in classes), by file name."""
    out: dict[str, list[ast.FunctionDef]] = {}
    for path in sorted(tests.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _module_skipped(tree):
            out[path.name] = []
            continue
        out[path.name] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return out


def _module_skipped(tree: ast.Module) -> bool:
    """A module-level ``pytestmark`` that skips, or a module-level ``pytest.importorskip``/``skip``."""
    for node in tree.body:
        text = ast.unparse(node)
        if isinstance(node, (ast.Assign, ast.Expr)) and ("pytest.importorskip" in text or "pytest.skip(" in text
                                                           or (text.startswith("pytestmark") and "skip" in text)):
            return True
    return False


def names_finding(name: str, key: str) -> bool:
    return name.startswith(f"test_{key}_") or f"_{key}_" in name


def skipped(func: ast.FunctionDef) -> bool:
    """A ``skip``/``skipif``/``xfail`` decorator, or a ``pytest.skip(...)`` call in the body."""
    marks = {ast.unparse(d).split("(")[0] for d in func.decorator_list}
    if marks & {"pytest.mark.skip", "pytest.mark.skipif", "pytest.mark.xfail"}:
        return True
    calls = (ast.unparse(n.func) for n in ast.walk(func) if isinstance(n, ast.Call))
    return any(c in ("pytest.skip", "pytest.xfail", "pytest.importorskip") for c in calls)


def audit(ids: list[str], functions: dict[str, list[ast.FunctionDef]]) -> dict[str, list[str]]:
    """id -> the tests named after it that run (an empty list: none)."""
    out: dict[str, list[str]] = {}
    for key in ids:
        out[key] = [f"{file}::{f.name}" for file, funcs in functions.items() for f in funcs
                    if names_finding(f.name, key) and not skipped(f)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, metavar="REPORT", help="rewrite the kept id list from REPORT")
    args = parser.parse_args(argv)
    if args.update:
        found = ids_in_report(args.update.read_text(encoding="utf-8"))
        header = "# Attack findings of issue 14 (made by tools/findings_audit.py --update); each needs a test\n"
        KEPT.write_text(header + "".join(f"{key} {title}\n" for key, title in found), encoding="utf-8")
    result = audit(kept_ids(), test_functions())
    missing = [key for key, tests in result.items() if not tests]
    for key, tests in result.items():
        print(f"{key:4} {len(tests):3} {tests[0] if tests else 'MISSING'}")
    print(f"{len(result)} findings, {len(missing)} without a test" + (f": {', '.join(missing)}" if missing else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
