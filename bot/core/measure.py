"""Measured memory-time: usage samples summed into MiB·seconds, per card and per Unix login.

Each sample carries the seconds since its card's previous report (capped where a host fell
silent), so a sum needs no neighbouring rows: ``Σ used_mib × seconds``. Roll-ups into hours and
the measured GB·h of statistics are both this sum, so they agree exactly.

A window counts whole hours: an hour counts when it starts inside the window, and so does each
sample taken in it. That is what makes a window cost the same read from samples, hourly rows or
daily rows (:func:`window_parts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Sample:
    at: datetime
    seconds: int
    used_mib: int
    #: MiB per login; ``None`` where NVML could not tell (counts as nothing measured).
    users: Mapping[str, int | None]


@dataclass
class Totals:
    """Sums over samples: how many, seconds covered, MiB·s in all and per login, the peak."""

    samples: int = 0
    seconds: int = 0
    used_mib_s: int = 0
    max_used_mib: int = 0
    users: dict[str, int] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.samples += 1
        self.seconds += sample.seconds
        self.used_mib_s += sample.used_mib * sample.seconds
        self.max_used_mib = max(self.max_used_mib, sample.used_mib)
        for login, mib in sample.users.items():
            self.users[login] = self.users.get(login, 0) + (mib or 0) * sample.seconds

    def merge(self, other: Totals) -> None:
        self.samples += other.samples
        self.seconds += other.seconds
        self.used_mib_s += other.used_mib_s
        self.max_used_mib = max(self.max_used_mib, other.max_used_mib)
        for login, mib_s in other.users.items():
            self.users[login] = self.users.get(login, 0) + mib_s


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def day_of(at: datetime) -> datetime:
    """The start of ``at``'s day (in ``at``'s zone; UTC for stored times)."""
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil(at: datetime, floor: datetime, step: timedelta) -> datetime:
    return floor if floor == at else floor + step


@dataclass(frozen=True)
class WindowParts:
    """A window ``[start, end)`` cut for reading: the hours that count are ``[start, end)``
    (both on the hour), of which the whole days ``[days_start, days_end)`` can be read from
    daily rows and the rest, at the edges, from hourly rows. No whole day: both are ``end``."""

    start: datetime
    end: datetime
    days_start: datetime
    days_end: datetime


def window_parts(start: datetime, end: datetime) -> WindowParts:
    """The hours ``[start, end)`` counts (those starting inside it) and its whole days."""
    first, stop = _ceil(start, hour_of(start), HOUR), _ceil(end, hour_of(end), HOUR)
    days_start, days_end = _ceil(first, day_of(first), DAY), day_of(stop)
    if days_end <= days_start:
        days_start = days_end = stop
    return WindowParts(first, stop, days_start, days_end)


def by_day(hours: Mapping[datetime, Totals]) -> dict[datetime, Totals]:
    """Hourly totals summed per day."""
    days: dict[datetime, Totals] = {}
    for hour, totals in hours.items():
        days.setdefault(day_of(hour), Totals()).merge(totals)
    return days


def by_hour(samples: Iterable[Sample]) -> dict[datetime, Totals]:
    """Samples summed per hour (the hour each sample was taken in)."""
    hours: dict[datetime, Totals] = {}
    for sample in samples:
        hours.setdefault(hour_of(sample.at), Totals()).add(sample)
    return hours
