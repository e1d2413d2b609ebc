"""Issue 12, acceptance 1: authguard's layout stays readable (measured by tests/architecture.py):
no import cycle counting imports at any depth, at most 10 imports inside functions and each with its reason on
the line or just above, no module over 600 lines, and nothing inside authguard imports through the
compatibility shims kept for settings and stored policies."""

from __future__ import annotations

from tests.architecture import PACKAGE, build, cycles

MAX_IN_FUNCTION_IMPORTS = 10
MAX_MODULE_LINES = 600


def test_no_import_cycle_at_any_depth() -> None:
    assert cycles(build()) == []


def test_few_imports_inside_functions_each_with_its_reason() -> None:
    graph = build()
    assert len(graph.in_functions) <= MAX_IN_FUNCTION_IMPORTS, graph.in_functions
    for module, line, text in graph.in_functions:
        source = graph.modules[module].read_text().splitlines()
        nearby = source[max(0, line - 3) : line]
        assert any("#" in row for row in nearby), f"{module}:{line}: {text} says not why it is in a function"


def test_no_module_over_600_lines() -> None:
    too_long = {name: count for name, count in build().lines.items() if count > MAX_MODULE_LINES}
    assert too_long == {}


def test_nothing_inside_authguard_goes_through_a_compatibility_shim() -> None:
    assert build().through_compat == []


def test_the_measure_sees_a_cycle_and_an_import_in_a_function(tmp_path, monkeypatch) -> None:
    """The measure can fail: two modules importing each other, one of them inside a function."""
    package = tmp_path / "authguard"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from authguard import b\n")
    (package / "b.py").write_text("def f():\n    from authguard import a\n")
    monkeypatch.setattr("tests.architecture.PACKAGE", package)
    graph = build()
    assert cycles(graph) == [["authguard.a", "authguard.b"]]
    assert [(module, line) for module, line, _ in graph.in_functions] == [("authguard.b", 2)]
    assert PACKAGE.name == "authguard"


def test_only_the_console_imports_django_admin() -> None:
    """A portal without ``django.contrib.admin`` (tests/test_wheel_install.py installs one) must still load
    the order guard, the tasks and the checks: importing ``django.contrib.admin.models`` without the app
    stops Django, so only the console's modules (loaded by the admin's autodiscovery) may import it."""
    import ast

    offenders = []
    for name, path in build().modules.items():
        if name.startswith(("authguard.console", "authguard.actions.admin")) or name == "authguard.admin":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django.contrib.admin"):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
