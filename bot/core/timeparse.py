"""Times and days typed by users, read in the user's own time zone and returned in UTC.

People type `tomorrow 9am` or `friday 2pm` and mean their wall clock, so naive forms are read in
the caller's zone (with :mod:`zoneinfo`, so DST days come out right) and converted to aware UTC for
storage. The clock is injected as ``now`` so the same text always gives the same answer in tests
and so "next occurrence" rules are computed against one instant.

On DST days a wall time that happens twice (autumn) means the first one, and a wall time that does
not exist (spring gap) is read with the offset in force before the gap; this is ``fold=0``. The
reading then carries a note saying so (:mod:`bot.core.walltime`), for the confirmation to show.

A word that is nearly a time word (`tomorow 9am`) is refused with the reading it most likely
meant, when that reads (:mod:`bot.core.typos`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence
from bot.core.typos import nearest
from bot.core.units import parse_duration
from bot.core.walltime import localise

WEEKDAYS: dict[str, int] = {
    **dict.fromkeys(("mon", "monday"), 0),
    **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "wednesday"), 2),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4),
    **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}

_RELATIVE_DAYS: dict[str, int] = {"yesterday": -1, "today": 0, "tomorrow": 1}
_NAMED_TIMES: dict[str, time] = {"noon": time(12), "midnight": time(0)}
#: `next fri`: the Friday of next week (weeks run Monday to Sunday, as in the calendar's).
NEXT = "next"
#: Every word a time or a day is made of: what a typo is compared with.
TIME_WORDS = frozenset({*WEEKDAYS, *_RELATIVE_DAYS, *_NAMED_TIMES, NEXT, "now", "in", "at"})
#: The most words one time takes (`next monday at 9am`, `in 1h 30m 20s`).
_MAX_TIME_WORDS = 4

_CLOCK = re.compile(r"(?P<hour>[0-9]{1,2})(?::(?P<minute>[0-9]{2}))?\s*(?P<meridiem>am|pm)?")
_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")
_ISO_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[t ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?"
    r"(?P<offset>z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


@dataclass(frozen=True)
class Reading:
    """A time as read: the instant, and what the reader should know about the reading."""

    #: Aware UTC.
    at: datetime
    #: Sentences about the wall time (it does not exist, or happens twice, that day).
    notes: tuple[Sentence, ...] = ()
    #: A bare clock time (`17:00`): the text named no day, so the day was chosen for it.
    clock_only: bool = False


class _Unrecognised(InputError):
    """The text matches no time form at all (as opposed to a known form with a bad value).

    :func:`split_when` prefers the specific errors, which say what exactly was wrong.
    """


class _Misread(_Unrecognised):
    """No time form as typed, but one with a typo mended: the error suggests it."""


def parse_when(text: str, *, now: datetime, tz: ZoneInfo, field: str = "start") -> datetime:
    """:func:`read_when`'s instant, for callers with nothing to tell about the reading."""
    return read_when(text, now=now, tz=tz, field=field).at


def read_when(
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    field: str = "start",
    after: datetime | None = None,
    suggest: bool = True,
) -> Reading:
    """Read a start or end time typed by a user.

    ``field`` tags the error so a modal can show it under the right input (``"start"``/``"end"``).
    Explicit days are taken literally (`today 9am` may be in the past: the booking service, not the
    parser, decides whether that is allowed); a bare clock time or a weekday means its next
    occurrence from ``after`` (default: ``now``; an end looks from its start). ``suggest=False``
    skips looking for the near miss a refusal would name, for callers that drop the refusal.
    """
    _require_aware(now)
    cleaned = " ".join(text.lower().split())
    if not cleaned:
        raise InputError(Code.TIME_MISSING, field=field, what=field)
    now = now.astimezone(UTC)
    after = now if after is None else after.astimezone(UTC)
    try:
        return _read(cleaned, now, after, tz) if suggest else _read_exactly(cleaned, now, after, tz)
    except InputError as err:
        raise err.for_field(field) from None


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _read(cleaned: str, now: datetime, after: datetime, tz: ZoneInfo) -> Reading:
    """:func:`_read_exactly`, or the refusal that names the near miss it most likely meant."""
    try:
        return _read_exactly(cleaned, now, after, tz)
    except _Unrecognised:
        mended = _mend(cleaned)
        if mended is None or not _worth_suggesting(mended, now, after, tz):
            raise
        raise _Misread(
            Code.TIME_UNREADABLE_NEAR, typed=Quote(cleaned), suggestion=Quote(mended)
        ) from None


def _mend(cleaned: str) -> str | None:
    """The text with each unknown word replaced by the time word it nearly is; ``None`` when no
    word changed. Words with digits (`9am`, `14:00`) are left alone."""
    words = cleaned.split()
    mended = [
        word if any(c.isdigit() for c in word) else nearest(word, TIME_WORDS) or word
        for word in words
    ]
    return " ".join(mended) if mended != words else None


