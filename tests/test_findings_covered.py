"""Every finding of the attack report (issue 14) has a regression test named after it that runs.

The ids live in ``tests/data/attack_findings.txt`` (``tools/findings_audit.py --update REPORT`` refreshes
them from a report); a finding added there without a test ``test_<ID>_...`` (or ``..._<ID>_...``) fails."""

from __future__ import annotations

import ast

from tools import findings_audit


def test_every_finding_has_a_test_that_runs() -> None:
    ids = findings_audit.kept_ids()
    assert len(ids) == 45 and len(set(ids)) == 45  # the report's 45 distinct findings, each once
    missing = [key for key, tests in findings_audit.audit(ids, findings_audit.test_functions()).items() if not tests]
    assert missing == []


def test_the_audit_matches_names_exactly_and_ignores_skipped_tests() -> None:
    assert findings_audit.names_finding("test_P1_closed_pipe", "P1")
    assert findings_audit.names_finding("test_c9_D4_findings", "D4")
    assert not findings_audit.names_finding("test_P10_long_line", "P1")
    source = ("import pytest\n@pytest.mark.skip(reason='x')\ndef test_M3_a(): pass\n"
              "def test_M3_b():\n    pytest.skip('later')\n@pytest.mark.slow\ndef test_M3_c(): assert 1\n")
    funcs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    assert findings_audit.audit(["M3", "M4"], {"t.py": funcs}) == {"M3": ["t.py::test_M3_c"], "M4": []}


def test_a_module_that_skips_itself_covers_nothing(tmp_path) -> None:
    (tmp_path / "test_a.py").write_text("import pytest\npytestmark = pytest.mark.skipif(True, reason='no')\n"
                                        "def test_S1_x(): assert 1\n")
    (tmp_path / "test_b.py").write_text("import pytest\nnp = pytest.importorskip('numpy')\ndef test_S2_x(): assert 1\n")
    (tmp_path / "test_c.py").write_text("import pytest\ndef test_S3_x(): assert 1\n")
    functions = findings_audit.test_functions(tmp_path)
    assert findings_audit.audit(["S1", "S2", "S3"], functions) == {"S1": [], "S2": [], "S3": ["test_c.py::test_S3_x"]}


def test_ids_are_read_from_a_report() -> None:
    report = ("**S1. `diff` writes anywhere.**\nmore\n\n**C10. A param\nbreaks it.**\n\n"
              "* **P1.** `check DIR | head` exits 0.\n* **P2.** two lines.\n")
    assert findings_audit.ids_in_report(report) == [
        ("S1", "`diff` writes anywhere."), ("C10", "A param"), ("P1", "`check DIR | head` exits 0."),
        ("P2", "two lines.")]
