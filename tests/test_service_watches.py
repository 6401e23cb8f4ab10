"""Watches through the service, on SQLite and PostgreSQL: stored, listed and cancelled; one DM
when a window that fits (capacity, the owner's limits and rules) opens before the deadline —
after a release or cancel, or in the sweep — and one when it expires; exactly once, however many
checks (or replicas) run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from bot.booking import Actor, BookingService
from bot.core.clock import FrozenClock
from bot.core.errors import CapacityError, InvalidState, NotFound, PolicyViolation
from bot.core.limits import LimitName
from bot.core.vocabulary import BookingStatus, NoticeKind, WatchEnd
from bot.lifecycle.sweep import Lifecycle
from storage.models import Booking
from tests.conftest import T0, at, refused
from tests.test_service_limits import set_limit
from tests.test_service_scenarios import ALICE, BOB, add_gpu, book, notifications

HOUR = timedelta(hours=1)


async def watch_notices(service: BookingService) -> list[tuple[str, str, dict]]:
    return [
        (n.kind, n.channel, dict(n.details))
        for n in await notifications(service)
        if n.kind in (NoticeKind.WATCH_OPEN, NoticeKind.WATCH_EXPIRED)
    ]


async def test_a_release_opens_the_window_and_the_owner_is_told_once(
    service: BookingService,
) -> None:
    await add_gpu(service)
    blocker = await book(service, ALICE, "20GB", T0, at(20))
    watch = await service.create_watch(
        BOB, memory="10GB", duration=2 * HOUR, deadline=at(18), task="eval"
    )
    assert (watch.memory_mib, watch.duration, watch.deadline) == (10 * 1024, 2 * HOUR, at(18))
    assert await watch_notices(service) == []  # nothing fits before 18:00
    assert [w.id for w in await service.my_watches(BOB)] == [watch.id]
    await service.release(ALICE, blocker.id)
    [(kind, to, details)] = await watch_notices(service)
    assert (kind, to) == (NoticeKind.WATCH_OPEN, "UBOB")
    assert details["gpu"] == "rtx-0" and details["task"] == "eval"
    assert (details["start"], details["end"]) == (T0.isoformat(), at(10).isoformat())
    assert await service.my_watches(BOB) == []
    assert await service.check_watches() == 0  # told once
    assert len(await watch_notices(service)) == 1


async def test_the_window_respects_pattern_limits_and_deadline(service: BookingService) -> None:
    await add_gpu(service, "rtx-0", "24GB")
    await add_gpu(service, "a100-1", "80GB")
    await book(service, ALICE, "20GB", T0, at(12))  # rtx-0 has 4 GB until noon
    await book(service, BOB, "30GB", T0, at(11), gpu="a100-1")  # BOB holds 30 GB until 11:00
    await set_limit(service, "everyone", LimitName.MAX_HELD, "40GB")
    # On rtx-* only, 10 GB fits from noon: BOB's own limit is no obstacle there.
    await service.create_watch(BOB, memory="10GB", duration=HOUR, pattern="rtx-*")
    [(_, _, first)] = await watch_notices(service)
    assert (first["gpu"], first["start"]) == ("rtx-0", at(12).isoformat())
    # On a100-1 there is room now, but not within BOB's 40 GB until his 30 GB end at 11:00.
    await service.create_watch(BOB, memory="20GB", duration=HOUR, pattern="a100-*")
    [_, (_, _, second)] = await watch_notices(service)
    assert (second["gpu"], second["start"]) == ("a100-1", at(11).isoformat())
    # Before 10:30 no such window can end: the watch waits.
    waiting = await service.create_watch(
        BOB, memory="20GB", duration=HOUR, pattern="a100-*", deadline=at(10, 30)
    )
    assert [w.id for w in await service.my_watches(BOB)] == [waiting.id]
    await set_limit(service, "everyone", LimitName.MAX_HELD, "none")  # checks the watches
    assert await service.my_watches(BOB) == []
    assert await service.check_watches() == 0  # and the sweep's check finds it already told
    [*_, (_, _, third)] = await watch_notices(service)
    assert third["start"] == T0.isoformat()


async def test_a_watch_expires_once_in_the_sweep(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    await book(service, ALICE, "24GB", T0, at(20))
    watch = await service.create_watch(BOB, memory="8GB", duration=2 * HOUR, deadline=at(12))
    lifecycle = Lifecycle(service.db, service.config, clock)
    clock.set(at(10))
    assert (await lifecycle.advance()).watches == 0  # 10:00–12:00 could still come free
    clock.set(at(10, 1))
    assert (await lifecycle.advance()).watches == 1
    assert (await lifecycle.advance()).watches == 0
    [(kind, to, details)] = await watch_notices(service)
    assert (kind, to, details["watch"]) == (NoticeKind.WATCH_EXPIRED, "UBOB", watch.id)
    with refused(InvalidState, "is over already"):
        await service.cancel_watch(BOB, watch.id)


async def test_cancel_list_and_refusals(service: BookingService) -> None:
    await add_gpu(service)
    await book(service, ALICE, "24GB", T0, at(20))
    watch = await service.create_watch(BOB, memory="8GB", duration=HOUR, deadline=at(19))
    with refused(NotFound, f"no watch #{watch.id}"):
        await service.cancel_watch(ALICE, watch.id)  # not hers: as if it did not exist
    cancelled = await service.cancel_watch(BOB, watch.id)
    assert cancelled.ended == WatchEnd.CANCELLED and await service.my_watches(BOB) == []
    with refused(PolicyViolation, "cannot end before"):
        await service.create_watch(BOB, memory="8GB", duration=2 * HOUR, deadline=at(9))
    with refused(NotFound, "No GPU matches `a100-\\*`"):
        await service.create_watch(BOB, memory="8GB", duration=HOUR, pattern="a100-*")
    with refused(CapacityError, "24 GB"):
        await service.create_watch(BOB, memory="40GB", duration=HOUR)
    for _ in range(10):
        await service.create_watch(BOB, memory="8GB", duration=HOUR, deadline=at(19))
    with refused(PolicyViolation, "10 watches, the most"):
        await service.create_watch(BOB, memory="8GB", duration=HOUR, deadline=at(19))
    await service.cancel_watch(Actor("UADMIN"), (await service.my_watches(BOB))[0].id)
    assert len(await service.my_watches(BOB)) == 9
    assert await watch_notices(service) == []


async def test_concurrent_checks_tell_the_owner_once(service: BookingService) -> None:
    """Two replicas' checks racing over the same open watches: one DM each, never two."""
    await add_gpu(service)
    blocker = await book(service, ALICE, "24GB", T0, at(20))
    for _ in range(5):
        await service.create_watch(BOB, memory="8GB", duration=HOUR, deadline=at(19))
    other = BookingService(service.db, service.config, service.clock)
    async with service.db.write() as session:  # free the card without a check of its own
        await session.execute(
            update(Booking).where(Booking.id == blocker.id).values(status=BookingStatus.CANCELLED)
        )
    told = await asyncio.gather(*(s.check_watches() for s in (service, other, service, other)))
    assert sum(told) == 5
    assert len(await watch_notices(service)) == 5
