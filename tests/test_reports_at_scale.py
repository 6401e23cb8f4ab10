"""The reads that now cost what they show (paged lists, status from the next start per GPU,
statistics summed by the database) give exactly what reading every booking gave.

Each is compared with a brute-force reference — the former algorithm, written out here over all
rows — on random bookings with awkward times: microseconds, shared starts, back-to-back
bookings handing the same memory over, cancelled and finished ones, another workspace's.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bot.booking import Actor, BookingService
from bot.core import capacity
from bot.core.clock import FrozenClock
from bot.core.snapshots import GpuStatus, Usage
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.models import Booking, Gpu
from tests.conftest import ADMIN, T0

GB = 1024
USERS = ["UA", "UB", "UC", "UD"]
CARDS = {"rtx-0": 24, "rtx-1": 48, "a100": 80}


async def seed(service: BookingService, rng: random.Random, count: int) -> list[dict]:
    """Random bookings on three cards (plus one card of another workspace), inserted directly:
    the reads must be right on any rows, not only on rows the rules let through."""
    admin = Actor(ADMIN)
    for name, gib in CARDS.items():
        await service.add_gpu(admin, name, f"{gib}GB")
    await service.add_gpu(Actor(ADMIN, team_id="TOTHER"), "rtx-0", "24GB")
    async with service.db.read() as session:
        gpus = list(await session.execute(select(Gpu.id, Gpu.team_id)))
    rows: list[dict] = []
    starts = [T0 + timedelta(minutes=rng.randrange(-3000, 3000)) for _ in range(count // 4)]
    for i in range(count):
        gpu_id, team = rng.choice(gpus)
        if rows and rng.random() < 0.2:  # back to back with an earlier booking, same memory
            prior = rng.choice(rows)
            start, mib, gpu_id, team = (
                prior["end_at"],
                prior["memory_mib"],
                prior["gpu_id"],
                prior["team_id"],
            )
        else:
            start = (
                rng.choice(starts)
                if rng.random() < 0.3
                else T0
                + timedelta(minutes=rng.randrange(-3000, 3000), microseconds=rng.randrange(10**6))
            )
            mib = rng.randrange(1, 8) * GB
        end = start + timedelta(minutes=rng.randrange(5, 900), microseconds=rng.randrange(10**6))
        status = rng.choice(list(BookingStatus))
        user = rng.choice(USERS)
        rows.append(
            {
                "team_id": team,
                "gpu_id": gpu_id,
                "user_id": user,
                "task": f"t{i}",
                "memory_mib": mib,
                "start_at": start,
                "end_at": end,
                "original_end_at": end,
                "status": status,
                "created_by": user,
                "created_at": T0,
                "updated_at": T0,
            }
        )
    async with service.db.write() as session:
        await session.execute(insert(Booking), rows)
        return [
            {"id": b.id, "gpu": b.gpu.name, **{k: getattr(b, k) for k in rows[0]}}
            for b in (await session.scalars(select(Booking))).unique()
        ]


def reference_status(rows: list[dict], now: datetime, horizon: datetime) -> list[tuple]:
    """The former status: every holding booking up to the horizon through the capacity profile."""
    result = []
    for name in sorted(CARDS):
        spans = [
            capacity.Span(r["start_at"], r["end_at"], r["memory_mib"])
            for r in rows
            if r["gpu"] == name
            and r["team_id"] == "T_LOCAL"
            and r["status"] in HOLDING_STATUSES
            and r["end_at"] > now
            and r["start_at"] < horizon
        ]
        steps = capacity.profile(spans, now, horizon)
        active = sum(1 for s in spans if s.start <= now < s.end)
        result.append((name, steps[0].used_mib, steps[1].start if len(steps) > 1 else None, active))
    return result


def reference_usage(rows: list[dict], start: datetime, end: datetime, by: str) -> dict:
    """The former statistics: every booking that held memory in the window, added up in Python."""
    totals: dict[str, tuple[int, int]] = {}
    for r in rows:
        if (
            r["team_id"] != "T_LOCAL"
            or r["status"] == BookingStatus.CANCELLED
            or not (r["start_at"] < end and r["end_at"] > start)
        ):
            continue
        overlap = min(r["end_at"], end) - max(r["start_at"], start)
        held, count = totals.get(r[by], (0, 0))
        totals[r[by]] = (held + r["memory_mib"] * int(overlap.total_seconds()), count + 1)
    return totals


def observed(statuses: list[GpuStatus]) -> list[tuple]:
    return [(s.gpu.name, s.used_mib, s.next_change, s.active_bookings) for s in statuses]


def as_totals(usages: list[Usage]) -> dict:
    return {u.key: (u.booked_mib_s, u.bookings) for u in usages if u.bookings}


@pytest.mark.parametrize("seed_no", [1, 2, 3])
async def test_reads_agree_with_reading_every_booking(
    service: BookingService, clock: FrozenClock, seed_no: int
) -> None:
    rng = random.Random(seed_no)
    rows = await seed(service, rng, 400)
    admin = Actor(ADMIN)
    for _ in range(6):
        # Now: a random instant, or one where bookings start or end (handovers happen there).
        edge = rng.choice(rows)[rng.choice(["start_at", "end_at"])]
        clock.set(edge if rng.random() < 0.5 else T0 + timedelta(minutes=rng.randrange(-900, 900)))
        horizon = clock() + service.policy.search_horizon
        assert observed(await service.status(admin)) == reference_status(rows, clock(), horizon)

        start = clock() - timedelta(days=rng.choice([1, 2, 7]), seconds=rng.randrange(86400))
        usage = await service.utilisation(admin, start, clock())
        assert as_totals(usage.per_gpu) == reference_usage(rows, start, clock(), "gpu")
        assert as_totals(usage.per_user) == reference_usage(rows, start, clock(), "user_id")
        mine = await service.my_usage(Actor("UB"), start, clock())
        expected = reference_usage(rows, start, clock(), "user_id").get("UB", (0, 0))
        assert (mine.booked_mib_s, mine.bookings) == expected


@pytest.mark.parametrize("everyone", [False, True])
async def test_pages_follow_one_another_without_gap_or_repeat(
    service: BookingService, everyone: bool
) -> None:
    rows = await seed(service, random.Random(7), 300)
    viewer = Actor("UB")
    expected = sorted(
        (r["start_at"], r["id"])
        for r in rows
        if r["team_id"] == "T_LOCAL"
        and r["status"] in HOLDING_STATUSES
        and (everyone or r["user_id"] == "UB")
    )
    everything = await service.list_bookings(viewer, everyone=everyone)
    assert [(b.start, b.id) for b in everything] == expected
    paged: list[tuple[datetime, int]] = []
    after = None
    while True:
        page = await service.list_bookings(viewer, everyone=everyone, after=after, limit=7)
        assert len(page) <= 7
        paged += [(b.start, b.id) for b in page]
        if len(page) < 7:
            break
        after = (page[-1].start, page[-1].id)
    assert paged == expected
