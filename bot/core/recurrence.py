"""Recurring bookings: a repeat rule, and the windows of its occurrences.

A rule names weekdays, a wall-clock start in one zone, a length (``for 2h``: real hours) or a
wall-clock end (``until 17:00``: the next day when it is not after the start), and an end of the
series: a last day, or a number of occurrences. There is no rule without an end, and no series of
more than :data:`MAX_OCCURRENCES`.

Expansion is dateutil's ``rrule`` run in *local wall time* (naive datetimes), so "09:00 every
weekday" stays 09:00 on the clock across a DST change; each wall time is then made aware UTC by
:func:`bot.core.walltime.localise`, the same reading a single booking's start gets: a time the
clocks skip is read an hour later, a time that happens twice as the first, each with its note.
dateutil is the one library the core uses besides the standard one: it computes and reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import WEEKLY, rrule

from bot.core.errors import InputError
from bot.core.formats import format_duration
from bot.core.phrases import Code
from bot.core.sentence import Sentence
from bot.core.walltime import localise

#: The most occurrences one series may have (each is a booking checked in one transaction).
MAX_OCCURRENCES = 100
EVERY_DAY = frozenset(range(7))
WEEKDAYS = frozenset(range(5))
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Recurrence:
    """When a series' occurrences are: all wall-clock values in ``zone``.

    Exactly one of ``length``/``end`` and exactly one of ``last_day``/``count`` is set.
    ``first_day`` is where the series starts (the first occurrence is the first of ``days`` on
    or after it).
    """

    days: frozenset[int]
    start: time
    zone: str
    first_day: date
    length: timedelta | None = None
    end: time | None = None
    last_day: date | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.length is None) == (self.end is None):
            raise ValueError("a recurrence has a length or an end clock, not both")
        if (self.last_day is None) == (self.count is None):
            raise ValueError("a recurrence ends on a last day or after a count, not both")
        if not self.days or not self.days <= EVERY_DAY:
            raise ValueError(f"weekdays must be among 0–6: {sorted(self.days)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (stored with the series, carried by a button)."""
        return {
            "days": sorted(self.days),
            "start": self.start.isoformat("minutes"),
            "zone": self.zone,
            "first_day": self.first_day.isoformat(),
            "length_s": None if self.length is None else int(self.length.total_seconds()),
            "end": None if self.end is None else self.end.isoformat("minutes"),
            "last_day": None if self.last_day is None else self.last_day.isoformat(),
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Recurrence:
        """Inverse of :meth:`to_dict`; raises ValueError/KeyError/TypeError on anything else."""
        length, end, last, count = (value.get(k) for k in ("length_s", "end", "last_day", "count"))
        ZoneInfo(str(value["zone"]))  # an unknown zone is unreadable data
        return cls(
            days=frozenset(int(d) for d in value["days"]),
            start=time.fromisoformat(str(value["start"])),
            zone=str(value["zone"]),
            first_day=date.fromisoformat(str(value["first_day"])),
            length=None if length is None else timedelta(seconds=int(length)),
            end=None if end is None else time.fromisoformat(str(end)),
            last_day=None if last is None else date.fromisoformat(str(last)),
            count=None if count is None else int(count),
        )


@dataclass(frozen=True)
class Occurrence:
    """One window of a series: its local day, aware UTC bounds, and any DST note on its times."""

    day: date
    start: datetime
    end: datetime
    notes: tuple[Sentence, ...] = ()


def first_day(days: frozenset[int], start: time, tz: ZoneInfo, now: datetime) -> date:
    """The first day of ``days`` whose ``start`` (in ``tz``) is still ahead of ``now``."""
    day = now.astimezone(tz).date()
    while day.weekday() not in days or localise(day, start, tz)[0] <= now:
        day += timedelta(days=1)
    return day


def expand(rule: Recurrence) -> list[Occurrence]:
    """Every occurrence of ``rule``, in order; more than :data:`MAX_OCCURRENCES` is refused."""
    if rule.count is not None and rule.count > MAX_OCCURRENCES:
        raise InputError(Code.SERIES_TOO_MANY, field="repeat", limit=MAX_OCCURRENCES)
    walls = rrule(
        WEEKLY,
        dtstart=datetime.combine(rule.first_day, rule.start),
        byweekday=sorted(rule.days),
        until=None if rule.last_day is None else datetime.combine(rule.last_day, rule.start),
        count=rule.count,
        cache=False,
    )
    days = [wall.date() for wall in islice(walls, MAX_OCCURRENCES + 1)]
    if len(days) > MAX_OCCURRENCES:
        raise InputError(Code.SERIES_TOO_MANY, field="repeat", limit=MAX_OCCURRENCES)
    if not days:
        raise InputError(Code.SERIES_EMPTY, field="repeat")
    return [_occurrence(rule, day) for day in days]


def _occurrence(rule: Recurrence, day: date) -> Occurrence:
    tz = ZoneInfo(rule.zone)
    start, note = localise(day, rule.start, tz)
    notes = () if note is None else (note,)
    if rule.length is not None:
        return Occurrence(day, start, start + rule.length, notes)
    assert rule.end is not None
    end_day = day if rule.end > rule.start else day + timedelta(days=1)
    end, end_note = localise(end_day, rule.end, tz)
    return Occurrence(day, start, end, notes + (() if end_note is None else (end_note,)))


def describe(rule: Recurrence, *, zone: bool = False) -> str:
    """``weekdays 09:00–17:00 until Mon 1 Mar 2027`` or ``every Mon, Wed 10:00 for 2h, 6 times``:
    the rule as it was asked for, on the clock of its zone (named after the hours if ``zone``)."""
    if rule.days == EVERY_DAY:
        days = "every day"
    elif rule.days == WEEKDAYS:
        days = "weekdays"
    else:
        days = "every " + ", ".join(DAY_NAMES[d] for d in sorted(rule.days))
    start = rule.start.isoformat("minutes")
    if rule.end is not None:
        period = f"{start}–{rule.end.isoformat('minutes')}"
    else:
        assert rule.length is not None
        period = f"{start} for {format_duration(rule.length)}"
    if zone:
        period = f"{period} ({rule.zone})"
    if rule.last_day is not None:
        last = rule.last_day
        return f"{days} {period} until {DAY_NAMES[last.weekday()]} {last.day} {last:%b %Y}"
    return f"{days} {period}, {rule.count} times"
