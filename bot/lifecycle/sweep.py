"""Booking lifecycle: start due bookings, complete ended ones, queue reminders — exactly once.

The bookings table is the source of truth. A sweep moves every booking whose start or end has
passed, in write transactions that also write the audit entry and the outbox row for the message
(:class:`storage.models.Notification`); the transitions themselves are
:mod:`bot.booking.transitions`, the same ones a person's release or cancel goes through. Exactly-once follows from the status change itself: the
second replica's sweep selects ``status = 'upcoming'`` and finds nothing, because the first one's
change and its outbox row committed together. Nothing is lost while the bot is down: the next
sweep finds every booking whose time passed and catches up.

A booking whose whole window passed while the bot was down did happen in the world, so it is
started and then completed in the same sweep: one "started" and one "ended" message, like any
other booking (the notifier coalesces them into one channel message).

On PostgreSQL each batch locks the GPU rows of its bookings (``FOR UPDATE``, in id order) before
the bookings, like every service change does: a user releasing a booking at the very moment it
ends waits for the sweep (or the other way round) and then sees the new status, so a booking is
never both "ended" and "released". On SQLite every write transaction holds the database lock
(``BEGIN IMMEDIATE``), so the same code is serialised. (``SKIP LOCKED`` is used for the outbox
claim, whose lease is held while Slack is called; here it would leave a GPU's due bookings to the
next sweep whenever another transaction held that GPU for a few milliseconds.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select

from bot.booking import queries, transitions
from bot.booking.config import ServiceConfig
from bot.booking.journal import Journal
from bot.booking.watches import Watches
from bot.core.clock import Clock
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.db import Database
from storage.models import Booking

#: Bookings moved per transaction: bounds lock time and memory when thousands are due at once.
BATCH_SIZE = 500

Act = Callable[[Journal, Booking], Awaitable[None]]


@dataclass
class AdvanceCounts:
    """What one :meth:`Lifecycle.advance` did."""

    started: int = 0
    ended: int = 0
    reminders: int = 0
    #: Watches closed: their owner told of a window, or of the deadline passing.
    watches: int = 0

    @property
    def total(self) -> int:
        return self.started + self.ended + self.reminders + self.watches


class Lifecycle:
    """Moves bookings along upcoming → active → completed and queues the reminder DMs."""

    def __init__(
        self,
        db: Database,
        config: ServiceConfig,
        clock: Clock,
        *,
        reminder_before: timedelta = timedelta(minutes=15),
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.reminder_before = reminder_before
        self.batch_size = batch_size
        self.watches = Watches(db, config, clock)

    async def advance(self, now: datetime | None = None) -> AdvanceCounts:
        """Start, complete and remind everything due at ``now`` (default: the clock).

        Starts run before ends so a booking that began and finished while the bot was down gets
        both transitions, in order.
        """
        now = now or self.clock()
        counts = AdvanceCounts()
        counts.started = await self._drain(self._due_starts(now), transitions.start, now)
        counts.ended = await self._drain(self._due_ends(now), transitions.complete, now)
        counts.reminders = await self._drain(self._due_reminders(now), transitions.remind, now)
        # Last: bookings that ended meanwhile are done with, and a week's GB·h may have aged out.
        counts.watches = await self.watches.check_watches(now=now)
        return counts

    async def next_due(self, now: datetime) -> datetime | None:
        """The next instant after ``now`` when something becomes due: a start, an end or a
        reminder. The scheduler sweeps then, so transitions need not wait for the interval."""
        async with self.db.read() as session:
            start = await session.scalar(
                select(func.min(Booking.start_at)).where(
                    Booking.status == BookingStatus.UPCOMING, Booking.start_at > now
                )
            )
            end = await session.scalar(
                select(func.min(Booking.end_at)).where(
                    Booking.status.in_(list(HOLDING_STATUSES)),
                    Booking.end_at > now,
                )
            )
        reminder = end - self.reminder_before if end is not None else None
        candidates = [t for t in (start, end, reminder) if t is not None and t > now]
        return min(candidates, default=None)

    # ------------------------------------------------------------------ selection

    @staticmethod
    def _due_starts(now: datetime) -> list[ColumnElement[bool]]:
        return [Booking.status == BookingStatus.UPCOMING, Booking.start_at <= now]

    @staticmethod
    def _due_ends(now: datetime) -> list[ColumnElement[bool]]:
        return [Booking.status == BookingStatus.ACTIVE, Booking.end_at <= now]

    def _due_reminders(self, now: datetime) -> list[ColumnElement[bool]]:
        return [
            Booking.status == BookingStatus.ACTIVE,
            Booking.end_at > now,
            Booking.end_at <= now + self.reminder_before,
            or_(Booking.reminded_end_at.is_(None), Booking.reminded_end_at != Booking.end_at),
        ]

    async def _drain(self, due: list[ColumnElement[bool]], act: Act, now: datetime) -> int:
        """Apply ``act`` to every booking matching ``due``, one batch per transaction.

        Each batch locks the GPUs of its bookings first, in id order, then the bookings: the
        service's order (GPU, then booking), so a sweep and a user's change to the same booking
        serialise without deadlocking, and the status predicate is re-read after the lock — a
        booking another replica (or a user) moved meanwhile simply drops out. Locks are held for
        milliseconds, so a replica waits for another's batch rather than skipping it and leaving
        the work to the next sweep. Stops when nothing due is left.
        """
        done = 0
        while True:
            async with self.db.write() as session:
                candidates = select(Booking.gpu_id).where(*due).order_by(Booking.id)
                gpu_ids = sorted(set(await session.scalars(candidates.limit(self.batch_size))))
                if not gpu_ids:
                    return done
                await queries.lock_gpu_ids(session, gpu_ids)
                journal = Journal(session, now)
                batch = (
                    await session.scalars(
                        select(Booking)
                        .where(*due, Booking.gpu_id.in_(gpu_ids))
                        .order_by(Booking.id)
                        .limit(self.batch_size)
                        .with_for_update(of=Booking)
                    )
                ).unique()
                for booking in batch:
                    await act(journal, booking)
                    done += 1
