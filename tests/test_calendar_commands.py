"""The words of `calendar link [gpu]`, `calendar link revoke` and `chart [gpu] [day|week]
[date]`; the names they keep from GPUs; the setting links are made from; owners' names."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import InputError
from bot.core.gpu_names import validate_gpu_name
from bot.core.phrases import Code
from bot.runtime.config import Settings
from handlers.command_parser import parse_command
from handlers.commands.syntax import Calendar, CalendarLink, CalendarLinkRevoke, Chart
from handlers.users import _profile
from tests.conftest import said

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)  # Friday in Berlin


def parse(text: str):
    return parse_command(text, now=NOW, tz=BERLIN)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("calendar link", CalendarLink()),
        ("calendar link RTX-0", CalendarLink("rtx-0")),
        ("Calendar Link Revoke", CalendarLinkRevoke()),
        ("chart", Chart()),
        ("chart rtx-0", Chart("rtx-0")),
        ("chart rtx-0 week", Chart("rtx-0", None, True)),
        ("chart week monday rtx-0", Chart("rtx-0", date(2026, 3, 30), True)),
        ("chart rtx-0 day 2026-04-02", Chart("rtx-0", date(2026, 4, 2), False)),
        ("chart tomorrow", Chart(None, date(2026, 3, 28), False)),
    ],
)
def test_the_forms_read_as_meant(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("calendar link rtx-0 rtx-1", Code.CALENDAR_LINK_USAGE),
        ("calendar link revoke now", Code.CALENDAR_LINK_USAGE),
        ("chart rtx-0 rtx-1", Code.CHART_USAGE),
        ("chart day week", Code.CHART_USAGE),
        ("chart monday friday", Code.CHART_USAGE),
    ],
)
def test_extra_words_are_refused_with_the_form(text: str, code: Code) -> None:
    with pytest.raises(InputError) as refused:
        parse(text)
    assert refused.value.code is code
    assert "`/gpubook " in said(refused.value)


def test_plain_calendar_still_reads_a_gpu_and_a_day() -> None:
    assert parse("calendar rtx-0 friday") == Calendar("rtx-0", date(2026, 3, 27))


@pytest.mark.parametrize("name", ["link", "revoke"])
def test_gpus_cannot_take_the_link_commands_words(name: str) -> None:
    with pytest.raises(InputError):
        validate_gpu_name(name)


def test_the_public_url_setting_is_an_http_base_without_trailing_slash() -> None:
    assert Settings.from_env({}).public_url is None
    env = {"GPUBOOK_PUBLIC_URL": "https://gpus.example.com/bot/"}
    assert Settings.from_env(env).public_url == "https://gpus.example.com/bot"
    with pytest.raises(InputError) as refused:
        Settings.from_env({"GPUBOOK_PUBLIC_URL": "gpus.example.com"})
    assert "GPUBOOK_PUBLIC_URL" in str(refused.value)


@pytest.mark.parametrize(
    ("user", "name"),
    [
        ({"name": "al", "profile": {"display_name": "Alice", "real_name": "Alice A"}}, "Alice"),
        ({"name": "al", "profile": {"display_name": "", "real_name": "Alice A"}}, "Alice A"),
        ({"name": "al", "tz": "Nowhere/Atlantis"}, "al"),
        ({}, None),
    ],
)
def test_a_profile_names_the_user_as_slack_shows_them(user: dict, name: str | None) -> None:
    assert _profile({"tz": "UTC", **user}).name == name