def _worth_suggesting(mended: str, now: datetime, after: datetime, tz: ZoneInfo) -> bool:
    """A mended text is suggested when it reads, or is a day alone that only lacks its time."""
    try:
        _read_exactly(mended, now, after, tz)
    except InputError as err:
        return err.code is Code.DAY_NEEDS_TIME and not _split_day(mended)[1]
    return True


def _read_exactly(cleaned: str, now: datetime, after: datetime, tz: ZoneInfo) -> Reading:
    if cleaned == "now":
        return Reading(now)
    if cleaned.startswith("in "):
        return Reading(now + parse_duration(cleaned.removeprefix("in ")))
    iso = _ISO_DATETIME.fullmatch(cleaned)
    if iso is not None:
        return _from_iso(iso, tz)
    words, rest = _split_day(cleaned)
    day = _day_from_words(words, now.astimezone(tz).date(), after.astimezone(tz).date())
    if day is not None:
        return _on_day(words, day, rest, after, tz)
    clock = _clock_time(cleaned)
    if clock is not None:
        today = after.astimezone(tz).date()
        reading = _next_occurrence(today, clock, after, tz, step=timedelta(days=1))
        return replace(reading, clock_only=True)
    raise _Unrecognised(Code.TIME_UNREADABLE, typed=Quote(cleaned))


def _split_day(cleaned: str) -> tuple[str, str]:
    """The words that may name a day (`tomorrow`, `next fri`) and the rest."""
    first, _, rest = cleaned.partition(" ")
    if first == NEXT:
        second, _, rest = rest.partition(" ")
        return f"{first} {second}".strip(), rest
    return first, rest


def _on_day(words: str, day: date, rest: str, after: datetime, tz: ZoneInfo) -> Reading:
    """Combine a day with the clock time after it (`tomorrow 9am`, `fri at 14:00`)."""
    clock = _clock_time(rest.removeprefix("at "))
    if clock is None:
        raise _Unrecognised(
            Code.DAY_NEEDS_TIME,
            typed=Quote(words),
            morning=Quote(f"{words} 9am"),
            afternoon=Quote(f"{words} 14:00"),
        )
    if words in WEEKDAYS:
        return _next_occurrence(day, clock, after, tz, step=timedelta(days=7))
    return _localise(day, clock, tz)


def _next_occurrence(
    first_day: date, clock: time, after: datetime, tz: ZoneInfo, *, step: timedelta
) -> Reading:
    """``clock`` on ``first_day``, or one ``step`` later if that moment is before ``after``.

    Stepping the local date (not adding hours) keeps the wall time right across DST changes.
    """
    candidate = _localise(first_day, clock, tz)
    if candidate.at < after:
        candidate = _localise(first_day + step, clock, tz)
    return candidate


def _localise(day: date, clock: time, tz: tzinfo) -> Reading:
    at, note = localise(day, clock, tz)
    return Reading(at, () if note is None else (note,))


def clock_time(text: str) -> time | None:
    """A time of day as typed (`09:00`, `9am`, `noon`) with no day; ``None`` if not one."""
    return _clock_time(" ".join(text.lower().split()))


def _clock_time(text: str) -> time | None:
    """`14:00`, `2pm`, `9:30am`, `noon` → a time; ``None`` if the text is not a clock form.

    A bare number (`14`) is not a clock form: it is too easily a size or an id typed in the wrong
    place.
    """
    if text in _NAMED_TIMES:
        return _NAMED_TIMES[text]
    match = _CLOCK.fullmatch(text)
    if match is None or (match["minute"] is None and match["meridiem"] is None):
        return None
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if minute > 59:
        raise InputError(Code.TIME_BAD_MINUTE, typed=Quote(text), minute=minute)
    return time(_hour_24(hour, match["meridiem"], text), minute)


def _hour_24(hour: int, meridiem: str | None, text: str) -> int:
    if meridiem is None:
        if hour > 23:
            raise InputError(Code.TIME_BAD_HOUR, typed=Quote(text), hour=hour)
        return hour
    if not 1 <= hour <= 12:
        raise InputError(Code.TIME_BAD_HOUR_12, typed=Quote(text), hour=hour)
    return hour % 12 + (12 if meridiem == "pm" else 0)


def _from_iso(match: re.Match[str], tz: ZoneInfo) -> Reading:
    """ISO 8601 date and time; an explicit offset wins over the user's zone."""
    day = _date_from_iso(match["date"])
    clock = time(
        _hour_24(int(match["hour"]), None, match.group(0)),
        _sixtieth(match["minute"], match.group(0)),
        _sixtieth(match["second"] or "0", match.group(0)),
    )
    offset = match["offset"]
    if offset is None:
        return _localise(day, clock, tz)
    return Reading(datetime.combine(day, clock, tzinfo=_fixed_offset(offset)).astimezone(UTC))


