"""The pure fair-share arithmetic, against brute force: GB·h in the rolling window, when a
request fits again as old use ages out, and how several groups combine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.capacity import Span
from bot.core.errors import InputError
from bot.core.limits import (
    EVERYONE,
    GBH_WINDOW,
    MIB_SECONDS_PER_GBH,
    LimitName,
    effective,
    format_gbh,
    gbh_fits_at,
    gbh_used,
    parse_value,
)

NOW = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def minute(k: int) -> datetime:
    return NOW + k * MINUTE


spans_strategy = st.lists(
    st.tuples(st.integers(-12_000, 600), st.integers(1, 600), st.integers(1, 64)).map(
        lambda t: Span(minute(t[0]), minute(t[0] + t[1]), t[2])
    ),
    max_size=8,
)


def brute_used(spans: list[Span], now: datetime) -> int:
    """MiB·seconds counted at ``now``, minute by minute (spans are on whole minutes)."""
    since = now - GBH_WINDOW
    total = 0
    for span in spans:
        k = span.start
        while k < span.end:
            if k >= since:
                total += span.mib * 60
            k += MINUTE
    return total


@settings(max_examples=150, deadline=None)
@given(spans_strategy)
def test_gbh_used_counts_the_last_seven_days_and_everything_ahead(spans: list[Span]) -> None:
    assert gbh_used(spans, NOW) == brute_used(spans, NOW)


@settings(max_examples=150, deadline=None)
@given(spans_strategy, st.integers(0, 3_000_000), st.integers(0, 1_000_000))
def test_gbh_fits_at_is_the_first_instant_it_fits(spans: list[Span], limit: int, need: int) -> None:
    at = gbh_fits_at(spans, limit, need, NOW)
    if need > limit:
        assert at is None
        return
    assert at is not None and at >= NOW
    assert gbh_used(spans, at) + need <= limit
    if at > NOW:
        assert gbh_used(spans, at - timedelta(seconds=1)) + need > limit


def test_a_week_old_booking_ages_out_minute_by_minute() -> None:
    week_ago = [
        Span(NOW - GBH_WINDOW - timedelta(hours=1), NOW - GBH_WINDOW + timedelta(hours=1), 1024)
    ]
    assert format_gbh(gbh_used(week_ago, NOW)) == "1 GB·h"
    assert gbh_fits_at(week_ago, MIB_SECONDS_PER_GBH, MIB_SECONDS_PER_GBH // 2, NOW) == (
        NOW + timedelta(minutes=30)
    )


def test_the_most_generous_of_the_groups_that_set_a_limit_wins() -> None:
    settings_ = {
        EVERYONE: {LimitName.MAX_HELD: 10, LimitName.MAX_OPEN: 3},
        "premium": {LimitName.MAX_HELD: 40},
        "big": {LimitName.MAX_HELD: 80},
        "guests": {LimitName.MAX_OPEN: 1},
    }
    both = effective({EVERYONE, "premium", "big"}, settings_)
    assert (both[LimitName.MAX_HELD].value, both[LimitName.MAX_HELD].group) == (80, "big")
    assert both[LimitName.MAX_OPEN].value == 3  # set by no group of theirs: everyone's
    assert both[LimitName.MAX_GBH].value is None  # set by nobody: unlimited
    # A group's value replaces the default for its members, even when it is stricter.
    assert effective({EVERYONE, "guests"}, settings_)[LimitName.MAX_OPEN].value == 1
    assert effective({EVERYONE}, settings_)[LimitName.MAX_HELD].value == 10


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        (LimitName.MAX_HELD, "96GB", 96 * 1024),
        (LimitName.MAX_GBH, "300", 300 * MIB_SECONDS_PER_GBH),
        (LimitName.MAX_GBH, "1.5GB·h", 3 * MIB_SECONDS_PER_GBH // 2),
        (LimitName.MAX_OPEN, "4", 4),
        (LimitName.MAX_EXTENSION, "8h", 8 * 3600),
        (LimitName.MAX_ADVANCE, "none", None),
    ],
)
def test_values_read_in_base_units(name: LimitName, text: str, value: int | None) -> None:
    assert parse_value(name, text) == value


@pytest.mark.parametrize(
    ("name", "text"),
    [(LimitName.MAX_HELD, "50%"), (LimitName.MAX_OPEN, "-1"), (LimitName.MAX_GBH, "lots")],
)
def test_values_that_do_not_read_are_refused(name: LimitName, text: str) -> None:
    with pytest.raises(InputError):
        parse_value(name, text)
