"""Which layer may import which: checked on the source, so a cycle or a shortcut fails here
rather than as an import error in some later refactoring."""

from __future__ import annotations

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
    assert result.stdout.strip() == "['bot.cli']"  # the package itself, empty
