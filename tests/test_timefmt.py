"""Windows read right in the reader's zone: one date when they fit in a day, both when they span
two — in plain text, and in Slack where each client renders the tokens in a zone we never see."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from bot.console.render import Reader, mrkdwn
from bot.core.timefmt import format_window, may_span_dates
from handlers.blocks.common import slack_window

BERLIN = ZoneInfo("Europe/Berlin")
#: Sunday 29 November 2026, 17:08 UTC: "now" in the stats example of the issue.
NOW = datetime(2026, 11, 29, 17, 8, tzinfo=UTC)
ZONES = [ZoneInfo(name) for name in sorted(available_timezones())]


def test_a_window_spanning_days_shows_both_dates_even_when_one_end_is_today() -> None:
    week = NOW - timedelta(days=7)
    assert format_window(week, NOW, UTC, NOW) == "Sun 22 Nov 17:08 – Sun 29 Nov 17:08"
    tonight = NOW.replace(hour=22, minute=0)
    assert format_window(tonight, tonight + timedelta(hours=4), UTC, NOW) == (
        "Sun 29 Nov 22:00 – Mon 30 Nov 02:00"
    )


def test_a_one_day_window_names_its_date_once() -> None:
    morning = NOW.replace(hour=10, minute=0)
    assert format_window(morning, morning + timedelta(hours=2), UTC, NOW) == "10:00–12:00"
    tomorrow = morning + timedelta(days=1)
    assert format_window(tomorrow, tomorrow + timedelta(hours=2), UTC, NOW) == (
        "Mon 30 Nov 10:00–12:00"
    )
    # The same instants read in Berlin: still one day there.
    assert format_window(tomorrow, tomorrow + timedelta(hours=2), BERLIN, NOW) == (
        "Mon 30 Nov 11:00–13:00"
    )


def _spans_somewhere(start: datetime, end: datetime) -> bool:
    return any(start.astimezone(z).date() != end.astimezone(z).date() for z in ZONES)


def test_may_span_dates_is_true_whenever_some_real_zone_sees_two_dates() -> None:
    rng = random.Random(9)
    for _ in range(60):
        start = NOW + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        end = start + timedelta(minutes=rng.choice([1, 5, 14, 20, 60, 120, 600, 3000]))
        if _spans_somewhere(start, end):
            assert may_span_dates(start, end), (start, end)


def test_may_span_dates_examples() -> None:
    ten = NOW.replace(hour=10, minute=0)
    # 10:00–12:00 UTC is 23:00–01:00 in Tonga (+13): two dates there.
    assert may_span_dates(ten, ten + timedelta(hours=2))
    assert _spans_somewhere(ten, ten + timedelta(hours=2))
    # Ten minutes between quarter hours fall on one date everywhere.
    assert not may_span_dates(ten + timedelta(minutes=1), ten + timedelta(minutes=11))
    assert not _spans_somewhere(ten + timedelta(minutes=1), ten + timedelta(minutes=11))


def test_slack_window_dates_its_end_when_some_reader_sees_two_dates() -> None:
    ten = NOW.replace(hour=10, minute=0)
    end_token = slack_window(ten, ten + timedelta(hours=2), now=NOW).split(" – ", 1)[1]
    assert end_token.startswith(f"<!date^{int((ten + timedelta(hours=2)).timestamp())}^")
    assert "{date_short_pretty} {time}" in end_token
    short = slack_window(ten + timedelta(minutes=1), ten + timedelta(minutes=11), now=NOW)
    assert short.split(" – ", 1)[1].split("^")[2] == "{time}|10:01–10:11 UTC>"


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        (UTC, "Sun 22 Nov 17:08 – Sun 29 Nov 17:08"),
        (BERLIN, "Sun 22 Nov 18:08 – Sun 29 Nov 18:08"),
    ],
)
def test_the_console_reads_a_slack_window_as_one(tz: ZoneInfo, expected: str) -> None:
    """`admin stats 7` used to read "From Sun 22 Nov 17:08 – 17:08": the end's date was lost."""
    window = slack_window(NOW - timedelta(days=7), NOW, now=NOW)
    assert mrkdwn(f"From {window}", Reader(tz, NOW)) == f"From {expected}"
    # A one-day window keeps its single date, in the reader's own zone.
    ten = NOW.replace(hour=10, minute=0) + timedelta(days=1)
    assert mrkdwn(slack_window(ten, ten + timedelta(hours=2), now=NOW), Reader(tz, NOW)) == (
        "Mon 30 Nov 10:00 – 12:00" if tz is UTC else "Mon 30 Nov 11:00 – 13:00"
    )
