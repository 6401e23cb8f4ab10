"""The repeating `book`: `book <gpu> <size> <repeat> <clock> for <duration>|until <clock> <end> [task…]`.

- ``<repeat>``: `daily` or `every day`; `weekdays` or `every weekday` (Monday to Friday);
  `every mon,wed` (day names as in times, separated by commas).
- ``<clock>``: the time of day each occurrence starts, in the asker's zone (`09:00`, `9am`).
- `for <duration>` lasts that long (real time); `until <clock>` ends at that time of day, the
  next day when it is not after the start (`22:00 until 06:00` runs overnight).
- ``<end>``, required (a series without one is refused): `until <day>` (the last day an
  occurrence may start, included: `until 2027-03-01`, `until fri`), `for <n> weeks` or `<n> times`.

The first occurrence is the first of the days whose start is still ahead. A series is read here
into a :class:`~bot.core.recurrence.Recurrence`; the service expands and checks it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.recurrence import EVERY_DAY, WEEKDAYS, Recurrence, first_day
from bot.core.sentence import Quote
from bot.core.timeparse import WEEKDAYS as DAY_WORDS
from bot.core.timeparse import clock_time, parse_day
from handlers.commands.syntax import BookSeries
from handlers.commands.words import plain_text, split_duration

_REPEAT_WORDS = ("daily", "weekdays", "every")
_WEEKS = re.compile(r"([0-9]{1,3})(?:w|wk|wks|week|weeks)?")
_WEEK_WORDS = frozenset({"w", "wk", "wks", "week", "weeks"})
_TIMES_WORDS = frozenset({"times", "x"})


def repeats(words: list[str]) -> bool:
    """Whether the words after the size start a repeat (`weekdays`, `every mon,wed`, `daily`)."""
    return bool(words) and words[0].lower() in _REPEAT_WORDS


def parse_series(
    words: list[str],
    gpu: str | None,
    size_text: str | None,
    missing: list[str],
    now: datetime,
    tz: ZoneInfo,
) -> BookSeries:
    """The repeating form of `book`, from the repeat word on (``missing``: what `book` lacked)."""
    if missing or size_text is None:
        raise InputError(Code.SERIES_USAGE, field=missing[0] if missing else "size")
    rest = list(words)
    repeat, days = _days(rest)
    start = _clock(rest, repeat)
    length, end = _period(rest, repeat)
    first = first_day(days, start, tz, now)
    last_day, count = _series_end(rest, first, now, tz)
    rule = Recurrence(days, start, tz.key, first, length, end, last_day, count)
    return BookSeries(gpu, size_text, rule, plain_text(" ".join(rest)))


def _days(words: list[str]) -> tuple[str, frozenset[int]]:
    """Take the repeat words; the repeat as typed and its weekdays (0 is Monday)."""
    first = words.pop(0).lower()
    if first == "daily":
        return first, EVERY_DAY
    if first == "weekdays":
        return first, WEEKDAYS
    if not words:
        raise InputError(Code.SERIES_DAYS, field="repeat", typed=Quote(first))
    typed = words.pop(0).lower()
    while typed.endswith(",") and words:
        typed += words.pop(0).lower()
    if typed == "day":
        return f"every {typed}", EVERY_DAY
    if typed == "weekday":
        return f"every {typed}", WEEKDAYS
    names = [name for name in typed.split(",") if name]
    if not names or any(name not in DAY_WORDS for name in names):
        raise InputError(Code.SERIES_DAYS, field="repeat", typed=Quote(f"every {typed}"))
    return f"every {typed}", frozenset(DAY_WORDS[name] for name in names)


def _clock(words: list[str], repeat: str) -> time:
    """Take the time of day (`09:00`, `9:30 am`)."""
    for used in (2, 1):
        if len(words) >= used:
            found = clock_time(" ".join(words[:used]))
            if found is not None:
                del words[:used]
                return found
    raise InputError(Code.SERIES_CLOCK, field="start", repeat=Quote(repeat))


def _period(words: list[str], repeat: str) -> tuple[timedelta | None, time | None]:
    """Take `for <duration>` or `until <clock>`: (length, end clock)."""
    keyword = words[0].lower() if words else None
    if keyword == "for" and len(words) > 1:
        length, used = split_duration(words[1:])
        del words[: used + 1]
        return length, None
    if keyword == "until" and len(words) > 1:
        for used in (2, 1):
            found = clock_time(" ".join(words[1 : used + 1])) if len(words) > used else None
            if found is not None:
                del words[: used + 1]
                return None, found
    raise InputError(Code.SERIES_CLOCK, field="duration", repeat=Quote(repeat))


def _series_end(
    words: list[str], first: date, now: datetime, tz: ZoneInfo
) -> tuple[date | None, int | None]:
    """Take the series' end: (last day, None) or (None, count)."""
    keyword = words[0].lower() if words else None
    if keyword == "until" and len(words) > 1:
        for used in (2, 1):
            if len(words) > used:
                try:
                    last = parse_day(" ".join(words[1 : used + 1]), now=now, tz=tz)
                except InputError:
                    if used == 1:
                        raise
                    continue
                del words[: used + 1]
                if last < first:
                    raise InputError(
                        Code.SERIES_END_BEFORE_START,
                        field="repeat",
                        last=_day(last),
                        first=_day(first),
                    )
                return last, None
    if keyword == "for" and len(words) > 1:
        weeks, used = _number(words[1:], _WEEK_WORDS)
        del words[: used + 1]
        return first + timedelta(weeks=weeks, days=-1), None
    if len(words) > 1 and words[1].lower() in _TIMES_WORDS:
        count, used = _number(words, _TIMES_WORDS)
        del words[:used]
        return None, count
    raise InputError(Code.SERIES_END_MISSING, field="repeat")


def _number(words: list[str], units: frozenset[str]) -> tuple[int, int]:
    """`4 weeks` / `4w` / `10 times` at the front: the whole number from 1, and the words used."""
    match = _WEEKS.fullmatch(words[0].lower()) if units is _WEEK_WORDS else None
    if match is not None and words[0][-1:].isalpha():
        value, used = int(match[1]), 1
    elif words[0].isdigit() and len(words) > 1 and words[1].lower() in units:
        value, used = int(words[0]), 2
    else:
        raise InputError(Code.SERIES_WEEKS, field="repeat")
    if value < 1:
        raise InputError(Code.SERIES_WEEKS, field="repeat")
    return value, used


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"
