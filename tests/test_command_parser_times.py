"""Issue 9 in the `/gpubook` grammar: `until` before the start, a second time phrase, DST notes
on a booking, typos of verbs and days, and `next <weekday>` / `next week`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import InputError
from bot.core.phrases import Code
from handlers.command_parser import parse_command
from handlers.commands.syntax import Book, Calendar
from tests.conftest import said

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)  # Friday 14:00 in Berlin


def parse(text: str, now: datetime = NOW):
    return parse_command(text, now=now, tz=BERLIN)


def refusal(text: str, now: datetime = NOW) -> InputError:
    with pytest.raises(InputError) as caught:
        parse(text, now)
    return caught.value


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestUntilBeforeTheStart:
    def test_the_reported_command_is_refused_saying_what_was_understood(self) -> None:
        error = refusal("book a100-2 1GB tomorrow 14:00 until 13:00 x")
        assert error.field == "end"
        text = said(error, NOW)
        assert "`13:00` is earlier in the day than the start" in text
        assert "end at `13:00` the next day and last 22h" in text  # Sunday is 23 h long
        assert "like `2026-03-29 13:00`" in text

    def test_the_suggested_end_parses_and_books_that_long_booking(self) -> None:
        booked = parse("book a100-2 1GB tomorrow 14:00 until 2026-03-29 13:00 x")
        assert (booked.missing, booked.end - booked.start) == ((), timedelta(hours=22))

    def test_from_now_the_suggestion_is_tomorrow(self) -> None:
        assert "like `tomorrow 13:00`" in said(refusal("book a 1GB now until 13:00 x"), NOW)
        booked = parse("book a 1GB now until tomorrow 13:00 x")
        assert booked.end - booked.start == timedelta(hours=23)

    def test_overnight_keeps_working(self) -> None:
        booked = parse("book a 1GB 22:00 until 02:00 x")
        assert (booked.start, booked.end) == (utc(2026, 3, 27, 21, 0), utc(2026, 3, 28, 1, 0))


class TestASecondTimePhraseIsRefused:
    @pytest.mark.parametrize(
        ("text", "field", "sentence"),
        [
            (
                "book a100-1 10GB now for 2h until 5pm both",
                "duration",
                "I read both `for 2h` and `until 5pm`.",
            ),
            ("book a 1GB now for 2h for 3h x", "duration", "I read both `for 2h` and `for 3h`."),
            (
                "book a 1GB now until 17:00 for 1h x",
                "duration",
                "I read both `until 17:00` and `for 1h`.",
            ),
            ("book a 1GB now 15:00 for 2h x", "start", "I read two starts, `now` and `15:00`."),
            (
                "book a 1GB tomorrow 9am for 2h mon 10:00 x",
                "start",
                "I read two starts, `tomorrow 9am` and `mon 10:00`.",
            ),
            (
                "book a 1GB for 2h tomorrow 9am x",
                "start",
                "Give the start before the length, like `tomorrow 9am for 2h`, then the task.",
            ),
        ],
    )
    def test_refused_with_both_phrases_named(self, text: str, field: str, sentence: str) -> None:
        error = refusal(text)
        assert error.field == field
        assert said(error).startswith(sentence)

    @pytest.mark.parametrize(
        ("text", "task"),
        [
            ("book a 1GB now for 3 hours train for paper until done", "train for paper until done"),
            ("book a 1GB now for 2h eval until 5pm", "eval until 5pm"),
            ("book a 1GB now for 2h for paper", "for paper"),
            ("book a 1GB now for 2h 3 models", "3 models"),
        ],
    )
    def test_grammar_words_later_in_the_task_are_prose(self, text: str, task: str) -> None:
        assert parse(text).task == task


class TestDaylightSavingNotes:
    def test_a_start_in_the_gap_carries_its_note(self) -> None:
        booked = parse("book a 1GB sun 2:30 for 1h x")
        assert booked.start == utc(2026, 3, 29, 1, 30)
        [note] = booked.notes
        assert note.code is Code.CLOCK_SKIPPED

    def test_an_end_in_the_gap_carries_its_note(self) -> None:
        booked = parse("book a 1GB sat 22:00 until 02:30 x")
        assert booked.end == utc(2026, 3, 29, 1, 30)
        assert [note.code for note in booked.notes] == [Code.CLOCK_SKIPPED]

    def test_an_ordinary_booking_has_none(self) -> None:
        assert parse("book a 1GB tomorrow 9am for 1h x").notes == ()


class TestTypos:
    @pytest.mark.parametrize(
        ("typed", "meant"),
        [
            ("bok a100-2 1GB now for 1h x", "book"),
            ("cancle 4", "cancel"),
            ("calender rtx-0", "calendar"),
            ("stauts", "status"),
            ("admin stat 30", "admin stats"),
            ("admin gpu ad a100-3 80GB", "admin gpu add"),
        ],
    )
    def test_a_near_verb_is_suggested(self, typed: str, meant: str) -> None:
        error = refusal(typed)
        assert error.field == "command"
        assert f"Did you mean `/gpubook {meant}`?" in said(error)

    def test_a_near_time_word_in_book_is_suggested(self) -> None:
        error = refusal("book a100-2 1GB tomorow 14:00 for 1h x")
        assert said(error) == (
            "I can't read `tomorow 14:00` as a time. Did you mean `tomorrow 14:00`?"
        )

    def test_a_near_day_in_calendar_is_suggested(self) -> None:
        error = refusal("calendar rtx-0 tomorow")
        assert said(error) == "I can't read `tomorow` as a day. Did you mean `tomorrow`?"


class TestNext:
    def test_book_next_monday(self) -> None:
        booked = parse("book a 1GB next monday 9am for 2h x")
        assert isinstance(booked, Book)
        assert booked.start == utc(2026, 3, 30, 7, 0)

    @pytest.mark.parametrize(
        ("text", "command"),
        [
            ("calendar next fri", Calendar(None, date(2026, 4, 3), False)),
            ("calendar rtx-0 next mon", Calendar("rtx-0", date(2026, 3, 30), False)),
            ("calendar next week", Calendar(None, date(2026, 3, 30), True)),
            ("calendar next week rtx-0", Calendar("rtx-0", date(2026, 3, 30), True)),
        ],
    )
    def test_calendar_next(self, text: str, command: Calendar) -> None:
        assert parse(text) == command

    @pytest.mark.parametrize("text", ["calendar rtx-0 next", "calendar next gpu"])
    def test_calendar_next_without_a_weekday(self, text: str) -> None:
        assert said(refusal(text)).startswith("After `next`, name a weekday")
