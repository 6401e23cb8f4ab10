"""The `book` grammar: `book <gpu|any> <size> <start> for <duration>|until <end> [task…]`.

It is forgiving on purpose: when parts are missing it returns a :class:`Book` naming them in
``missing`` so the caller can open a pre-filled form instead of refusing. Parts that are present
but malformed are refused with an :class:`~bot.core.errors.InputError` saying what to type.

A second time phrase is refused rather than read as the task: two starts (`now 14:00`), two
lengths (`for 2h until 5pm`, `for 2h for 3h`), or a start after the length. Only the words right
after the start and right after the length are looked at, because that is where the grammar can
tell: further into the task, `train for paper until done` is prose and stays the task's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.endtimes import split_end
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.timeparse import Reading, split_when
from handlers.commands.series_grammar import parse_series, repeats
from handlers.commands.syntax import OVERRIDE, Book, BookSeries
from handlers.commands.words import plain_text, size_words, split_duration, validate_size

_PERIOD_WORDS = ("for", "until")


@dataclass(frozen=True)
class _Start:
    """The start as read, and as typed (a refusal that names two starts quotes it)."""

    reading: Reading
    typed: str


@dataclass
class _Cursor:
    """The words not read yet, so each part of `book` can take what it needs from the front."""

    words: list[str]

    def peek(self) -> str | None:
        return self.words[0].lower() if self.words else None

    def take(self, count: int) -> list[str]:
        taken, self.words = self.words[:count], self.words[count:]
        return taken


def parse_book(args: list[str], now: datetime, tz: ZoneInfo) -> Book | BookSeries:
    cursor = _Cursor(list(args))
    override = cursor.peek() == OVERRIDE
    cursor.take(1 if override else 0)
    missing: list[str] = []
    gpu = _book_gpu(cursor, missing, now, tz)
    size_text = _book_size(cursor, missing, now, tz)
    if repeats(cursor.words):
        return parse_series(cursor.words, gpu, size_text, missing, now, tz)
    start = _book_start(cursor, missing, now, tz)
    end, duration = _book_period(cursor, missing, start, now, tz)
    task = plain_text(" ".join(cursor.words)) or None
    if task is None:
        missing.append("task")
    notes = (start.reading.notes if start else ()) + (end.notes if end else ())
    return Book(
        gpu,
        size_text,
        start.reading.at if start else None,
        end.at if end else None,
        duration,
        task,
        tuple(missing),
        notes,
        override,
    )


def _book_gpu(cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo) -> str | None:
    """The first word names the GPU unless it is already the size, the start or `for`/`until`."""
    first = cursor.peek()
    if (
        first is None
        or first in _PERIOD_WORDS
        or _size_at(cursor.words)
        or _starts_with_time(cursor.words, now, tz)
    ):
        missing.append("gpu")
        return None
    cursor.take(1)
    return None if first == "any" else first


def _book_size(cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo) -> str | None:
    """Take the size; when the words are a start time instead, the size is just missing."""
    first = cursor.peek()
    if first is None or first in _PERIOD_WORDS:
        missing.append("size")
        return None
    text, used = size_words(cursor.words)
    try:
        validate_size(text)
    except InputError:
        if not _starts_with_time(cursor.words, now, tz):
            raise
        missing.append("size")
        return None
    cursor.take(used)
    return text


def _book_start(cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo) -> _Start | None:
    first = cursor.peek()
    if first is None or first in _PERIOD_WORDS:
        missing.append("start")
        return None
    reading, used = split_when(cursor.words, now=now, tz=tz)
    start = _Start(reading, " ".join(cursor.take(used)))
    second = _time_phrase_at(cursor.words, now, tz)
    if second is not None and cursor.peek() not in _PERIOD_WORDS:
        raise InputError(
            Code.BOOK_TWO_STARTS, field="start", first=Quote(start.typed), second=Quote(second)
        )
    return start


def _book_period(
    cursor: _Cursor, missing: list[str], start: _Start | None, now: datetime, tz: ZoneInfo
) -> tuple[Reading | None, timedelta | None]:
    """`for <duration>` or `until <end>` → (end, duration); nothing there → missing duration."""
    keyword = cursor.peek()
    if keyword in _PERIOD_WORDS and len(cursor.words) == 1:
        cursor.take(1)
    if not cursor.words:
        missing.append("duration")
        return None, None
    if keyword not in _PERIOD_WORDS:
        raise InputError(Code.BOOK_PERIOD_EXPECTED, field="duration")
    end: Reading | None = None
    duration: timedelta | None = None
    if keyword == "for":
        duration, used = split_duration(cursor.words[1:])
    elif start is None:
        end, used = split_when(cursor.words[1:], now=now, tz=tz, field="end")
    else:
        end, used = split_end(cursor.words[1:], start=start.reading.at, now=now, tz=tz)
    period = " ".join(cursor.take(used + 1))
    _refuse_a_later_time(cursor.words, period, start, now, tz)
    return end, duration


def _refuse_a_later_time(
    words: list[str], period: str, start: _Start | None, now: datetime, tz: ZoneInfo
) -> None:
    """The task may not begin with another length, or with a start (a second one, or the only
    one written after the length)."""
    second = _time_phrase_at(words, now, tz)
    if second is None:
        return
    if words[0].lower() in _PERIOD_WORDS:
        raise InputError(
            Code.BOOK_TWO_PERIODS, field="duration", first=Quote(period), second=Quote(second)
        )
    if start is not None:
        raise InputError(
            Code.BOOK_TWO_STARTS, field="start", first=Quote(start.typed), second=Quote(second)
        )
    raise InputError(Code.BOOK_START_AFTER_PERIOD, field="start", fixed=Quote(f"{second} {period}"))


def _time_phrase_at(words: list[str], now: datetime, tz: ZoneInfo) -> str | None:
    """The words of the time phrase at the front (`for 2h`, `until 5pm`, `tomorrow 9am`), if any."""
    keyword = words[0].lower() if words else None
    try:
        if keyword == "for" and len(words) > 1:
            used = 1 + split_duration(words[1:])[1]
        elif keyword == "until" and len(words) > 1:
            used = 1 + split_when(words[1:], now=now, tz=tz)[1]
        else:
            used = split_when(words, now=now, tz=tz)[1]
    except InputError:
        return None
    return " ".join(words[:used])


def _size_at(words: list[str]) -> tuple[str, int] | None:
    """A syntactically valid size at the front, or ``None``."""
    if not words:
        return None
    text, used = size_words(words)
    try:
        validate_size(text)
    except InputError:
        return None
    return text, used


def _starts_with_time(words: list[str], now: datetime, tz: ZoneInfo) -> bool:
    try:
        split_when(words, now=now, tz=tz)
    except InputError:
        return False
    return True
