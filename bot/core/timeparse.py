"""Times and days typed by users, read in the user's own time zone and returned in UTC.

People type `tomorrow 9am` or `friday 2pm` and mean their wall clock, so naive forms are read in
the caller's zone (with :mod:`zoneinfo`, so DST days come out right) and converted to aware UTC for
storage. The clock is injected as ``now`` so the same text always gives the same answer in tests
and so "next occurrence" rules are computed against one instant.

On DST days a wall time that happens twice (autumn) means the first one, and a wall time that does
not exist (spring gap) is read with the offset in force before the gap; this is ``fold=0``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.units import parse_duration

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

_CLOCK = re.compile(r"(?P<hour>[0-9]{1,2})(?::(?P<minute>[0-9]{2}))?\s*(?P<meridiem>am|pm)?")
_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")
_ISO_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[t ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?"
    r"(?P<offset>z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


class _Unrecognised(InputError):
    """The text matches no time form at all (as opposed to a known form with a bad value).

    :func:`split_when` prefers the specific errors, which say what exactly was wrong.
    """


def parse_when(text: str, *, now: datetime, tz: ZoneInfo, field: str = "start") -> datetime:
    """Read a start or end time typed by a user; return an aware UTC datetime.

    ``field`` tags the error so a modal can show it under the right input (``"start"``/``"end"``).
    Explicit days are taken literally (`today 9am` may be in the past: the booking service, not the
    parser, decides whether that is allowed); a bare clock time means its next occurrence.
    """
    _require_aware(now)
    cleaned = " ".join(text.lower().split())
    if not cleaned:
        raise InputError(Code.TIME_MISSING, field=field, what=field)
    try:
        return _parse_when(cleaned, now.astimezone(UTC), tz)
    except _Unrecognised as err:
        raise err.for_field(field) from None
    except InputError as err:
        raise err.for_field(field) from None


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _parse_when(cleaned: str, now: datetime, tz: ZoneInfo) -> datetime:
    if cleaned == "now":
        return now
    if cleaned.startswith("in "):
        return now + parse_duration(cleaned.removeprefix("in "))
    iso = _ISO_DATETIME.fullmatch(cleaned)
    if iso is not None:
        return _from_iso(iso, tz)
    first, _, rest = cleaned.partition(" ")
    today = now.astimezone(tz).date()
    day = _day_from_word(first, today)
    if day is not None:
        return _on_day(first, day, rest, now, tz)
    clock = _clock_time(cleaned)
    if clock is not None:
        return _next_occurrence(today, clock, now, tz, step=timedelta(days=1))
    raise _Unrecognised(Code.TIME_UNREADABLE, typed=Quote(cleaned))


def _on_day(word: str, day: date, rest: str, now: datetime, tz: ZoneInfo) -> datetime:
    """Combine a day word with the clock time after it (`tomorrow 9am`, `fri at 14:00`)."""
    clock = _clock_time(rest.removeprefix("at "))
    if clock is None:
        raise _Unrecognised(
            Code.DAY_NEEDS_TIME,
            typed=Quote(word),
            morning=Quote(f"{word} 9am"),
            afternoon=Quote(f"{word} 14:00"),
        )
    if word in WEEKDAYS:
        return _next_occurrence(day, clock, now, tz, step=timedelta(days=7))
    return _localise(day, clock, tz)


def _next_occurrence(
    first_day: date, clock: time, now: datetime, tz: ZoneInfo, *, step: timedelta
) -> datetime:
    """``clock`` on ``first_day``, or one ``step`` later if that moment has already passed.

    Stepping the local date (not adding hours) keeps the wall time right across DST changes.
    """
    candidate = _localise(first_day, clock, tz)
    if candidate < now:
        candidate = _localise(first_day + step, clock, tz)
    return candidate


def _localise(day: date, clock: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


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


def _from_iso(match: re.Match[str], tz: ZoneInfo) -> datetime:
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
    return datetime.combine(day, clock, tzinfo=_fixed_offset(offset)).astimezone(UTC)


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


def _day_from_word(word: str, today: date) -> date | None:
    """`today`, `tomorrow`, `yesterday`, a weekday (next one, today counts) or `2026-12-01`."""
    if word in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[word])
    if word in WEEKDAYS:
        return today + timedelta(days=(WEEKDAYS[word] - today.weekday()) % 7)
    if _DATE.fullmatch(word):
        return _date_from_iso(word)
    return None


def parse_day(text: str, *, now: datetime, tz: ZoneInfo) -> date:
    """Read a calendar day (`today`, `friday`, `2026-12-01`) as the user's local date."""
    _require_aware(now)
    word = text.strip().lower()
    try:
        day = _day_from_word(word, now.astimezone(tz).date())
    except InputError as err:
        raise err.for_field("day") from None
    if day is None:
        raise InputError(Code.DAY_UNREADABLE, field="day", typed=Quote(text.strip()))
    return day


def split_when(
    tokens: list[str], *, now: datetime, tz: ZoneInfo, field: str = "start"
) -> tuple[datetime, int]:
    """Read a time from the front of a command's words; return it and how many words it used.

    The longest readable prefix (up to 3 words, e.g. `tomorrow at 9am`, `in 1h 30m`) wins, so
    `2026-12-01 09:00 for 3h` takes the date and the time. When nothing reads, the most specific
    error is raised (e.g. "no hour 25" beats "can't read `tomorrow 25:00 for`").
    """
    if not tokens:
        raise InputError(Code.TIME_MISSING, field=field, what=field)
    errors: list[InputError] = []
    for count in range(min(3, len(tokens)), 0, -1):
        try:
            return parse_when(" ".join(tokens[:count]), now=now, tz=tz, field=field), count
        except InputError as err:
            errors.append(err)
    specific = next((err for err in reversed(errors) if not isinstance(err, _Unrecognised)), None)
    raise specific or errors[-1]


def day_bounds(day: date, tz: tzinfo, *, days: int = 1) -> tuple[datetime, datetime]:
    """``[midnight starting day, midnight `days` later)`` in ``tz``, as aware UTC datetimes.

    A "day" a user asks about is their wall-clock day, so its length follows DST (23 or 25 hours)
    and the end is found by stepping the local date, never by adding hours to the start.
    """
    return _localise(day, time(0), tz), _localise(day + timedelta(days=days), time(0), tz)


def week_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local week (Monday 00:00 to the next Monday 00:00) that contains ``day``, in UTC."""
    return day_bounds(day - timedelta(days=day.weekday()), tz, days=7)
