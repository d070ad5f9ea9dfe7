"""No import cycles in harness/, and every function-local import of a harness module says why.

The graph holds the imports that run when a module is imported: module level, class bodies, and
`if`/`try`/`with` blocks, but not function bodies or `if TYPE_CHECKING:` blocks. `from harness.x import y`
is an edge to `harness.x` and, when `y` is a submodule, to `harness.x.y` as well, so a package and its
submodule importing each other (harness.report <-> harness.report.html) is a cycle.

A function-local import of a harness module dodges the graph, so it needs a comment on its own line or
the line above saying why (an optional dependency, or start-up time).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "harness"

# Still to fix by their owners (issue 13). Each entry must still be broken: once it is fixed, delete it.
PENDING_CYCLES: list[set[str]] = []
PENDING_LOCAL_IMPORTS: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The harness modules an import statement imports."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
        return out
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if base in known:
        out.add(base)
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            out.add(f"{base}.{alias.name}")
    return out


def _import_time_statements(body: list[ast.stmt]):
    """Statements that run when the module is imported (function bodies and TYPE_CHECKING blocks excluded)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _import_time_statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody"):
            yield from _import_time_statements(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _import_time_statements(handler.body)


def import_graph(every_statement: bool = False) -> dict[str, set[str]]:
    """Module -> the harness modules it imports: at import time, or (`every_statement`) wherever the statement
    sits, function-local and TYPE_CHECKING imports included (tests/unit/test_layers.py)."""
    modules = harness_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in (ast.walk(tree) if every_statement else _import_time_statements(tree.body)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(node, name, path.name == "__init__.py", known)
        graph[name] = edges - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_a_cycle(graph, set(c)) for c in components]


def _a_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete cycle through the component, for the failure message."""
    start = min(component)
    path, seen = [start], {start}
    while True:
        nxt = sorted(n for n in graph[path[-1]] if n in component)
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            return path + [start]
        step = next((n for n in nxt if n not in seen), None)
        if step is None:
            return path + [nxt[0]]
        path.append(step)
        seen.add(step)


FILE_REASON = "# Local imports:"  # a module-level comment giving the reason for every local import in the file


def _commented(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or above the block of import lines (blank lines allowed) it belongs to."""
    if "#" in lines[lineno - 1]:
        return True
    above = lineno - 2
    while above >= 0 and (not lines[above].strip() or lines[above].lstrip().startswith(("import ", "from "))):
        above -= 1
    return above >= 0 and lines[above].lstrip().startswith("#")


def local_imports_without_reason() -> list[str]:
    """`file:line` of every function-local import of a harness module with no comment beside or above it."""
    modules = harness_modules()
    known = set(modules)
    missing = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        file_reason = any(line.startswith(FILE_REASON) for line in lines)
        for func in ast.walk(ast.parse(source)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and _targets(node, name, path.name == "__init__.py",
                                                                              known):
                    if not file_reason and not _commented(lines, node.lineno):
                        missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(missing))


def test_the_graph_sees_package_and_submodule_edges() -> None:
    graph = import_graph()
    assert "harness.core.api" in graph["harness.run.engine"]
    assert "harness.models.registry" in graph["harness.models"]
    assert find_cycles({"a": {"a.b"}, "a.b": {"a"}, "c": {"a"}}) == [["a", "a.b", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles_in_harness() -> None:
    cycles = find_cycles(import_graph())
    new = [c for c in cycles if set(c) not in PENDING_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" -> ".join(c) for c in new)
    fixed = [sorted(p) for p in PENDING_CYCLES if p not in [set(c) for c in cycles]]
    assert not fixed, f"no longer a cycle, delete from PENDING_CYCLES: {fixed}"


def test_function_local_imports_of_harness_modules_say_why() -> None:
    missing = local_imports_without_reason()
    new = [m for m in missing if m.rpartition(":")[0] not in PENDING_LOCAL_IMPORTS]
    assert not new, ("function-local imports of harness modules need a comment saying why (optional "
                     "dependency or start-up time):\n" + "\n".join(new))
    fixed = sorted(PENDING_LOCAL_IMPORTS - {m.rpartition(":")[0] for m in missing})
    assert not fixed, f"every local import has its reason now, delete from PENDING_LOCAL_IMPORTS: {fixed}"
