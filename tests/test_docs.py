"""The front door stays true: README's settings table, .env.example and the Procfile match the code."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import SETTINGS_DOC

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def settings_table() -> str:
    """The README's settings table, rendered from ``bot.config.SETTINGS_DOC``."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{name}` | `{default}` | {meaning} |" for name, default, meaning in SETTINGS_DOC]
    return "\n".join(rows)


def test_readme_settings_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == settings_table(), (
        "README's settings table is stale; regenerate it with "
        "`.venv/bin/python -c 'from tests.test_docs import settings_table; print(settings_table())'`"
    )


def test_env_example_names_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    for name, _default, _meaning in SETTINGS_DOC:
        if "<" not in name:
            assert name in named, f".env.example does not mention {name}"


def test_procfile_runs_migrations_then_serves() -> None:
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert lines["release"].strip() == "gpubook db upgrade"
    assert lines["web"].strip() == "gpubook serve"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./dev test" in ci
    assert "`./dev test`" in readme
