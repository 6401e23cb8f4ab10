"""Which layer may import which: checked on the source, so a cycle or a shortcut fails here
rather than as an import error in some later refactoring."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_command_registry_imports_neither_the_console_nor_the_runtime() -> None:
    # A fresh interpreter: this test process has long imported everything.
    probe = (
        "import sys, bot.cli.registry; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['bot', 'console'], ['bot', 'runtime'], ['bot', 'cli']) and m != 'bot.cli.registry'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # The package itself (empty) and how its sentences read in a terminal (pure).
    assert result.stdout.strip() == "['bot.cli', 'bot.cli.wording']"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (``from x import y`` gives x)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_runtime_imports_the_slack_handlers() -> None:
    runtime = ROOT / "bot" / "runtime"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] == "handlers"
        )
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if runtime not in path.parents
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def _modules() -> dict[str, Path]:
    """Every product module by dotted name (``bot.core.units``; a package is its ``__init__``)."""
    found = {}
    for top in ("bot", "handlers", "storage"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _project_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules ``path`` imports, at any depth of its code: ``from a import b`` names
    the module ``a.b`` when there is one, else ``a`` (whose names it takes)."""
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in modules else node.module)
    return {name for name in names if name in modules}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations never run)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


#: Libraries the core may use besides the standard one: they compute, and touch nothing outside.
PURE_LIBRARIES = {"dateutil"}


def test_the_core_imports_only_itself_and_the_standard_library() -> None:
    offenders = {}
    for path in sorted((ROOT / "bot" / "core").rglob("*.py")):
        outside = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] not in sys.stdlib_module_names
            and name.split(".")[0] not in PURE_LIBRARIES
            and not name.startswith("bot.core")
            and name != "__future__"
        }
        if outside:
            offenders[str(path.relative_to(ROOT))] = sorted(outside)
    assert offenders == {}


def test_handlers_use_the_core_and_the_booking_api_never_storage() -> None:
    offenders = {}
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        wrong = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] == "storage"
            or (
                name.startswith("bot") and not name.startswith("bot.core") and name != "bot.booking"
            )
        }
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _project_imports(path, modules) - {name} for name, path in modules.items()}
    cycles = [scc for scc in _strongly_connected(graph) if len(scc) > 1]
    assert cycles == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (the import graph can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


#: Longer than the limits below is allowed only with a reason at the top of the file.
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
REASON = "Longer than"


def test_modules_and_classes_stay_small_or_say_why() -> None:
    too_long = {}
    for path in sorted(_modules().values()):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        doc = ast.get_docstring(tree) or ""
        if REASON in doc:
            continue
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long[str(path.relative_to(ROOT))] = f"{lines} lines"
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_long[f"{path.relative_to(ROOT)}:{node.name}"] = f"{length} lines"
    assert too_long == {}
