"""The front door stays true: README's settings table, .env.example and the Procfile match the code."""

from __future__ import annotations

import re
from pathlib import Path

from bot.runtime.settings_doc import SETTINGS_DOC

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def settings_table() -> str:
    """The README's settings table, rendered from ``bot.runtime.config.SETTINGS_DOC``."""
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


def _readme_examples(pattern: str) -> list[str]:
    """README lines/cells matching ``pattern``, with `[optional]` parts written out and the
    first of `a|b` alternatives taken, so each reads as one concrete invocation."""
    found = re.findall(pattern, (ROOT / "README.md").read_text(), flags=re.M)
    examples = []
    for text in found:
        text = re.sub(r"\[([^\]]*)\]", r"\1", text)
        text = re.sub(r"(\w+)\|\w+", r"\1", text)
        examples.append(text.strip())
    return examples


def test_every_slash_command_in_the_readme_parses() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from handlers.command_parser import parse_command

    examples = _readme_examples(r"`(/gpubook[^`]*)`")
    assert len(examples) > 15
    for example in examples:
        # Slack sends a channel mention as <#C…|name> (the manifest asks it to escape them).
        text = re.sub(r"#([a-z][\w-]*)", r"<#C0123ABCD|\1>", example.removeprefix("/gpubook"))
        # … and a user mention as <@U…|name>.
        text = re.sub(r"@([a-z]+)", r"<@U0123ABCD|\1>", text)
        parse_command(text, now=datetime(2026, 1, 5, 8, tzinfo=UTC), tz=ZoneInfo("UTC"))


def test_every_cli_command_in_the_readme_parses() -> None:
    import shlex

    from bot.cli.main import build_parser

    examples = _readme_examples(r"^gpubook (\w.*?)(?:\s+#.*)?$")
    assert len(examples) >= 9
    parser = build_parser()
    for example in examples:
        args = parser.parse_args(shlex.split(example))
        assert callable(args.handler), example
