"""The pure recurrence rule: wall-clock expansion across DST, its limits, and the `book` grammar
that reads one."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.recurrence import (
    EVERY_DAY,
    MAX_OCCURRENCES,
    WEEKDAYS,
    Recurrence,
    describe,
    expand,
)
from handlers.commands.registry import parse_command
from handlers.commands.syntax import BookSeries, Cancel

BERLIN = ZoneInfo("Europe/Berlin")


def test_nine_every_weekday_stays_nine_in_berlin_across_the_spring_change() -> None:
    rule = Recurrence(WEEKDAYS, time(9), "Europe/Berlin", date(2027, 3, 25), end=time(17), count=4)
    got = [(o.start.astimezone(BERLIN).hour, o.start.hour, o.end.hour) for o in expand(rule)]
    assert got == [(9, 8, 16), (9, 8, 16), (9, 7, 15), (9, 7, 15)]  # Thu, Fri, Mon, Tue


def test_a_skipped_wall_time_is_read_an_hour_later_and_noted() -> None:
    rule = Recurrence(
        EVERY_DAY,
        time(2, 30),
        "Europe/Berlin",
        date(2027, 3, 27),
        length=timedelta(hours=2),
        count=3,
    )
    first, gap, after = expand(rule)
    assert gap.start == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert gap.end - gap.start == timedelta(hours=2)  # `for 2h` is two real hours
    assert [n.code for n in gap.notes] == [Code.CLOCK_SKIPPED]
    assert first.notes == after.notes == ()


def test_an_until_end_that_is_not_after_the_start_ends_the_next_day() -> None:
    rule = Recurrence(EVERY_DAY, time(22), "UTC", date(2026, 1, 5), end=time(6), count=1)
    (night,) = expand(rule)
    assert (night.start, night.end) == (
        datetime(2026, 1, 5, 22, tzinfo=UTC),
        datetime(2026, 1, 6, 6, tzinfo=UTC),
    )


def test_the_last_day_is_included_and_too_many_occurrences_are_refused() -> None:
    rule = Recurrence(
        WEEKDAYS, time(9), "UTC", date(2026, 1, 5), end=time(10), last_day=date(2026, 1, 9)
    )
    assert [o.day.day for o in expand(rule)] == [5, 6, 7, 8, 9]
    long = Recurrence(
        EVERY_DAY, time(9), "UTC", date(2026, 1, 5), end=time(10), last_day=date(2026, 6, 1)
    )
    with pytest.raises(InputError) as error:
        expand(long)
    assert error.value.code is Code.SERIES_TOO_MANY


@given(
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    first=st.dates(date(2026, 1, 1), date(2028, 12, 31)),
    count=st.integers(1, MAX_OCCURRENCES),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]),
)
def test_every_occurrence_is_on_a_chosen_day_at_the_wall_time_in_order(
    days: frozenset[int], start: time, first: date, count: int, zone: str
) -> None:
    rule = Recurrence(days, start, zone, first, length=timedelta(hours=1), count=count)
    occurrences = expand(rule)
    assert len(occurrences) == count
    tz = ZoneInfo(zone)
    for o in occurrences:
        assert o.day.weekday() in days and o.day >= first
        assert o.end - o.start == timedelta(hours=1)
        local = o.start.astimezone(tz)
        # on the wall time asked, unless the clocks skipped it (then noted)
        assert (local.date(), local.time()) == (o.day, start) or o.notes
    starts = [o.start for o in occurrences]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert Recurrence.from_dict(rule.to_dict()) == rule


def test_a_skipped_wall_time_is_noted_whatever_fold_it_carries() -> None:
    """Found by the property above: 02:00 with ``fold=1`` on New York's spring-forward day
    landed at 01:00 with no note."""
    rule = Recurrence(
        frozenset({6}),
        time(2, fold=1),
        "America/New_York",
        date(2026, 3, 8),
        length=timedelta(hours=1),
        count=1,
    )
    [only] = expand(rule)
    assert only.start == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT, after the gap
    assert only.notes


def test_describe_reads_like_the_request() -> None:
    rule = Recurrence(
        WEEKDAYS,
        time(9),
        "Europe/Berlin",
        date(2027, 2, 16),
        end=time(17),
        last_day=date(2027, 3, 1),
    )
    assert describe(rule) == "weekdays 09:00–17:00 until Mon 1 Mar 2027"
    other = Recurrence(
        frozenset({0, 2}), time(10), "UTC", date(2027, 2, 15), length=timedelta(hours=2), count=6
    )
    assert describe(other, zone=True) == "every Mon, Wed 10:00 for 2h (UTC), 6 times"


NOW = datetime(2027, 2, 15, 12, tzinfo=UTC)  # a Monday, 13:00 in Berlin


def book(text: str) -> BookSeries:
    command = parse_command(f"book rtx-0 8GB {text}", now=NOW, tz=BERLIN)
    assert isinstance(command, BookSeries)
    return command


def test_the_issue_s_examples_read_as_series() -> None:
    weekdays = book("weekdays 09:00 until 17:00 until 2027-03-01 nightly-ci")
    assert weekdays.rule == Recurrence(
        WEEKDAYS,
        time(9),
        "Europe/Berlin",
        date(2027, 2, 16),
        end=time(17),
        last_day=date(2027, 3, 1),
    )
    assert weekdays.task == "nightly-ci"
    mon_wed = book("every mon,wed 10:00 for 2h for 4 weeks sync")
    assert (mon_wed.rule.days, mon_wed.rule.length) == (frozenset({0, 2}), timedelta(hours=2))
    assert (mon_wed.rule.first_day, mon_wed.rule.last_day) == (date(2027, 2, 17), date(2027, 3, 16))
    daily = book("every day 2pm for 1h 10 times eval")
    assert (daily.rule.days, daily.rule.first_day, daily.rule.count) == (
        EVERY_DAY,
        date(2027, 2, 15),
        10,
    )
    assert book("daily 9am until 10am until fri x").rule.last_day == date(2027, 2, 19)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("weekdays 09:00 until 17:00 nightly", Code.SERIES_END_MISSING),
        ("every xyz 09:00 for 1h 2 times t", Code.SERIES_DAYS),
        ("daily for 2h 2 times t", Code.SERIES_CLOCK),
        ("daily 9:00 for 2h until 2027-01-01 t", Code.SERIES_END_BEFORE_START),
        ("daily 9:00 for 2h for 0 weeks t", Code.SERIES_WEEKS),
    ],
)
def test_a_malformed_series_says_what_to_write(text: str, code: Code) -> None:
    with pytest.raises(InputError) as error:
        parse_command(f"book rtx-0 8GB {text}", now=NOW, tz=BERLIN)
    assert error.value.code is code


def test_cancel_takes_series() -> None:
    assert parse_command("cancel 42 series", now=NOW, tz=BERLIN) == Cancel(42, series=True)
    assert parse_command("cancel 42", now=NOW, tz=BERLIN) == Cancel(42)
