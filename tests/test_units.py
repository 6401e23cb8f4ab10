"""Sizes and durations: exact integer MiB, whole-second durations, and refusals that help."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.formats import SizeUnit, format_duration, format_size, size_unit
from bot.core.units import MAX_DURATION, MAX_MIB, parse_duration, parse_size
from tests.conftest import said


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("20GB", 20480),
        ("20G", 20480),
        ("20GiB", 20480),
        ("20gb", 20480),
        ("20 GB", 20480),
        ("  20GB  ", 20480),
        ("20480MiB", 20480),
        ("20480M", 20480),
        ("512MB", 512),
        ("512 mib", 512),
        ("1.5TB", 1572864),
        ("1T", 1048576),
        ("1TiB", 1048576),
        ("7.5GB", 7680),
        ("8.1GB", 8294),  # 8294.4 rounds down
        ("7.9GB", 8090),  # 8089.6 rounds up
        ("1.5MiB", 2),  # half-even: 1.5 -> 2
        ("2.5MiB", 2),  # half-even: 2.5 -> 2
        ("16TB", MAX_MIB),
    ],
)
def test_parse_size_accepts_common_forms(text: str, mib: int) -> None:
    assert parse_size(text) == mib


def test_decimal_sizes_add_up_exactly() -> None:
    """The reason for Decimal: three decimal sizes that sum to 24 GB must fill a 24 GB card."""
    parts = [parse_size("8.1GB"), parse_size("7.9GB"), parse_size("8.0GB")]
    assert parts == [8294, 8090, 8192]
    assert sum(parts) == parse_size("24GB") == 24576


@pytest.mark.parametrize(
    ("text", "capacity", "mib"),
    [("50%", 81920, 40960), ("100%", 24576, 24576), ("12.5%", 81920, 10240), ("33%", 1000, 330)],
)
def test_percent_is_of_capacity(text: str, capacity: int, mib: int) -> None:
    assert parse_size(text, capacity_mib=capacity) == mib


def _size_error(text: str, capacity: int | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_size(text, capacity_mib=capacity)
    assert caught.value.field == "memory"
    return caught.value


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "Give the memory"),
        ("20", "with a unit"),
        ("0GB", "at least 1 MiB"),
        ("0.0001GB", "at least 1 MiB"),
        ("-5GB", "must be positive"),
        ("abc", "can't read `abc`"),
        ("GB", "can't read"),
        ("1e9GB", "without an exponent"),
        ("1.5e3MiB", "without an exponent"),
        ("17TB", "at most `16TB`"),
        ("99999999999999999999999999999999999GB", "at most `16TB`"),
        ("20kb", "unit `kb`"),
        ("20 GB GB", "can't read"),
        ("1,5GB", "can't read"),
        ("50%", "percentage needs a GPU"),
    ],
)
def test_parse_size_refusals_say_what_to_type(text: str, phrase: str) -> None:
    error = _size_error(text)
    assert phrase in said(error)
    assert "`" in said(error)  # every refusal shows an example to type


def test_percent_over_100_is_refused() -> None:
    assert "at most `100%`" in said(_size_error("150%", capacity=81920))


def test_percent_that_rounds_to_nothing_is_refused() -> None:
    assert "at least 1 MiB" in said(_size_error("0.01%", capacity=1024))


def test_non_ascii_digits_are_refused() -> None:
    _size_error("٢٠GB")


@pytest.mark.parametrize(
    ("mib", "text"),
    [
        (0, "0 GB"),
        (512, "512 MiB"),
        (1023, "1023 MiB"),
        (1024, "1 GB"),
        (24576, "24 GB"),
        (7680, "7.5 GB"),
        (23962, "23.4 GB"),
        (8294, "8.1 GB"),
        (1048576, "1024 GB"),
        (1075, "1 GB"),  # 1.0498 GB: one decimal, trailing .0 dropped
    ],
)
def test_format_size(mib: int, text: str) -> None:
    assert format_size(mib) == text


@pytest.mark.parametrize(
    ("mibs", "unit", "texts"),
    [
        ((0, 24576), SizeUnit.GB, ["0 GB", "24 GB"]),  # nothing free beside a card: "0 GB"
        ((512, 24576), SizeUnit.GB, ["0.5 GB", "24 GB"]),
        ((0, 512), SizeUnit.MIB, ["0 MiB", "512 MiB"]),  # all below a gigabyte
        ((1, 24575, 24576), SizeUnit.MIB, ["1 MiB", "24575 MiB", "24576 MiB"]),  # 1 MiB ≠ 0 GB
        ((), SizeUnit.GB, []),
    ],
)
def test_sizes_shown_together_share_one_unit(
    mibs: tuple[int, ...], unit: SizeUnit, texts: list[str]
) -> None:
    assert size_unit(*mibs) is unit
    assert [format_size(mib, unit) for mib in mibs] == texts


@given(st.integers(min_value=1, max_value=MAX_MIB // 1024))
def test_whole_gb_round_trip(gb: int) -> None:
    assert parse_size(format_size(gb * 1024)) == gb * 1024


@given(st.integers(min_value=10, max_value=100_000))
def test_tenths_of_gb_round_trip_through_text(tenths: int) -> None:
    typed = f"{tenths // 10}.{tenths % 10}GB"
    shown = format_size(parse_size(typed))
    assert parse_size(shown.replace(" ", "")) == parse_size(typed)


@pytest.mark.parametrize(
    ("mib", "shown"),
    [(256, "0.2 GB"), (768, "0.8 GB"), (1792, "1.8 GB"), (1331, "1.3 GB"), (1332, "1.3 GB")],
)
def test_a_size_halfway_between_tenths_rounds_to_the_even_one(mib: int, shown: str) -> None:
    """256 MiB is exactly 0.25 GB (ties go to the even tenth); 1331.2 MiB is 1.3 GB."""
    assert format_size(mib, SizeUnit.GB) == shown


@given(st.integers(min_value=0, max_value=MAX_MIB))
def test_tenths_of_gb_are_the_exact_decimal_rounding(mib: int) -> None:
    exact = (Decimal(mib) * 10 / 1024).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    whole, fraction = divmod(int(exact), 10)
    assert format_size(mib, SizeUnit.GB) == (
        f"{whole}.{fraction} GB" if fraction else f"{whole} GB"
    )


@given(st.integers(min_value=1, max_value=MAX_MIB))
def test_any_mib_count_reads_back_exactly(mib: int) -> None:
    assert parse_size(f"{mib}MiB") == mib


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("90min", timedelta(minutes=90)),
        ("90 minutes", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("2h30", timedelta(hours=2, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("3 hours", timedelta(hours=3)),
        ("1 hr", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("2days", timedelta(days=2)),
        ("1 day", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("2 weeks", timedelta(weeks=2)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5s", timedelta(seconds=2)),  # half-even to whole seconds
        ("366d", MAX_DURATION),
    ],
)
def test_parse_duration_accepts_common_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "Give a duration"),
        ("0m", "longer than zero"),
        ("0.1s", "longer than zero"),
        ("-5m", "must be positive"),
        ("abc", "can't read `abc`"),
        ("90", "with a unit"),
        ("367d", "at most `366d`"),
        ("53w", "at most `366d`"),
        ("9999999999999999999999999w", "at most `366d`"),
        ("1h 1h", "each unit once"),
        ("30m 1h", "each unit once"),
        ("2h 30", "can't read"),  # a spaced bare number is not implied minutes
        ("30m15", "can't read"),  # only hours imply the next unit
        ("1x", "unit `x`"),
        ("1h and 30m", "can't read"),
    ],
)
def test_parse_duration_refusals_say_what_to_type(text: str, phrase: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_duration(text)
    assert caught.value.field == "duration"
    assert phrase in said(caught.value)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h 30m"),
        (timedelta(days=2, hours=3), "2d 3h"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(weeks=1), "7d"),
        (timedelta(days=1, seconds=1), "1d 1s"),
        (timedelta(0), "0s"),
        (timedelta(minutes=1, microseconds=999), "1m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=1, max_value=MAX_DURATION // timedelta(seconds=1)))
def test_duration_round_trip_whole_seconds(seconds: int) -> None:
    td = timedelta(seconds=seconds)
    assert parse_duration(format_duration(td)) == td


@given(st.integers(min_value=1, max_value=MAX_DURATION // timedelta(minutes=1)))
def test_duration_round_trip_whole_minutes(minutes: int) -> None:
    td = timedelta(minutes=minutes)
    assert parse_duration(format_duration(td)) == td
