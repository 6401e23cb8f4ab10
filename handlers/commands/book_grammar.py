"""The `book` grammar: `book <gpu|any> <size> <start> for <duration>|until <end> [task…]`.

It is forgiving on purpose: when parts are missing it returns a :class:`Book` naming them in
``missing`` so the caller can open a pre-filled form instead of refusing. Parts that are present
but malformed are refused with an :class:`~bot.core.errors.InputError` saying what to type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.timeparse import split_when
from bot.core.units import parse_duration
from handlers.commands.syntax import Book
from handlers.commands.words import plain_text, size_words, validate_size

_PERIOD_WORDS = ("for", "until")


@dataclass
class _Cursor:
    """The words not read yet, so each part of `book` can take what it needs from the front."""

    words: list[str]

    def peek(self) -> str | None:
        return self.words[0].lower() if self.words else None

    def take(self, count: int) -> list[str]:
        taken, self.words = self.words[:count], self.words[count:]
        return taken


def parse_book(args: list[str], now: datetime, tz: ZoneInfo) -> Book:
    cursor = _Cursor(list(args))
    missing: list[str] = []
    gpu = _book_gpu(cursor, missing, now, tz)
    size_text = _book_size(cursor, missing, now, tz)
    start = _book_start(cursor, missing, now, tz)
    end, duration = _book_period(cursor, missing, start, now, tz)
    task = plain_text(" ".join(cursor.words)) or None
    if task is None:
        missing.append("task")
    return Book(gpu, size_text, start, end, duration, task, tuple(missing))


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


def _book_start(
    cursor: _Cursor, missing: list[str], now: datetime, tz: ZoneInfo
) -> datetime | None:
    first = cursor.peek()
    if first is None or first in _PERIOD_WORDS:
        missing.append("start")
        return None
    start, used = split_when(cursor.words, now=now, tz=tz)
    cursor.take(used)
    return start


def _book_period(
    cursor: _Cursor, missing: list[str], start: datetime | None, now: datetime, tz: ZoneInfo
) -> tuple[datetime | None, timedelta | None]:
    """`for <duration>` or `until <end>` → (end, duration); nothing there → missing duration."""
    keyword = cursor.peek()
    if keyword in _PERIOD_WORDS and len(cursor.words) == 1:
        cursor.take(1)
    if not cursor.words:
        missing.append("duration")
        return None, None
    if keyword not in _PERIOD_WORDS:
        raise InputError(Code.BOOK_PERIOD_EXPECTED, field="duration")
    cursor.take(1)
    if keyword == "for":
        duration, used = _split_duration(cursor.words)
        cursor.take(used)
        return None, duration
    end, used = _split_end(cursor.words, start, now, tz)
    cursor.take(used)
    return end, None


def _split_duration(words: list[str]) -> tuple[timedelta, int]:
    """The longest duration at the front (`3 hours fine-tune` → 3h, 2 words)."""
    errors: list[InputError] = []
    for count in range(min(3, len(words)), 0, -1):
        try:
            return parse_duration(" ".join(words[:count])), count
        except InputError as err:
            errors.append(err)
    raise errors[-1]


def _split_end(
    words: list[str], start: datetime | None, now: datetime, tz: ZoneInfo
) -> tuple[datetime, int]:
    """Read `until <end>`; a bare clock time means its next occurrence after the start.

    `tomorrow 9am until 17:00` must end tomorrow at 17:00, not today, so when the end read against
    ``now`` is not after the start it is read again against the start.
    """
    end, used = split_when(words, now=now, tz=tz, field="end")
    if start is None or end > start:
        return end, used
    end, used = split_when(words, now=start, tz=tz, field="end")
    if end <= start:
        raise InputError(Code.END_NOT_AFTER_START, field="end", typed=Quote(" ".join(words[:used])))
    return end, used


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
