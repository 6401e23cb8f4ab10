"""The lifecycle sweep at database level: transitions, audit entries and outbox rows.

Runs on SQLite and PostgreSQL (the ``service`` fixture). The clock is frozen at T0 (08:00) and
moved by hand; ``advance`` is called with explicit times, as the scheduler does. Helpers here are
shared with ``test_notifier.py``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.booking import Actor, BookingService, ServiceConfig
from bot.booking.journal import SYSTEM_ACTOR as ACTOR
from bot.core.clock import FrozenClock
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus
from bot.lifecycle.sweep import Lifecycle
from storage.db import Database
from storage.models import DEFAULT_CHANNEL, AuditEntry, Booking, Notification
from tests.conftest import ADMIN, at, pg_database

GB = 1024
ALICE = Actor("UALICE")
BOB = Actor("UBOB")


async def add_gpu(
    service: BookingService, name: str = "a100-1", size: str = "80GB", channel: str | None = None
) -> None:
    await service.add_gpu(Actor(ADMIN), name, size)
    if channel is not None:
        await service.edit_gpu(Actor(ADMIN), name, channel_id=channel)


async def book(
    service: BookingService,
    start: datetime,
    end: datetime,
    *,
    actor: Actor = ALICE,
    gpu: str = "a100-1",
    memory: str = "20GB",
    task: str = "train",
) -> BookingInfo:
    return await service.create(actor, gpu=gpu, memory=memory, start=start, end=end, task=task)


def lifecycle_for(service: BookingService, **kwargs) -> Lifecycle:
    return Lifecycle(service.db, service.config, service.clock, **kwargs)


async def outbox(db: Database, kind: str | None = None) -> list[Notification]:
    async with db.read() as session:
        query = select(Notification).order_by(Notification.id)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return list((await session.scalars(query)).unique())


async def booking_row(db: Database, booking_id: int) -> Booking:
    async with db.read() as session:
        return await session.get_one(Booking, booking_id)


async def audit(db: Database, booking_id: int) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(AuditEntry.id)
        )
        return [(r.actor, r.action) for r in rows]


# ---------------------------------------------------------------------------- transitions


async def test_starts_at_start_and_completes_at_end(service: BookingService) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    lifecycle = lifecycle_for(service)

    assert (await lifecycle.advance(at(8, 59))).total == 0
    assert (await booking_row(service.db, booking.id)).status == BookingStatus.UPCOMING

    counts = await lifecycle.advance(at(9))
    assert (counts.started, counts.ended) == (1, 0)
    assert (await booking_row(service.db, booking.id)).status == BookingStatus.ACTIVE

    counts = await lifecycle.advance(at(10))
    assert (counts.started, counts.ended) == (0, 1)
    row = await booking_row(service.db, booking.id)
    assert (row.status, row.end_reason) == (BookingStatus.COMPLETED, "completed")

    assert await audit(service.db, booking.id) == [
        ("UALICE", "create"),
        (ACTOR, "start"),
        (ACTOR, "complete"),
    ]
    assert [(n.kind, n.channel, n.booking_id) for n in await outbox(service.db)] == [
        ("announced", DEFAULT_CHANNEL, booking.id),
        ("started", DEFAULT_CHANNEL, booking.id),
        ("ended", DEFAULT_CHANNEL, booking.id),
    ]


async def test_a_second_sweep_finds_nothing_left_to_do(service: BookingService) -> None:
    await add_gpu(service)
    await book(service, at(9), at(10))
    lifecycle = lifecycle_for(service)
    await lifecycle.advance(at(10))

    assert (await lifecycle.advance(at(10))).total == 0
    assert len(await outbox(service.db, "started")) == 1
    assert len(await outbox(service.db, "ended")) == 1


async def test_a_booking_missed_entirely_while_down_is_started_then_ended(
    service: BookingService,
) -> None:
    """The bot was down across the whole booking: it did happen, so both messages are owed."""
    await add_gpu(service)
    booking = await book(service, at(9), at(10))

    counts = await lifecycle_for(service).advance(at(12))

    assert (counts.started, counts.ended) == (1, 1)
    assert [n.kind for n in await outbox(service.db)] == ["announced", "started", "ended"]
    assert (await booking_row(service.db, booking.id)).status == BookingStatus.COMPLETED


async def test_a_booking_created_running_is_not_started_again(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    booking = await book(service, clock.now, at(9))  # starts now: active at once

    counts = await lifecycle_for(service).advance(at(9))

    assert (counts.started, counts.ended) == (0, 1)
    assert [n.kind for n in await outbox(service.db)] == ["announced", "ended"]
    assert (await booking_row(service.db, booking.id)).status == BookingStatus.COMPLETED


async def test_released_and_cancelled_bookings_are_left_alone(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    running = await book(service, at(9), at(11))
    doomed = await book(service, at(9), at(11), actor=BOB)
    lifecycle = lifecycle_for(service)
    await service.cancel(BOB, doomed.id)
    await lifecycle.advance(at(9))
    clock.set(at(9, 30))
    await service.release(ALICE, running.id)

    assert (await lifecycle.advance(at(12))).total == 0
    kinds = [(n.kind, n.booking_id) for n in await outbox(service.db)]
    assert ("ended", running.id) not in kinds
    assert ("started", doomed.id) not in kinds
    assert ("released", running.id) in kinds and ("cancelled", doomed.id) in kinds


async def test_messages_go_to_the_gpus_channel_first(service: BookingService) -> None:
    await add_gpu(service, "a100-1", channel="CA100")
    await add_gpu(service, "rtx-0")
    on_a100 = await book(service, at(9), at(10))
    elsewhere = await book(service, at(9), at(10), gpu="rtx-0")

    await lifecycle_for(service).advance(at(9))

    started = {n.booking_id: n.channel for n in await outbox(service.db, "started")}
    # Without a channel of its GPU or workspace, the poster's default (GPUBOOK_CHANNEL) at post time.
    assert started == {on_a100.id: "CA100", elsewhere.id: DEFAULT_CHANNEL}


async def test_without_a_channel_of_their_own_messages_wait_for_the_posters_default(
    db: Database, clock: FrozenClock
) -> None:
    """Written by a process without GPUBOOK_CHANNEL (the CLI): the bot's default decides."""
    service = BookingService(db, ServiceConfig(admins=frozenset({ADMIN})), clock)
    await add_gpu(service)
    booking = await book(service, at(9), at(10))

    counts = await lifecycle_for(service).advance(at(10))

    assert (counts.started, counts.ended) == (1, 1)
    assert (await booking_row(db, booking.id)).status == BookingStatus.COMPLETED
    assert [(n.kind, n.channel) for n in await outbox(db)] == [
        ("announced", DEFAULT_CHANNEL),
        ("started", DEFAULT_CHANNEL),
        ("ended", DEFAULT_CHANNEL),
    ]


