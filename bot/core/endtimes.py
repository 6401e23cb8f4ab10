"""When a booking ends, read from its start: the one rule behind `until …` in Slack and the
command line's `--end`.

An end is read like a start, except that its "next occurrence" forms look from the start, not
from now: with a start tomorrow at 09:00, `until 17:00` is tomorrow at 17:00, and `22:00 until
02:00` ends at 02:00 the next morning. Such a bare clock time names no day, so when it wraps past
midnight into a booking longer than :data:`MAX_WRAP` it is far more likely a slip
(`14:00 until 13:00`) than a wish for 23 hours: that is refused, with the end written so that it
means exactly that long booking should it be wanted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote, Span, When
from bot.core.timeparse import Reading, read_when, split_when

#: The longest booking a bare clock end may make by wrapping into the next day (overnight runs
#: such as `22:00 until 06:00` are 8 hours).
MAX_WRAP = timedelta(hours=12)


def read_end(text: str, *, start: datetime, now: datetime, tz: ZoneInfo) -> Reading:
    """The end ``text`` names for a booking from ``start`` (a whole argument: `--end`)."""
    reading = read_when(text, now=now, tz=tz, field="end", after=start)
    return _checked(reading, " ".join(text.lower().split()), start, now, tz)


def split_end(
    tokens: list[str], *, start: datetime, now: datetime, tz: ZoneInfo
) -> tuple[Reading, int]:
    """The end at the front of a command's words (`until 17:00 eval run`), and the words used."""
    reading, used = split_when(tokens, now=now, tz=tz, field="end", after=start)
    return _checked(reading, " ".join(tokens[:used]).lower(), start, now, tz), used


def _checked(reading: Reading, typed: str, start: datetime, now: datetime, tz: ZoneInfo) -> Reading:
    if reading.at <= start:
        raise InputError(Code.END_NOT_AFTER_START, field="end", typed=Quote(typed))
    length = reading.at - start
    wrapped = reading.at.astimezone(tz).date() > start.astimezone(tz).date()
    if reading.clock_only and wrapped and length > MAX_WRAP:
        raise InputError(
            Code.END_WRAPS_LONG,
            field="end",
            typed=Quote(typed),
            start=When(start),
            length=Span(length),
            explicit=Quote(_with_its_day(reading.at, typed, start, now, tz)),
        )
    return reading


def _with_its_day(end: datetime, clock: str, start: datetime, now: datetime, tz: ZoneInfo) -> str:
    """``clock`` with the day of ``end`` written out: `tomorrow 13:00` when that reads back as
    ``end``, else `2026-12-02 13:00` (a date and a clock time always read literally)."""
    tomorrow = f"tomorrow {clock}"
    if read_when(tomorrow, now=now, tz=tz, field="end", after=start).at == end:
        return tomorrow
    return f"{end.astimezone(tz).date().isoformat()} {clock}"
