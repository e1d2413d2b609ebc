"""docs/security-battery.md maps every security-battery case to its tests; this keeps the table true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "security-battery.md"
#: The cases the step-up work (8-33), the order guard (34-41), the deployment (42-48) and the adaptive
#: attacker (49-62: issues 10, 11 and 13) must each prove with a named test.
REQUIRED = range(8, 63)


def _table() -> dict[int, list[str]]:
    rows: dict[int, list[str]] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| (\d+) \|", line)
        if match:
            rows[int(match.group(1))] = re.findall(r"`(tests/[\w/]+\.py::\w+)`", line)
    return rows


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = (node for node in tree.body if isinstance(node, ast.FunctionDef))
    return {node.name for node in functions if node.name.startswith("test")}


def test_every_required_case_has_a_named_test_in_the_table() -> None:
    rows = _table()
    missing = [case for case in REQUIRED if not rows.get(case)]
    assert not missing, f"security-battery cases without a test in {TABLE.name}: {missing}"


def test_every_test_the_table_names_exists_and_carries_its_case_number() -> None:
    for case, refs in _table().items():
        for ref in refs:
            file, name = ref.split("::")
            assert name in _test_functions(ROOT / file), f"case {case}: {ref} does not exist"
            assert re.search(rf"battery_0?{case}_", name), f"case {case}: {name} is not named for it"


def test_every_battery_test_is_in_the_table() -> None:
    listed = {ref for refs in _table().values() for ref in refs}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for name in _test_functions(path):
            if re.search(r"battery_\d+_", name):
                ref = f"tests/{path.name}::{name}"
                assert ref in listed, f"{ref} is missing from {TABLE.name}"
