"""One person's bookings racing on different GPUs never pass a limit that spans cards.

Each GPU has its own lock, so two bookings by one person on two cards would both read the same
"already held" and both pass max-held; the per-person lock row serialises them (see the lock
order in :mod:`bot.booking.limits`). Runs on SQLite and PostgreSQL, where the transactions
really overlap; bookings placed with ``any`` (several GPU locks, then the person's) race with
bookings on named cards and with other people's, and nothing deadlocks.
"""

from __future__ import annotations

import asyncio

from bot.booking import Actor, BookingService
from bot.core.errors import CapacityError, PolicyViolation
from bot.core.limits import LimitName
from tests.conftest import ADMIN, at
from tests.test_service_scenarios import GB, all_bookings, book

CARDS = 6
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
