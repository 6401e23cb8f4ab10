"""A large pool's status: which GPUs are shown, the summary, and what a status reads.

Pure choices first (:mod:`bot.core.pool`), then the service on SQLite and PostgreSQL
(:mod:`bot.booking.pool`): a small pool is shown whole, exactly as ``status`` gives it; a large
one is summed up whole and shown in part, the asker's cards, cards needing a look, then room.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, Report
from bot.core.clock import FrozenClock
from bot.core.errors import NotFound
from bot.core.pool import CardNow, cards_to_show, matches, summarise
from tests.conftest import T0, refused

GB = 1024
ALICE, BOB = Actor("UALICE"), Actor("UBOB")


def card(name: str, held_gb: int, *, mine: bool = False, problem: bool = False) -> CardNow:
    return CardNow(int(name.split("-")[-1]), name, 24 * GB, held_gb * GB, mine, problem)


@pytest.mark.parametrize(
    ("pattern", "name", "covered"),
    [
        (None, "a100-3", True),
        ("a100-*", "a100-3", True),
        ("a100-*", "h100-3", False),
        ("a100", "a100-3", True),  # a plain word: names starting with it
        ("100", "a100-3", False),
        ("gpu-?", "gpu-1", True),
        ("gpu-?", "gpu-12", False),
        ("GPU-1", "gpu-1", True),
    ],
)
def test_a_filter_is_a_pattern_or_the_start_of_a_name(
    pattern: str | None, name: str, covered: bool
) -> None:
    assert matches(pattern, name) is covered


def test_shown_are_the_askers_then_those_to_look_at_then_the_most_room() -> None:
    cards = [
        card("gpu-0", 24),
        card("gpu-1", 10),
        card("gpu-2", 20, mine=True),
        card("gpu-3", 0),
        card("gpu-4", 24, problem=True),
        card("gpu-5", 0),
        card("gpu-6", 5),
    ]
    shown = [c.name for c in cards_to_show(cards, 5)]
    assert shown == ["gpu-2", "gpu-4", "gpu-3", "gpu-5", "gpu-6"]


def test_the_summary_covers_every_card() -> None:
    s = summarise([card("gpu-0", 24), card("gpu-1", 10), card("gpu-2", 0, problem=True)], "gpu")
    assert (s.gpus, s.capacity_mib, s.held_mib) == (3, 72 * GB, 34 * GB)
    assert (s.with_room, s.idle, s.problems, s.pattern) == (2, 1, 1, "gpu")


async def _pool(service: BookingService, admin: Actor, n: int) -> None:
    for i in range(n):
        await service.add_gpu(admin, f"gpu-{i:02d}", "24GB")


async def test_a_small_pool_is_shown_whole_as_status_gives_it(
    service: BookingService, admin: Actor
) -> None:
    await _pool(service, admin, 4)
    await service.create(
        ALICE, gpu="gpu-02", memory="8GB", start=T0, end=T0 + timedelta(hours=2), task="t"
    )
    pool = await service.pool_status(ALICE, limit=4)
    assert pool.complete and pool.shown == await service.status(ALICE)
    assert (pool.summary.gpus, pool.summary.held_mib, pool.summary.idle) == (4, 8 * GB, 3)


async def test_a_large_pool_shows_the_cards_that_matter_and_sums_up_all(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    await _pool(service, admin, 8)
    end = T0 + timedelta(hours=2)
    for gpu in ("gpu-00", "gpu-01", "gpu-03", "gpu-04", "gpu-05", "gpu-06"):
        await service.create(BOB, gpu=gpu, memory="20GB", start=T0, end=end, task="t")
    await service.create(BOB, gpu="gpu-07", memory="4GB", start=T0, end=end, task="t")
    await service.create(ALICE, gpu="gpu-06", memory="2GB", start=T0, end=end, task="t")
    # gpu-05's card measures 23 GB in use: beyond the 20 GB booked.
    await service.edit_gpu(admin, "gpu-05", device_uuid="GPU-5")
    _, secret = await service.create_agent_token(admin, "host-1")
    host = await service.authenticate_agent(secret)
    reading = DeviceReading("GPU-5", 0, "RTX 4090", 24 * GB, 23 * GB, ())
    await service.ingest_report(host, Report("host-1", T0, (reading,)))

    pool = await service.pool_status(ALICE, limit=4)
    assert not pool.complete
    # Alice's card, the card to look at, then the most room (gpu-02 idle, gpu-07 20 GB free).
    assert [s.gpu.name for s in pool.shown] == ["gpu-06", "gpu-05", "gpu-02", "gpu-07"]
    assert pool.shown[0] == next(s for s in await service.status(ALICE) if s.gpu.name == "gpu-06")
    assert list(pool.live) == ["gpu-05"] and pool.live["gpu-05"].over
    s = pool.summary
    assert (s.gpus, s.held_mib, s.capacity_mib) == (8, (6 * 20 + 4 + 2) * GB, 8 * 24 * GB)
    assert (s.with_room, s.idle, s.problems) == (8, 1, 1)

    narrowed = await service.pool_status(ALICE, "gpu-0[0-2]", limit=4)
    assert narrowed.complete and [s.gpu.name for s in narrowed.shown] == [
        "gpu-00",
        "gpu-01",
        "gpu-02",
    ]
    assert narrowed.summary.pattern == "gpu-0[0-2]"
    with refused(NotFound, "No GPU's name matches `a100`"):
        await service.pool_status(ALICE, "a100")
