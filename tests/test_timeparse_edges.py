"""The edges of reading times (issue 9): DST days said out loud, an end read from its start,
`next <weekday>`, typos answered with the form meant, and zone names over a DST change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.endtimes import MAX_WRAP, read_end
from bot.core.errors import InputError
from bot.core.timefmt import zone_labels
from bot.core.timeparse import parse_day, read_when, split_when
from bot.core.wording import Surface, render
from tests.conftest import said

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Friday 2026-03-27, 14:00 in Berlin (CET). Berlin skips 02:00–03:00 on Sunday 2026-03-29.
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def plain(reading_notes: tuple) -> str:
    return render(reading_notes, Surface(BERLIN, NOW))


class TestDaylightSavingIsSaid:
    def test_a_start_in_the_gap_is_moved_and_said(self) -> None:
        reading = read_when("2027-03-28 02:30", now=NOW, tz=BERLIN)
        assert reading.at == utc(2027, 3, 28, 1, 30)  # 03:30 CEST
        assert plain(reading.notes) == (
            "02:30 does not exist on Sun 28 Mar 2027 in Europe/Berlin (the clocks go forward), "
            "so it was read as 03:30 CEST."
        )

    def test_a_repeated_time_is_the_first_and_says_how_to_ask_for_the_second(self) -> None:
        reading = read_when("2026-10-25 02:30", now=NOW, tz=BERLIN)
        assert reading.at == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first
        text = plain(reading.notes)
        assert text.startswith("02:30 happens twice on Sun 25 Oct 2026 in Europe/Berlin")
        assert "read as the first, 02:30 CEST" in text
        later = text.rsplit("write ", 1)[1].rstrip(".").strip("'")
        assert later == "2026-10-25 02:30+01:00"
        assert read_when(later, now=NOW, tz=BERLIN).at == utc(2026, 10, 25, 1, 30)

    @pytest.mark.parametrize("text", ["2026-07-01 02:30", "tomorrow 9am", "now", "in 2h"])
    def test_ordinary_times_carry_no_note(self, text: str) -> None:
        assert read_when(text, now=NOW, tz=BERLIN).notes == ()

    def test_an_explicit_offset_needs_no_note(self) -> None:
        assert read_when("2026-10-25T02:30+01:00", now=NOW, tz=BERLIN).notes == ()


class TestEndsAreReadFromTheStart:
    START = utc(2026, 11, 30, 13, 0)  # Monday 14:00 CET, some days ahead

    def end(self, text: str, start: datetime | None = None) -> datetime:
        return read_end(text, start=start or self.START, now=NOW, tz=BERLIN).at

    def test_a_bare_time_is_the_first_after_the_start_not_after_now(self) -> None:
        assert self.end("17:00") == utc(2026, 11, 30, 16, 0)

    def test_an_overnight_end_keeps_working(self) -> None:
        evening = utc(2026, 11, 30, 21, 0)  # 22:00 CET
        assert self.end("02:00", evening) == utc(2026, 12, 1, 1, 0)

    def test_a_weekday_is_the_next_one_after_the_start(self) -> None:
        assert self.end("wed 10:00") == utc(2026, 12, 2, 9, 0)

    def test_a_named_day_is_literal(self) -> None:
        assert self.end("2026-12-02 13:00") == utc(2026, 12, 2, 12, 0)
        with pytest.raises(InputError) as caught:
            self.end("tomorrow 13:00")  # Saturday 28 March: before the start
        assert "not after the start" in said(caught.value)

    def test_a_wrap_up_to_twelve_hours_is_fine_and_a_longer_one_is_refused(self) -> None:
        evening = utc(2026, 11, 30, 19, 0)  # 20:00 CET
        assert self.end("08:00", evening) - evening == MAX_WRAP
        with pytest.raises(InputError) as caught:
            self.end("08:01", evening)
        assert caught.value.field == "end"
        assert "12h 1m" in said(caught.value)

    def test_a_long_day_without_a_wrap_is_not_refused(self) -> None:
        early = utc(2026, 11, 30, 0, 0)  # 01:00 CET
        assert self.end("14:00", early) - early == timedelta(hours=13)

    def test_the_wrap_refusal_says_what_it_read_and_a_form_that_books_it(self) -> None:
        with pytest.raises(InputError) as caught:
            self.end("13:00")
        text = said(caught.value, NOW)
        assert text.startswith("`13:00` is earlier in the day than the start (Mon 30 Nov 13:00")
        assert "end at `13:00` the next day and last 23h" in text
        assert "like `2026-12-01 13:00`" in text
        assert self.end("2026-12-01 13:00") == self.START + timedelta(hours=23)

    def test_the_suggestion_is_tomorrow_when_that_reads_back(self) -> None:
        with pytest.raises(InputError) as caught:
            self.end("1pm", NOW)
        assert "like `tomorrow 1pm`" in said(caught.value, NOW)
        assert self.end("tomorrow 1pm", NOW) == NOW + timedelta(hours=23)

    def test_split_end_reads_from_the_front(self) -> None:
        tokens = ["17:00", "eval", "run"]
        reading, used = split_when(tokens, now=NOW, tz=BERLIN, field="end", after=self.START)
        assert (reading.at, used, reading.clock_only) == (utc(2026, 11, 30, 16, 0), 1, True)


class TestNextWeekday:
    """`next fri` is the Friday of next week (Monday to Sunday), never the coming one."""

    @pytest.mark.parametrize(
        ("now", "text", "expected"),
        [
            (NOW, "next mon 9am", utc(2026, 3, 30, 7, 0)),  # Friday: next week's Monday
            (NOW, "next fri 9am", utc(2026, 4, 3, 7, 0)),  # not today
            (NOW, "next monday at 9am", utc(2026, 3, 30, 7, 0)),
            (utc(2026, 3, 23, 8, 0), "next fri 9am", utc(2026, 4, 3, 7, 0)),  # Monday: not 27th
            (utc(2026, 3, 23, 8, 0), "fri 9am", utc(2026, 3, 27, 8, 0)),
        ],
    )
    def test_next_weekday_is_in_the_following_week(
        self, now: datetime, text: str, expected: datetime
    ) -> None:
        assert read_when(text, now=now, tz=BERLIN).at == expected

    def test_four_words_fit_in_a_command(self) -> None:
        reading, used = split_when(["next", "monday", "at", "9am", "for"], now=NOW, tz=BERLIN)
        assert (reading.at, used) == (utc(2026, 3, 30, 7, 0), 4)

    @pytest.mark.parametrize(
        ("text", "expected"), [("next mon", date(2026, 3, 30)), ("Next Friday", date(2026, 4, 3))]
    )
    def test_next_weekday_as_a_day(self, text: str, expected: date) -> None:
        assert parse_day(text, now=NOW, tz=BERLIN) == expected

    @pytest.mark.parametrize("text", ["next week 9am", "next 9am", "next"])
    def test_next_needs_a_weekday(self, text: str) -> None:
        with pytest.raises(InputError) as caught:
            read_when(text, now=NOW, tz=BERLIN)
        assert said(caught.value).startswith("After `next`, name a weekday")

    def test_next_without_a_time_asks_for_one(self) -> None:
        with pytest.raises(InputError) as caught:
            read_when("next fri", now=NOW, tz=BERLIN)
        assert "Add a time to `next fri`, like `next fri 9am`" in said(caught.value)


class TestTypos:
    @pytest.mark.parametrize(
        ("tokens", "suggestion"),
        [
            (["tomorow", "9am", "for", "2h"], "`tomorrow 9am`"),
            (["tomorow", "for", "2h"], "`tomorrow`"),
            (["thurday", "14:00"], "`thursday 14:00`"),
            (["next", "mnday", "9am"], "`next monday 9am`"),
            (["tommorrow", "at", "noon"], "`tomorrow at noon`"),
        ],
    )
    def test_a_near_time_word_is_suggested(self, tokens: list[str], suggestion: str) -> None:
        with pytest.raises(InputError) as caught:
            split_when(tokens, now=NOW, tz=BERLIN)
        assert said(caught.value).endswith(f"Did you mean {suggestion}?")
        assert caught.value.field == "start"

    @pytest.mark.parametrize("text", ["xyz 9am", "soon", "tomorrow soon"])
    def test_no_suggestion_without_a_near_miss_that_reads(self, text: str) -> None:
        with pytest.raises(InputError) as caught:
            read_when(text, now=NOW, tz=BERLIN)
        assert "Did you mean" not in said(caught.value)

    def test_a_near_day_is_suggested(self) -> None:
        with pytest.raises(InputError) as caught:
            parse_day("tomorow", now=NOW, tz=BERLIN)
        assert said(caught.value) == "I can't read `tomorow` as a day. Did you mean `tomorrow`?"
        assert caught.value.field == "day"


class TestZoneLabels:
    def test_one_name_on_an_ordinary_day(self) -> None:
        assert zone_labels(BERLIN, utc(2026, 1, 4, 23), utc(2026, 1, 5, 23)) == ["CET"]

    def test_both_names_over_a_change_in_order(self) -> None:
        assert zone_labels(BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)) == ["CET", "CEST"]
        assert zone_labels(NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)) == ["EDT", "EST"]
