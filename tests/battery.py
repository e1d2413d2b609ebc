"""The security battery's case numbers, read from the ``@pytest.mark.battery(N, ...)`` markers of the tests.

A battery test says which case(s) of the team's security test plan it proves with the marker, not with its
name: ``@pytest.mark.battery(26)`` (or ``battery(19, 27)`` for a test that proves two). The table in
``docs/security-battery.md`` is generated from these markers (``scripts/battery-table``) and checked against
them (``tests/test_battery_map.py``). They are read from the source with :mod:`ast`, so the map needs no
Django, no database and no collection of the suite; run one case's tests with ``pytest --battery 26``.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The highest case number of the team's test plan: a marker naming a case beyond it is a typo.
LAST_CASE = 71
MARKER_HELP = (
    "battery(N, ...): proves case N (1-71) of the security battery in docs/security-battery.md; "
    "select one case with --battery N"
)


def _battery_cases(decorators: list[ast.expr]) -> list[int]:
    """The case numbers of the ``pytest.mark.battery(...)`` decorators in ``decorators`` (in order)."""
    cases: list[int] = []
    for decorator in decorators:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "battery"
            and ast.unparse(decorator.func.value) == "pytest.mark"
        ):
            for arg in decorator.args:
                value = ast.literal_eval(arg)
                if not isinstance(value, int) or not 1 <= value <= LAST_CASE:
                    raise ValueError(f"battery marker with {value!r}: case numbers are 1 to {LAST_CASE}")
                cases.append(value)
    return cases


def _tests(tree: ast.Module) -> Iterator[tuple[str, list[int]]]:
    """``(test id inside the module, its battery cases)`` for each test function and test method."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            yield node.name, _battery_cases(node.decorator_list)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            inherited = _battery_cases(node.decorator_list)
            for method in node.body:
                if isinstance(method, functions) and method.name.startswith("test"):
                    yield f"{node.name}::{method.name}", inherited + _battery_cases(method.decorator_list)


def suite_files(root: Path = ROOT) -> list[Path]:
    """Every test module of the suite (portal two's included), in a stable order."""
    return sorted((root / "tests").rglob("test_*.py"))


def all_tests(root: Path = ROOT) -> dict[str, list[int]]:
    """Every test of the suite as ``tests/<path>::<name>`` with its battery cases (empty for most)."""
    found: dict[str, list[int]] = {}
    for path in suite_files(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, cases in _tests(tree):
            found[f"{path.relative_to(root).as_posix()}::{name}"] = cases
    return found


def battery_tests(root: Path = ROOT) -> dict[int, list[str]]:
    """Each battery case and the tests marked for it (``tests/<path>::<name>``), cases in ascending order."""
    found: dict[int, list[str]] = collections.defaultdict(list)
    for ref, cases in all_tests(root).items():
        for case in dict.fromkeys(cases):
            found[case].append(ref)
    return dict(sorted(found.items()))
