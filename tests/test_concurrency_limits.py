"""Races: one person's bookings on different GPUs never pass a limit that spans cards, and
queue moves racing with releases and new bookings never over-book or move twice.

Each GPU has its own lock, so two bookings by one person on two cards would both read the same
"already held" and both pass max-held; the per-person lock row serialises them (see the lock
order in :mod:`bot.booking.limits`). Runs on SQLite and PostgreSQL, where the transactions
really overlap; bookings placed with ``any`` (several GPU locks, then the person's) race with
bookings on named cards and with other people's, and nothing deadlocks.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.booking import Actor, BookingService
from bot.core.errors import CapacityError, PolicyViolation
from bot.core.limits import LimitName
from tests.conftest import ADMIN, at
from tests.test_service_scenarios import GB, all_bookings, book, holding_peak, notifications

CARDS = 6
HOUR = timedelta(hours=1)
ANA = Actor("UANA")


async def test_one_persons_racing_bookings_on_several_gpus_keep_max_held(
    service: BookingService,
) -> None:
    admin = Actor(ADMIN)
    for n in range(CARDS):
        await service.add_gpu(admin, f"rtx-{n}", "24GB")
    await service.set_limit(admin, "everyone", LimitName.MAX_HELD, 30 * GB)
    await service.set_limit(admin, "everyone", LimitName.MAX_OPEN, 4)
    racing = [
        *(book(service, ANA, "10GB", at(10), at(12), gpu=f"rtx-{n}") for n in range(CARDS)),
        *(book(service, ANA, "10GB", at(10), at(12), gpu=None) for _ in range(CARDS)),
        *(book(service, Actor(f"U{n}"), "10GB", at(10), at(12), gpu=None) for n in range(4)),
    ]
    outcomes = await asyncio.gather(*racing, return_exceptions=True)
    unexpected = [
        o
        for o in outcomes
        if isinstance(o, BaseException) and not isinstance(o, PolicyViolation | CapacityError)
    ]
    assert unexpected == []
    anas = [b for b in await all_bookings(service) if b.user_id == "UANA"]
    assert len(anas) == 3  # 3 × 10 GB = 30 GB held at once: the limit, never past it
    others = [b for b in await all_bookings(service) if b.user_id != "UANA"]
    assert len(others) == 4  # other people are not held back by Ana's limit


async def test_releases_racing_with_queue_moves_and_new_bookings_never_overbook(
    service: BookingService,
) -> None:
    """Releases (each followed by a queue pass) race with each other and with new bookings:
    no card is over-full, and every move is recorded once, with one DM, always earlier."""
    admin = Actor(ADMIN)
    for n in range(2):
        await service.add_gpu(admin, f"rtx-{n}", "24GB")
    blockers = [
        await book(service, Actor(f"UB{n}"), "24GB", at(8), at(12), gpu=f"rtx-{n}")
        for n in range(2)
    ]
    queued = [
        await service.create_flexible(Actor(f"UQ{n}"), memory="8GB", duration=2 * HOUR, task="q")
        for n in range(6)
    ]
    assert all(q.start == at(12) for q in queued)
    racing = [
        *(service.release(Actor(b.user_id), b.id) for b in blockers),
        *(book(service, Actor(f"UN{n}"), "8GB", at(9), at(10), gpu=None) for n in range(4)),
    ]
    outcomes = await asyncio.gather(*racing, return_exceptions=True)
    assert [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, CapacityError)
    ] == []
    held = await all_bookings(service)
    for gpu in ("rtx-0", "rtx-1"):
        assert await holding_peak(service, gpu) <= 24 * GB
    entries = [e for e in await service.audit_log(admin, limit=1000) if e.action == "move"]
    notices = [n for n in await notifications(service) if n.kind == "moved"]
    assert len(entries) == len(notices) >= 1
    for entry in entries:
        assert entry.details["after"]["start"] < entry.details["before"]["start"]
    moved = {b.id: b for b in held}
    assert all(moved[q.id].start < at(12) for q in queued[:3])  # 3 × 8 GB fit at once now
