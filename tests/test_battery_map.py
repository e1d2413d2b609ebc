"""docs/security-battery.md maps every security-battery case to its tests; this keeps the table true.

The case numbers come from the tests' ``@pytest.mark.battery(N)`` markers (read by :mod:`tests.battery`),
not from their names.
"""

from __future__ import annotations

import re

from .battery import ROOT, all_tests, battery_tests

TABLE = ROOT / "docs" / "security-battery.md"
#: The cases the step-up work (8-33), the order guard (34-41), the deployment (42-48) and the adaptive
#: attacker (49-66: issues 10, 11 and 13, and the red team's variants) must each prove with a marked test.
REQUIRED = range(8, 67)


def _table() -> dict[int, list[str]]:
    rows: dict[int, list[str]] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| (\d+) \|", line)
        if match:
            rows[int(match.group(1))] = re.findall(r"`(tests/[\w/]+\.py::[\w:]+)`", line)
    return rows


def test_every_required_case_has_a_marked_test_in_the_table() -> None:
    rows, marked = _table(), battery_tests()
    missing = [case for case in REQUIRED if not rows.get(case)]
    assert not missing, f"security-battery cases without a test in {TABLE.name}: {missing}"
    unmarked = [case for case in REQUIRED if not marked.get(case)]
    assert not unmarked, f"security-battery cases no test is marked for: {unmarked}"


def test_every_test_the_table_names_exists_and_is_marked_for_its_case() -> None:
    tests = all_tests()
    for case, refs in _table().items():
        for ref in refs:
            assert ref in tests, f"case {case}: {ref} does not exist"
            assert case in tests[ref], f"case {case}: {ref} has no @pytest.mark.battery({case})"


def test_every_marked_test_is_in_the_table_under_each_of_its_cases() -> None:
    rows = _table()
    for case, refs in battery_tests().items():
        for ref in refs:
            assert ref in rows.get(case, []), f"{ref} (battery case {case}) is missing from {TABLE.name}"


def test_a_case_number_in_a_test_name_agrees_with_its_marker() -> None:
    """Names may still say ``battery_NN_`` (so ``-k battery_26`` keeps working); the marker must agree."""
    for ref, cases in all_tests().items():
        named = re.search(r"battery_(\d+)_", ref.rpartition("::")[2])
        if named:
            assert int(named.group(1)) in cases, f"{ref} is named for case {int(named.group(1))}: {cases}"
