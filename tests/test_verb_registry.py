"""The verb registry: every subcommand is one entry, and everything that lists subcommands
(the parser, the help, the metric labels, the listener's plan) is read from it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import InputError
from handlers import command_parser
from handlers.blocks import common, help
from handlers.commands import listener
from handlers.commands.listener import plan
from handlers.commands.registry import EXAMPLES, REGISTRY, VERBS, find_verb
from handlers.users import UTC_ZONE
from tests.conftest import said

NOW = datetime(2026, 1, 5, 8, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def _words(form: str) -> list[str]:
    return form.removeprefix("/gpubook").split()


@pytest.mark.parametrize("verb", REGISTRY, ids=lambda v: " ".join(v.words) or "bare")
def test_every_entry_has_help_whose_forms_name_it(verb) -> None:
    assert verb.help
    for usage in verb.help:
        assert usage.explanation
        found, _ = find_verb(_words(usage.example.replace("#gpu-bookings", "<#C0GPUBOOK|x>")))
        assert found is verb
        assert _words(usage.form)[: len(verb.words)] == list(verb.words)


def test_every_entry_is_named_by_distinct_words() -> None:
    assert len({verb.words for verb in REGISTRY}) == len(REGISTRY)


def test_help_lists_exactly_the_registry() -> None:
    assert tuple(usage for verb in REGISTRY for usage in verb.help) == EXAMPLES
    assert command_parser.EXAMPLES is EXAMPLES
    text = str(help.help_message(EXAMPLES, is_admin=True))
    for usage in EXAMPLES:
        assert common.escape(usage.form) in text


def test_metric_verbs_are_the_registrys_first_words() -> None:
    assert command_parser.VERBS is VERBS
    assert {verb.words[0] for verb in REGISTRY if verb.words} == VERBS


@pytest.mark.parametrize(
    ("typed", "named"),
    [("xyz a b", "xyz"), ("admin", "admin"), ("ADMIN Gpu Foo x", "admin Gpu Foo")],
)
def test_unknown_words_are_named_back(typed: str, named: str) -> None:
    with pytest.raises(InputError) as error:
        find_verb(typed.split())
    assert said(error.value) == f"I don't know `/gpubook {named}`. Try `/gpubook help`."


@pytest.mark.parametrize(
    ("text", "opens_form"),
    [
        ("", True),
        ("book rtx-0 4GB", True),
        ("edit 4", True),
        ("book rtx-0 4GB 10:00 for 1h job", False),
        ("list", False),
        ("edit nope", False),
        ("xyz", False),
    ],
)
def test_only_forms_hurry(text: str, opens_form: bool) -> None:
    assert plan(text, NOW).opens_form is opens_form


def test_a_plan_says_what_the_pipeline_does_after_the_work() -> None:
    booked = plan("book rtx-0 4GB 10:00 for 1h fine-tune", NOW)
    assert (booked.changes, booked.zoned, booked.task) == (True, True, "fine-tune")
    form = plan("book rtx-0 4GB", NOW)
    assert not form.changes  # a form changes nothing until it is submitted
    assert plan("calendar", NOW).zoned and not plan("status", NOW).zoned
    assert plan("admin gpu retire rtx-0", NOW).changes


@pytest.mark.parametrize(
    ("known", "asker", "reads"),
    [
        (TOKYO, TOKYO, [TOKYO]),  # the cached zone is the asker's: read once
        (None, TOKYO, [UTC_ZONE, TOKYO]),  # not cached: read in UTC, then in the asker's zone
        (UTC_ZONE, TOKYO, [UTC_ZONE, TOKYO]),  # the zone changed meanwhile: read again
    ],
)
async def test_a_zoned_command_is_read_again_only_in_a_zone_not_known_before(
    monkeypatch: pytest.MonkeyPatch, known, asker, reads
) -> None:
    read_in: list[ZoneInfo] = []
    verb, _ = find_verb(["book"])

    def parse(args: list[str], now: datetime, tz: ZoneInfo) -> str:
        read_in.append(tz)
        return f"read in {tz.key}"

    async def handle(request: object, command: str) -> str:
        return command

    counting = dataclasses.replace(verb, parse=parse, handle=handle)
    monkeypatch.setattr(listener, "find_verb", lambda words: (counting, words[1:]))
    work = listener.plan("book rtx-0 4GB 10:00 for 1h job", NOW, known).work
    request = SimpleNamespace(now=NOW, actor=SimpleNamespace(tz=asker))
    assert await work(request) == f"read in {asker.key}"
    assert read_in == reads
