"""Measured memory-time: usage samples summed into MiB·seconds, per card and per Unix login.

Each sample carries the seconds since its card's previous report (capped where a host fell
silent), so a sum needs no neighbouring rows: ``Σ used_mib × seconds``. Roll-ups into hours and
the measured GB·h of statistics are both this sum, so they agree exactly.

A window counts whole hours: an hour counts when it starts inside the window, and so does each
sample taken in it. That is what makes a window cost the same read from samples or from the
running totals of hourly rows (:func:`counted_hours`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)


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


def ceil_hour(at: datetime) -> datetime:
    """The first hour starting at or after ``at``."""
    floor = hour_of(at)
    return floor if floor == at else floor + HOUR


def counted_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The hours a window ``[start, end)`` counts, as ``[first, stop)`` on the hour: those that
    start inside it."""
    return ceil_hour(start), ceil_hour(end)


def by_hour(samples: Iterable[Sample]) -> dict[datetime, Totals]:
    """Samples summed per hour (the hour each sample was taken in)."""
    hours: dict[datetime, Totals] = {}
    for sample in samples:
        hours.setdefault(hour_of(sample.at), Totals()).add(sample)
    return hours
