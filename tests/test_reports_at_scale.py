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

from bot.booking import Actor, BookingService, search
from bot.booking.totals import SettledDays, midnight
from bot.core import capacity
from bot.core.clock import FrozenClock
from bot.core.snapshots import GpuStatus, Usage
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.models import Booking, Gpu
from tests.conftest import ADMIN, T0

GB = 1024
USERS = ["UA", "UB", "UC", "UD"]
CARDS = {"rtx-0": 24, "rtx-1": 48, "a100": 80}


async def seed(
    service: BookingService,
    rng: random.Random,
    count: int,
    *,
    minutes: tuple[int, int] = (-3000, 3000),
    longest: int = 900,
    now: datetime | None = None,
) -> list[dict]:
    """Random bookings on three cards (plus one card of another workspace), inserted directly:
    the reads must be right on any rows, not only on rows the rules let through. Starts fall
    ``minutes`` around T0, lengths up to ``longest`` minutes; statuses are random, or as the
    lifecycle leaves them at ``now`` (a few cancelled) when it is given."""
    admin = Actor(ADMIN)
    for name, gib in CARDS.items():
        await service.add_gpu(admin, name, f"{gib}GB")
    await service.add_gpu(Actor(ADMIN, team_id="TOTHER"), "rtx-0", "24GB")
    async with service.db.read() as session:
        gpus = list(await session.execute(select(Gpu.id, Gpu.team_id)))
    rows: list[dict] = []
    starts = [T0 + timedelta(minutes=rng.randrange(*minutes)) for _ in range(count // 4)]
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
                + timedelta(minutes=rng.randrange(*minutes), microseconds=rng.randrange(10**6))
            )
            mib = rng.randrange(1, 8) * GB
        end = start + timedelta(
            minutes=rng.randrange(5, longest), microseconds=rng.randrange(10**6)
        )
        status = rng.choice(list(BookingStatus)) if now is None else lifecycle(start, end, now, rng)
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


def lifecycle(start: datetime, end: datetime, now: datetime, rng: random.Random) -> BookingStatus:
    if start <= now < end:
        return BookingStatus.ACTIVE
    if rng.random() < 0.1:
        return BookingStatus.CANCELLED
    return BookingStatus.COMPLETED if end <= now else BookingStatus.UPCOMING


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
        # Whole seconds, each end cut to its second: what adds up piece by piece (days).
        overlap = whole_second(min(r["end_at"], end)) - whole_second(max(r["start_at"], start))
        held, count = totals.get(r[by], (0, 0))
        totals[r[by]] = (held + r["memory_mib"] * int(overlap.total_seconds()), count + 1)
    return totals


def whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


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


@pytest.mark.parametrize("seed_no", [11, 12])
async def test_statistics_from_settled_days_agree_with_reading_every_booking(
    service: BookingService, clock: FrozenClock, seed_no: int
) -> None:
    """Long windows are added up from settled days kept by the service and the pieces around
    them read anew: the totals are those of every booking, on the first read and the next,
    after days pass, and with a booking made since."""
    rng = random.Random(seed_no)
    now = T0 + timedelta(hours=rng.randrange(24), microseconds=rng.randrange(10**6))
    rows = await seed(service, rng, 500, minutes=(-14 * 1440, 3 * 1440), longest=3000, now=now)
    admin = Actor(ADMIN)

    async def agree(start: datetime, end: datetime) -> None:
        usage = await service.utilisation(admin, start, end)
        assert as_totals(usage.per_gpu) == reference_usage(rows, start, end, "gpu")
        assert as_totals(usage.per_user) == reference_usage(rows, start, end, "user_id")

    for _ in range(4):
        clock.set(now)
        days = timedelta(days=rng.choice([3, 7, 12, 20]), seconds=rng.randrange(86400))
        await agree(now - days, now)  # summed directly, the days read in the background
        await service.settled_days.drain()
        await agree(now - days, now)  # the settled days kept
        await agree(now - days - timedelta(days=2), now - timedelta(days=rng.randrange(4)))
        # From a UTC midnight: no piece before the first day, yet bookings from before count.
        await agree(midnight(now - days), now)
        await agree(midnight(now - days - timedelta(days=1)), midnight(now))
        assert len(service.settled_days) >= 2
        now += timedelta(days=1, seconds=rng.randrange(3600))
    mine = next(r for r in rows if r["team_id"] == "T_LOCAL")
    late = {**mine, "start_at": now + timedelta(minutes=1), "end_at": now + timedelta(hours=2)}
    late.update(status=BookingStatus.UPCOMING, memory_mib=3 * GB)
    async with service.db.write() as session:
        await session.execute(
            insert(Booking), [{k: v for k, v in late.items() if k not in ("id", "gpu")}]
        )
    rows.append(late)
    clock.set(now + timedelta(hours=3))
    await agree(now - timedelta(days=9), clock())


async def test_nobody_waits_for_the_settled_days_to_be_read(
    service: BookingService, clock: FrozenClock
) -> None:
    """The first statistics of a long window are summed directly (the same totals) and the days
    read after answering, in the background; ``gpubook serve`` reads the last 30 days' at start."""
    now = T0 + timedelta(hours=5)
    rows = await seed(service, random.Random(7), 300, minutes=(-14 * 1440, 1440), now=now)
    clock.set(now)
    admin, start = Actor(ADMIN), now - timedelta(days=10)
    expected = reference_usage(rows, start, now, "gpu")
    assert as_totals((await service.utilisation(admin, start, now)).per_gpu) == expected
    assert len(service.settled_days) == 0  # answered before reading any day
    await service.settled_days.drain()
    assert len(service.settled_days) >= 9
    assert as_totals((await service.utilisation(admin, start, now)).per_gpu) == expected

    restarted = BookingService(service.db, service.config, clock)
    await restarted.keep_settled_days()
    await restarted.settled_days.drain()
    assert len(restarted.settled_days) >= 9 + 7
    assert as_totals((await restarted.utilisation(admin, start, now)).per_gpu) == expected


async def test_stopping_before_a_background_read_began_leaves_nothing_to_wait_for(
    service: BookingService,
) -> None:
    """A read cancelled before its first step never runs its body; ``stop`` must still end
    (the process stopping right after it started reading, with no turn of the loop between)."""
    days = SettledDays()
    first = midnight(T0 - timedelta(days=3))
    days.fill_later(service.db, Actor(ADMIN).team_id, (first, first + timedelta(days=2)))
    await days.stop()  # before this fix: drain() waited for ever
    await days.drain()
    assert len(days) == 0


async def test_settled_days_kept_for_a_later_window_still_cover_an_earlier_one(
    service: BookingService,
) -> None:
    """Days read for a later window, then a window reaching further back: the kept stretch would
    pass its bound, and the days dropped to keep it must not be the ones the window needs."""
    await seed(service, random.Random(5), 60, minutes=(-8 * 1440, 0))
    settled = SettledDays(max_days=5)
    day = midnight(T0)
    async with service.db.read() as session:
        await settled.cover(session, "T_LOCAL", day - timedelta(days=3), day + timedelta(days=2))
        kept = await settled.cover(session, "T_LOCAL", day - timedelta(days=6), day)
    wanted = [day - timedelta(days=n) for n in range(1, 7)]
    assert all(d in kept.days for d in wanted)
    assert len(kept.days) <= 6 and kept.first <= wanted[-1] and kept.last >= day


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


def reference_windows(
    rows: list[dict], asks: dict[str, int], duration: timedelta, start: datetime, until: datetime
) -> dict[str, tuple[datetime, int] | None]:
    """The former search: every holding booking of the whole horizon, per card, then
    ``earliest_fit`` and the spare memory at the window's peak."""
    found: dict[str, tuple[datetime, int] | None] = {}
    for name, mib in asks.items():
        cap = CARDS[name] * GB
        spans = [
            capacity.Span(r["start_at"], r["end_at"], r["memory_mib"])
            for r in rows
            if r["gpu"] == name
            and r["team_id"] == "T_LOCAL"
            and r["status"] in HOLDING_STATUSES
            and r["end_at"] > start
            and r["start_at"] < until + duration
        ]
        at = capacity.earliest_fit(spans, cap, mib, duration, start, until)
        spare = None if at is None else cap - capacity.peak(spans, at, at + duration).mib - mib
        found[name] = None if at is None else (at, spare)
    return found


def reference_best(found: dict[str, tuple[datetime, int] | None]) -> str | None:
    """Soonest, then the tightest fit, then the first card by name (the order GPUs are read)."""
    ranked = [(f, name) for name, f in sorted(found.items()) if f is not None]
    return min(ranked)[1] if ranked else None


@pytest.mark.parametrize("seed_no", [1, 2, 3, 4])
async def test_free_reading_ahead_in_rounds_finds_what_the_full_scan_finds(
    service: BookingService, clock: FrozenClock, seed_no: int
) -> None:
    """`free` reads each card only until its window is found, round by round; every card's
    window, its spare memory and the best card are the full scan's, windows near and far."""
    rng = random.Random(seed_no)
    rows = await seed(service, rng, 500)
    for _ in range(8):
        clock.set(T0 + timedelta(minutes=rng.randrange(-3000, 3000), seconds=rng.randrange(60)))
        gib = rng.choice([1, 8, 20, 23, 24, 40, 47, 60, 79, 80])
        duration = timedelta(minutes=rng.choice([5, 30, 90, 240, 600, 1440, 4000]))
        free = await service.free(Actor("UB"), f"{gib}GB", duration)
        until = clock() + service.policy.search_horizon
        expected = reference_windows(rows, {n: gib * GB for n in CARDS}, duration, clock(), until)
        assert {g.name: s and s.start for g, s in free.per_gpu} == {
            n: f and f[0] for n, f in expected.items()
        }
        best = reference_best(expected)
        assert (free.best and free.best.gpu_name) == best


@pytest.mark.parametrize("seed_no", [5, 6, 7])
async def test_a_search_for_the_soonest_card_stops_early_and_agrees(
    service: BookingService, seed_no: int
) -> None:
    """Searching only for the soonest card (a refusal's offer elsewhere) stops at the first
    round where some card fits, and still picks the full scan's card, start and spare memory —
    with any latest start, and leaving out a booking as an edit does."""
    rng = random.Random(seed_no)
    rows = await seed(service, rng, 500)
    async with service.db.read() as session:
        ids = dict(
            (await session.execute(select(Gpu.name, Gpu.id).where(Gpu.team_id == "T_LOCAL"))).all()
        )
    order = [ids[n] for n in sorted(CARDS)]
    for _ in range(10):
        start = T0 + timedelta(minutes=rng.randrange(-3000, 3000), microseconds=rng.randrange(9))
        latest = start + timedelta(hours=rng.choice([0, 3, 30, 70, 400]))
        duration = timedelta(minutes=rng.choice([5, 45, 300, 2000]))
        gib = rng.choice([4, 20, 30, 50, 78])
        skip = rng.choice([r for r in rows if r["team_id"] == "T_LOCAL"])
        kept = [r for r in rows if r["id"] != skip["id"]]
        asks = [search.Ask(ids[n], CARDS[n] * GB, gib * GB) for n in sorted(CARDS)]
        async with service.db.read() as session:
            every = await search.earliest_windows(
                session, asks, duration, start, latest, exclude=skip["id"]
            )
            first = await search.earliest_windows(
                session, asks, duration, start, latest, exclude=skip["id"], first_only=True
            )
        expected = reference_windows(kept, {n: gib * GB for n in CARDS}, duration, start, latest)
        assert {
            n: every[ids[n]] and (every[ids[n]].start, every[ids[n]].spare_mib) for n in CARDS
        } == expected
        best = reference_best(expected)
        found = search.soonest(first, order)
        assert (found and found[0]) == (best and ids[best])
        if best is not None:
            assert found is not None and (found[1].start, found[1].spare_mib) == expected[best]
