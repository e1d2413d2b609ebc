"""authguard's import graph, read from the source with ``ast`` (issue 12): cycles, imports inside functions,
module sizes, and imports that go through a compatibility shim.

Every ``import`` counts wherever it is (module level or inside a function), except under
``if TYPE_CHECKING:``, which never runs. ``python -m tests.architecture`` prints the numbers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "authguard"

#: Old module paths kept only because settings and stored policies name them (forwarding shims).
SHIMS = frozenset(
    {
        "authguard.admin",
        "authguard.decorators",
        "authguard.feedback",
        "authguard.middleware",
        "authguard.order_rules",
        "authguard.risk_signals",
    }
)


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: (module, line, source) of every import of an authguard module inside a function
    in_functions: list[tuple[str, int, str]] = field(default_factory=list)
    #: (module, line, name) of imports that go through a shim or a package's lazy re-export
    through_compat: list[tuple[str, int, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _lazy_packages(modules: dict[str, Path]) -> set[str]:
    """Packages whose ``__init__`` forwards names lazily (PEP 562) to a module of theirs."""
    return {
        name
        for name, path in modules.items()
        if path.name == "__init__.py" and "forward_to(" in path.read_text()
    }


def build() -> Graph:
    graph = Graph()
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        graph.modules[_module_name(path)] = path
    lazy = _lazy_packages(graph.modules)
    for name, path in graph.modules.items():
        source = path.read_text()
        graph.lines[name] = source.count("\n") + (0 if source.endswith("\n") else 1)
        tree = ast.parse(source)
        type_only: set[int] = set()
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                type_only.update(id(n) for n in ast.walk(node))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                in_function.update(id(n) for n in ast.walk(node) if n is not node)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in type_only:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = name if is_package else name.rsplit(".", 1)[0]
                    for _ in range(node.level - 1):
                        package = package.rsplit(".", 1)[0]
                    base = f"{package}.{base}" if base else package
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in graph.modules:
                        targets.append(full)
                    else:
                        targets.append(base)
                        if base in lazy and name not in SHIMS and not name.startswith(base + "."):
                            graph.through_compat.append((name, node.lineno, full))
            found = []
            for target in targets:
                while target and target not in graph.modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("authguard"):
                    found.append(target)
                    if target in SHIMS and name not in SHIMS:
                        graph.through_compat.append((name, node.lineno, target))
            graph.edges[name].update(found)
            if found and id(node) in in_function:
                graph.in_functions.append((name, node.lineno, ast.unparse(node)))
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.edges[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def main() -> None:
    graph = build()
    print(f"modules: {len(graph.modules)}")
    print(f"import cycles: {cycles(graph) or 'none'}")
    print(f"imports inside functions: {len(graph.in_functions)}")
    for module, line, text in graph.in_functions:
        print(f"  {module}:{line}: {text}")
    biggest = sorted(graph.lines.items(), key=lambda item: -item[1])[:5]
    print("largest modules: " + ", ".join(f"{name} {count}" for name, count in biggest))
    print(f"imports through a compatibility shim: {len(graph.through_compat)}")


if __name__ == "__main__":
    main()
