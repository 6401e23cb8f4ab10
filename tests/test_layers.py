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