def _sixtieth(text: str, typed: str) -> int:
    value = int(text)
    if value > 59:
        raise InputError(Code.TIME_BAD_SIXTIETH, typed=Quote(typed), value=value)
    return value


def _fixed_offset(offset: str) -> timezone:
    if offset == "z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise InputError(Code.TIME_BAD_OFFSET, typed=Quote(offset))
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _date_from_iso(text: str) -> date:
    match = _DATE.fullmatch(text)
    if match is None:
        raise InputError(Code.DATE_UNREADABLE, typed=Quote(text))
    try:
        return date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise InputError(Code.DATE_IMPOSSIBLE, typed=Quote(text)) from None


def _day_from_words(words: str, today: date, from_day: date) -> date | None:
    """`today`, `tomorrow`, `yesterday` (from ``today``), a weekday (its next one from
    ``from_day``, which counts), `next fri` (the Friday of the week after ``today``'s) or
    `2026-12-01`; ``None`` when the words name no day."""
    if words in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[words])
    if words in WEEKDAYS:
        return from_day + timedelta(days=(WEEKDAYS[words] - from_day.weekday()) % 7)
    first, _, weekday = words.partition(" ")
    if first == NEXT:
        if weekday not in WEEKDAYS:
            raise _Unrecognised(Code.NEXT_NEEDS_WEEKDAY)
        return today + timedelta(days=7 - today.weekday() + WEEKDAYS[weekday])
    if _DATE.fullmatch(words):
        return _date_from_iso(words)
    return None


def parse_day(text: str, *, now: datetime, tz: ZoneInfo) -> date:
    """Read a calendar day (`today`, `friday`, `next mon`, `2026-12-01`) as the user's local date;
    a near miss (`tomorow`) is refused with the day it most likely meant."""
    _require_aware(now)
    words = " ".join(text.lower().split())
    today = now.astimezone(tz).date()
    try:
        day = _day_from_words(words, today, today)
        if day is None:
            raise _Unrecognised(Code.DAY_UNREADABLE, typed=Quote(text.strip()))
    except _Unrecognised as err:
        mended = _mend(words)
        if mended is not None and _is_day(mended, today):
            raise InputError(
                Code.DAY_UNREADABLE_NEAR, field="day", typed=Quote(words), suggestion=Quote(mended)
            ) from None
        raise err.for_field("day") from None
    except InputError as err:
        raise err.for_field("day") from None
    return day


def _is_day(words: str, today: date) -> bool:
    try:
        return _day_from_words(words, today, today) is not None
    except InputError:
        return False


def split_when(
    tokens: list[str],
    *,
    now: datetime,
    tz: ZoneInfo,
    field: str = "start",
    after: datetime | None = None,
) -> tuple[Reading, int]:
    """Read a time from the front of a command's words; return it and how many words it used.

    The longest readable prefix (up to 4 words, e.g. `next mon at 9am`, `in 1h 30m`) wins, so
    `2026-12-01 09:00 for 3h` takes the date and the time. When nothing reads, the most specific
    error is raised (e.g. "no hour 25" beats "can't read `tomorrow 25:00 for`"), else the longest
    near miss (`tomorow 9am` → "did you mean `tomorrow 9am`?"), else the shortest refusal.
    ``after`` is as for :func:`read_when`.
    """
    if not tokens:
        raise InputError(Code.TIME_MISSING, field=field, what=field)
    counts = range(min(_MAX_TIME_WORDS, len(tokens)), 0, -1)
    # Most commands read at their first or second try, and the refusals of the longer tries
    # are dropped: so near misses (a word-by-word fuzzy search) are only looked for once
    # nothing reads, to choose the refusal.
    for count in counts:
        text = " ".join(tokens[:count])
        try:
            return read_when(text, now=now, tz=tz, field=field, after=after, suggest=False), count
        except InputError:
            pass
    errors: list[InputError] = []
    for count in counts:
        try:
            read_when(" ".join(tokens[:count]), now=now, tz=tz, field=field, after=after)
        except InputError as err:
            errors.append(err)
    specific = next((err for err in reversed(errors) if not isinstance(err, _Unrecognised)), None)
    misread = next((err for err in errors if isinstance(err, _Misread)), None)
    raise specific or misread or errors[-1]


def day_bounds(day: date, tz: tzinfo, *, days: int = 1) -> tuple[datetime, datetime]:
    """``[midnight starting day, midnight `days` later)`` in ``tz``, as aware UTC datetimes.

    A "day" a user asks about is their wall-clock day, so its length follows DST (23 or 25 hours)
    and the end is found by stepping the local date, never by adding hours to the start.
    """
    first, last = _localise(day, time(0), tz), _localise(day + timedelta(days=days), time(0), tz)
    return first.at, last.at


def week_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local week (Monday 00:00 to the next Monday 00:00) that contains ``day``, in UTC."""
    return day_bounds(day - timedelta(days=day.weekday()), tz, days=7)
