"""Read-only snapshots the service hands to interfaces, made of plain values.

The service never returns ORM objects: a snapshot cannot lazy-load after its session closed, and
handlers cannot accidentally write through it. They are built from rows in
:mod:`bot.booking.snapshots`, so this module stays free of the database. Memory stays integer MiB;
times stay aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.capacity import Step
from bot.core.recurrence import Recurrence
from bot.core.sentence import Sentence
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus, NoticeKind


@dataclass(frozen=True)
class GpuInfo:
    id: int
    name: str
    capacity_mib: int
    description: str
    channel_id: str | None
    retired: bool
    #: The NVML UUID of the card it is, when an admin bound one.
    device_uuid: str | None = None


@dataclass(frozen=True)
class BookingInfo:
    id: int
    gpu_name: str
    gpu_capacity_mib: int
    user_id: str
    task: str
    memory_mib: int
    start: datetime
    end: datetime
    original_end: datetime
    status: BookingStatus
    end_reason: str | None
    created_by: str
    created_at: datetime
    #: The series this booking is one occurrence of, and its rule (``None`` for a single one).
    series_id: int | None = None
    series_rule: Recurrence | None = None
    #: In a list: how many of the series' bookings the list holds in all (on every page).
    series_left: int | None = None
    #: A flexible booking moves earlier by itself when memory frees (the queue).
    flexible: bool = False

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def is_holding(self) -> bool:
        return self.status in HOLDING_STATUSES


@dataclass(frozen=True)
class SeriesResult:
    """A series as booked: its id, the occurrences booked, the windows left out (booked with
    ``partial``), and how DST made some occurrence's wall time odd (for the confirmation)."""

    series_id: int
    booked: list[BookingInfo]
    skipped: list[tuple[datetime, datetime]]
    notes: tuple[Sentence, ...] = ()


@dataclass(frozen=True)
class CalendarData:
    """A GPU over a window: everyone's bookings in it and the held-memory step function."""

    gpu: GpuInfo
    start: datetime
    end: datetime
    bookings: list[BookingInfo]
    steps: list[Step]


@dataclass(frozen=True)
class GpuStatus:
    """A GPU right now: memory held, memory free and when that next changes."""

    gpu: GpuInfo
    used_mib: int
    free_mib: int
    next_change: datetime | None
    active_bookings: int


@dataclass(frozen=True)
class Slot:
    """A window on a GPU where a request fits; bookable exactly as given."""

    gpu_name: str
    start: datetime
    end: datetime
    memory_mib: int


@dataclass(frozen=True)
class FreeWindows:
    """Earliest windows for a request: per GPU (None where nothing fits) and the best overall.

    ``until`` is the latest start searched: the search horizon, or the latest start a booking may
    have, whichever comes first.
    """

    memory_mib: int
    duration: timedelta
    per_gpu: list[tuple[GpuInfo, Slot | None]]
    best: Slot | None
    until: datetime


@dataclass(frozen=True)
class Usage:
    """Booked memory-time against what was available, in MiB·seconds (exact integers).

    ``measured_mib_s`` is what host agents measured in the same window (``None`` where nothing
    can be measured: a GPU bound to no card, a person with no linked login).
    """

    key: str
    booked_mib_s: int
    available_mib_s: int | None
    bookings: int
    measured_mib_s: int | None = None


@dataclass(frozen=True)
class Utilisation:
    start: datetime
    end: datetime
    per_gpu: list[Usage]
    per_user: list[Usage]
    total: Usage
    #: Measured use by Unix logins nobody linked (key: the login), so it is not lost.
    unlinked: list[Usage] = field(default_factory=list)


@dataclass(frozen=True)
class AuditInfo:
    """One audit entry: who (a Slack user id, or ``cli``) did what, when, to which booking or GPU.

    ``details`` is a deep copy of the row's, so nothing a reader does to it can reach the database.
    """

    id: int
    at: datetime
    actor: str
    action: str
    booking_id: int | None
    gpu_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """One notification to render: its kind, the booking as it is now, and the row's details.

    ``booking`` is ``None`` only for live-usage notices about no booking (unbooked use, a silent
    host)."""

    kind: NoticeKind
    booking: BookingInfo | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchInfo:
    """A watch: someone waiting for ``memory_mib`` for ``duration`` on a GPU matching
    ``pattern`` (``None``: any), in a window that ends by ``deadline``; told once, by DM."""

    id: int
    user_id: str
    memory_mib: int
    duration: timedelta
    pattern: str | None
    deadline: datetime
    task: str | None
    created_at: datetime
    #: Why it closed (``None`` while it waits): see :class:`~bot.core.vocabulary.WatchEnd`.
    ended: str | None = None
