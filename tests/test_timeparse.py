"""Times typed in the user's zone: fixed clocks, two zones, and the DST days that trip parsers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.formats import format_duration
from bot.core.timeparse import day_bounds, parse_day, parse_when, split_when, week_bounds
from tests.conftest import said

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

# Friday 2026-03-27, 14:00 in Berlin (CET, UTC+1). Berlin moves to CEST (UTC+2) on Sunday 03-29.
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def when(text: str, now: datetime = NOW, tz: ZoneInfo = BERLIN) -> datetime:
    return parse_when(text, now=now, tz=tz)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("in 10m", utc(2026, 3, 27, 13, 10)),
        ("in 2h", utc(2026, 3, 27, 15, 0)),
        ("in 1h 30m", utc(2026, 3, 27, 14, 30)),
        ("in 3 hours", utc(2026, 3, 27, 16, 0)),
        ("14:00", NOW),  # exactly now is not in the past
        ("2pm", NOW),
        ("13:59", utc(2026, 3, 28, 12, 59)),  # already past today: tomorrow
        ("15:30", utc(2026, 3, 27, 14, 30)),
        ("9:30am", utc(2026, 3, 28, 8, 30)),
        ("9am", utc(2026, 3, 28, 8, 0)),
        ("9 am", utc(2026, 3, 28, 8, 0)),
        ("12am", utc(2026, 3, 27, 23, 0)),  # next midnight
        ("12pm", utc(2026, 3, 28, 11, 0)),
        ("noon", utc(2026, 3, 28, 11, 0)),
        ("midnight", utc(2026, 3, 27, 23, 0)),
        ("today 16:00", utc(2026, 3, 27, 15, 0)),
        ("today 9am", utc(2026, 3, 27, 8, 0)),  # explicit day is literal, even if past
        ("tomorrow 9am", utc(2026, 3, 28, 8, 0)),
        ("Tomorrow 9:00", utc(2026, 3, 28, 8, 0)),
        ("tomorrow at 9am", utc(2026, 3, 28, 8, 0)),
        ("fri 2pm", NOW),  # today, the time is not past
        ("friday 3pm", utc(2026, 3, 27, 14, 0)),
        ("fri 1pm", utc(2026, 4, 3, 11, 0)),  # past today: next week, in summer time
        ("sat 10:00", utc(2026, 3, 28, 9, 0)),
        ("mon 10:00", utc(2026, 3, 30, 8, 0)),  # after the DST change: UTC+2
        ("thursday 9am", utc(2026, 4, 2, 7, 0)),
        ("2026-12-01 09:00", utc(2026, 12, 1, 8, 0)),
        ("2026-12-01T09:00", utc(2026, 12, 1, 8, 0)),
        ("2026-12-01t09:00:30", utc(2026, 12, 1, 8, 0, 30)),
        ("2026-12-01 9am", utc(2026, 12, 1, 8, 0)),
        ("2026-07-01 09:00", utc(2026, 7, 1, 7, 0)),  # summer: UTC+2
        ("2026-12-01T09:00:00+01:00", utc(2026, 12, 1, 8, 0)),
        ("2026-12-01T09:00:00-05:00", utc(2026, 12, 1, 14, 0)),
        ("2026-12-01T09:00+0530", utc(2026, 12, 1, 3, 30)),
        ("2026-12-01T09:00Z", utc(2026, 12, 1, 9, 0)),
        ("  tomorrow   9am ", utc(2026, 3, 28, 8, 0)),
    ],
)
def test_parse_when_forms_in_berlin(text: str, expected: datetime) -> None:
    result = when(text)
    assert result == expected
    assert result.tzinfo is UTC


def test_same_text_in_new_york() -> None:
    # 09:00 in New York on 2026-03-27 (EDT, UTC-4).
    assert when("tomorrow 9am", tz=NEW_YORK) == utc(2026, 3, 28, 13, 0)
    assert when("10:00", tz=NEW_YORK) == utc(2026, 3, 27, 14, 0)
    assert when("8am", tz=NEW_YORK) == utc(2026, 3, 28, 12, 0)


def test_offset_ignores_the_users_zone() -> None:
    text = "2026-12-01T09:00:00+01:00"
    assert when(text, tz=BERLIN) == when(text, tz=NEW_YORK) == utc(2026, 12, 1, 8, 0)


def test_now_in_another_zone_is_returned_as_utc() -> None:
    local_now = NOW.astimezone(NEW_YORK)
    assert when("now", now=local_now) == NOW
    assert when("now", now=local_now).tzinfo is UTC


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_when("now", now=datetime(2026, 3, 27, 13, 0), tz=BERLIN)


class TestDaylightSaving:
    """Berlin springs forward 2026-03-29 02:00→03:00; New York falls back 2026-11-01 02:00→01:00."""

    SATURDAY = utc(2026, 3, 28, 12, 0)  # 13:00 CET

    def test_next_day_keeps_the_wall_time_across_spring_forward(self) -> None:
        assert when("9am", now=self.SATURDAY) == utc(2026, 3, 29, 7, 0)  # 09:00 CEST
        assert when("tomorrow 9am", now=self.SATURDAY) == utc(2026, 3, 29, 7, 0)

    def test_time_in_the_gap_uses_the_offset_before_it(self) -> None:
        # 02:30 does not exist on 03-29; fold=0 reads it as CET, i.e. 03:30 CEST.
        result = when("sun 2:30", now=self.SATURDAY)
        assert result == utc(2026, 3, 29, 1, 30)
        assert result.astimezone(BERLIN).hour == 3

    def test_in_duration_is_elapsed_time_not_wall_time(self) -> None:
        before_change = utc(2026, 3, 29, 0, 30)  # 01:30 CET
        assert when("in 1h", now=before_change) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST

    def test_repeated_hour_on_fall_back_means_the_first(self) -> None:
        saturday = utc(2026, 10, 31, 16, 0)  # noon EDT
        assert when("tomorrow 1:30am", now=saturday, tz=NEW_YORK) == utc(2026, 11, 1, 5, 30)
        assert when("tomorrow 3am", now=saturday, tz=NEW_YORK) == utc(2026, 11, 1, 8, 0)  # EST

    def test_weekday_a_week_ahead_crosses_the_change(self) -> None:
        friday_evening = utc(2026, 3, 27, 20, 0)  # 21:00 CET, so "fri 9am" is next week
        assert when("fri 9am", now=friday_evening) == utc(2026, 4, 3, 7, 0)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("xyz", "can't read `xyz` as a time"),
        ("14", "can't read"),  # a bare number is not a clock time
        ("in", "can't read"),
        ("in 2x", "unit `x`"),
        ("in -5m", "must be positive"),
        ("25:00", "no hour 25"),
        ("13pm", "no hour 13"),
        ("0am", "no hour 0"),
        ("9:75", "no minute 75"),
        ("tomorrow", "Add a time to `tomorrow`"),
        ("friday", "Add a time to `friday`"),
        ("tomorrow soon", "Add a time"),
        ("2026-12-01", "Add a time to `2026-12-01`"),
        ("2026-02-30 09:00", "no date `2026-02-30`"),
        ("2026-12-01T24:00", "no hour 24"),
        ("2026-12-01T09:60", "00 to 59"),
        ("2026-12-01T09:00+25:00", "not a UTC offset"),
        ("", "Give the start time"),
        ("next week", "After `next`, name a weekday"),
    ],
)
def test_parse_when_refusals(text: str, phrase: str) -> None:
    with pytest.raises(InputError) as caught:
        when(text)
    assert phrase in said(caught.value)
    assert caught.value.field == "start"


def test_refusals_carry_the_callers_field() -> None:
    for text in ("xyz", "25:00", "in 2x", "tomorrow"):
        with pytest.raises(InputError) as caught:
            parse_when(text, now=NOW, tz=BERLIN, field="end")
        assert caught.value.field == "end"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2026, 3, 27)),
        ("Tomorrow", date(2026, 3, 28)),
        ("yesterday", date(2026, 3, 26)),
        ("friday", date(2026, 3, 27)),  # today counts
        ("fri", date(2026, 3, 27)),
        ("sat", date(2026, 3, 28)),
        ("monday", date(2026, 3, 30)),
        ("thu", date(2026, 4, 2)),
        ("2026-12-01", date(2026, 12, 1)),
    ],
)
def test_parse_day(text: str, expected: date) -> None:
    assert parse_day(text, now=NOW, tz=BERLIN) == expected


def test_parse_day_uses_the_users_date_not_utc() -> None:
    late_utc = utc(2026, 3, 27, 23, 30)  # already Saturday in Berlin, still Friday in New York
    assert parse_day("today", now=late_utc, tz=BERLIN) == date(2026, 3, 28)
    assert parse_day("today", now=late_utc, tz=NEW_YORK) == date(2026, 3, 27)


@pytest.mark.parametrize("text", ["someday", "a100-1", "2026-13-01", "", "week"])
def test_parse_day_refusals(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_day(text, now=NOW, tz=BERLIN)
    assert caught.value.field == "day"


@pytest.mark.parametrize(
    ("tokens", "expected", "used"),
    [
        (["now", "for", "1h"], NOW, 1),
        (["tomorrow", "9am", "for", "3h"], utc(2026, 3, 28, 8, 0), 2),
        (["tomorrow", "at", "9am", "for"], utc(2026, 3, 28, 8, 0), 3),
        (["2026-12-01", "09:00", "until", "17:00"], utc(2026, 12, 1, 8, 0), 2),
        (["in", "1h", "30m", "train"], utc(2026, 3, 27, 14, 30), 3),
        (["in", "2h", "for", "1h"], utc(2026, 3, 27, 15, 0), 2),
        (["14:00"], NOW, 1),
    ],
)
def test_split_when_takes_the_longest_prefix(
    tokens: list[str], expected: datetime, used: int
) -> None:
    reading, count = split_when(tokens, now=NOW, tz=BERLIN)
    assert (reading.at, count) == (expected, used)


@pytest.mark.parametrize(
    ("tokens", "phrase"),
    [
        ([], "Give the end time"),
        (["xyz", "for", "1h"], "can't read `xyz`"),
        (["tomorrow", "25:00", "for"], "no hour 25"),  # the specific error wins
        (["in", "2x", "for"], "unit `x`"),
        (["tomorrow", "for", "3h"], "Add a time to `tomorrow`"),
    ],
)
def test_split_when_refusals(tokens: list[str], phrase: str) -> None:
    with pytest.raises(InputError) as caught:
        split_when(tokens, now=NOW, tz=BERLIN, field="end")
    assert phrase in said(caught.value)
    assert caught.value.field == "end"


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@given(now=instants, hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_bare_time_is_the_next_occurrence(now: datetime, hour: int, minute: int) -> None:
    result = when(f"{hour}:{minute:02d}", now=now, tz=NEW_YORK)
    assert now <= result < now + timedelta(hours=25)  # 25: a fall-back day is that long


@given(now=instants, minutes=st.integers(1, 366 * 24 * 60))
def test_in_duration_adds_exactly(now: datetime, minutes: int) -> None:
    td = timedelta(minutes=minutes)
    assert when(f"in {format_duration(td)}", now=now) == now + td


class TestDayBounds:
    """A day or week the user asks about is their wall-clock one, DST included."""

    def test_an_ordinary_day_in_berlin(self) -> None:
        assert day_bounds(date(2026, 1, 5), BERLIN) == (utc(2026, 1, 4, 23), utc(2026, 1, 5, 23))

    def test_spring_forward_day_is_23_hours(self) -> None:
        start, end = day_bounds(date(2026, 3, 29), BERLIN)
        assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
        assert end - start == timedelta(hours=23)

    def test_fall_back_day_is_25_hours(self) -> None:
        start, end = day_bounds(date(2026, 11, 1), NEW_YORK)
        assert (start, end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
        assert end - start == timedelta(hours=25)

    def test_several_days_step_the_local_date(self) -> None:
        start, end = day_bounds(date(2026, 3, 27), BERLIN, days=7)
        assert (start, end) == (utc(2026, 3, 26, 23), utc(2026, 4, 2, 22))
        assert end.tzinfo == UTC and start.tzinfo == UTC

    def test_week_runs_monday_to_monday_across_the_change(self) -> None:
        # Friday 2026-03-27 lies in the week of Monday 03-23 (CET) to Monday 03-30 (CEST).
        assert week_bounds(date(2026, 3, 27), BERLIN) == (
            utc(2026, 3, 22, 23),
            utc(2026, 3, 29, 22),
        )
        assert week_bounds(date(2026, 3, 23), BERLIN) == week_bounds(date(2026, 3, 29), BERLIN)