async def test_many_due_bookings_are_moved_in_batches(service: BookingService) -> None:
    await add_gpu(service)
    booked = [await book(service, at(9), at(10), memory="1GB") for _ in range(7)]

    counts = await lifecycle_for(service, batch_size=3).advance(at(9))

    assert counts.started == 7
    assert sorted(n.booking_id for n in await outbox(service.db, "started")) == [
        b.id for b in booked
    ]


async def test_concurrent_sweeps_move_each_booking_once(
    service: BookingService, backend: str, tmp_path
) -> None:
    """Two sweepers with their own connections pools: the status change is the claim."""
    await add_gpu(service)
    booked = [await book(service, at(9), at(10), memory="1GB") for _ in range(30)]
    other_db = (
        pg_database(service.db.url)
        if backend == "postgres"
        else Database(service.db.url.replace("sqlite+aiosqlite", "sqlite"))
    )
    try:
        first = lifecycle_for(service, batch_size=4)
        second = Lifecycle(other_db, service.config, service.clock, batch_size=4)
        counts = await asyncio.gather(first.advance(at(10)), second.advance(at(10)))
    finally:
        await other_db.dispose()

    assert sum(c.started for c in counts) == 30 and sum(c.ended for c in counts) == 30
    for kind in ("started", "ended"):
        ids = [n.booking_id for n in await outbox(service.db, kind)]
        assert sorted(ids) == [b.id for b in booked]


# ---------------------------------------------------------------------------- reminders


async def test_reminder_is_queued_once_before_the_end(service: BookingService) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    lifecycle = lifecycle_for(service, reminder_before=timedelta(minutes=15))
    await lifecycle.advance(at(9))

    assert (await lifecycle.advance(at(9, 44))).reminders == 0
    assert (await lifecycle.advance(at(9, 45))).reminders == 1
    assert (await lifecycle.advance(at(9, 50))).reminders == 0

    [reminder] = await outbox(service.db, "reminder")
    assert (reminder.channel, reminder.booking_id) == ("UALICE", booking.id)
    assert reminder.details == {"end": at(10).isoformat()}
    assert (await booking_row(service.db, booking.id)).reminded_end_at == at(10)


async def test_an_extension_makes_a_new_reminder_due(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    lifecycle = lifecycle_for(service)
    await lifecycle.advance(at(9, 50))
    clock.set(at(9, 55))
    await service.extend(ALICE, booking.id, timedelta(hours=1))

    assert (await lifecycle.advance(at(10, 30))).reminders == 0
    assert (await lifecycle.advance(at(10, 45))).reminders == 1
    assert [n.details["end"] for n in await outbox(service.db, "reminder")] == [
        at(10).isoformat(),
        at(11).isoformat(),
    ]


async def test_no_reminder_for_released_or_upcoming_bookings(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    released = await book(service, at(9), at(10))
    lifecycle = lifecycle_for(service)
    await lifecycle.advance(at(9))
    clock.set(at(9, 30))
    await service.release(ALICE, released.id)
    await book(service, at(9, 50), at(11), actor=BOB)  # upcoming at 09:45, ends much later

    assert (await lifecycle.advance(at(9, 45))).reminders == 0
    assert await outbox(service.db, "reminder") == []
