"""Wall-clock times that a DST change makes odd, read without surprise.

On the spring change a range of wall times never happens (Berlin skips 02:00–03:00); on the autumn
change a range happens twice. :mod:`zoneinfo` reads both silently (``fold=0``): a skipped time with
the offset in force before the gap, so 02:30 lands at 03:30, and a repeated time as its first
occurrence. gpubook keeps those readings, and says so in a sentence the booking's confirmation
shows, so nobody finds their booking an hour off without having been told.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo

from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence, say


def localise(day: date, clock: time, tz: tzinfo) -> tuple[datetime, Sentence | None]:
    """``clock`` on ``day`` in ``tz`` as aware UTC, and a note when DST made the reading odd.

    A wall time is read as its first occurrence whatever ``fold`` the clock carries: with
    ``fold=1`` a skipped time would silently land an hour early, before the gap, unnoted."""
    wall = datetime.combine(day, clock.replace(fold=0), tzinfo=tz)
    at = wall.astimezone(UTC)
    second = wall.replace(fold=1)
    if wall.utcoffset() == second.utcoffset():
        return at, None
    named = {"typed": Quote(_clock(clock)), "day": f"{day:%a} {day.day} {day:%b %Y}"}
    named["zone"] = getattr(tz, "key", None) or str(wall.tzname())
    if at.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
        return at, say(Code.CLOCK_SKIPPED, **named, read=_wall(at, tz))
    later = second.astimezone(UTC).astimezone(tz)
    explicit = f"{day.isoformat()} {_clock(clock)}{later:%z}"
    explicit = f"{explicit[:-2]}:{explicit[-2:]}"
    return at, say(Code.CLOCK_TWICE, **named, read=_wall(at, tz), later=Quote(explicit))


def _clock(clock: time) -> str:
    return f"{clock:%H:%M:%S}" if clock.second else f"{clock:%H:%M}"


def _wall(at: datetime, tz: tzinfo) -> str:
    """``03:30 CEST``: the wall time an instant shows in ``tz``, with the zone's name then."""
    local = at.astimezone(tz)
    return f"{_clock(local.time())} {local.tzname()}"
