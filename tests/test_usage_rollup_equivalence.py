"""Measured statistics read from rolled-up rows equal the same statistics read from every raw
sample, however far the roll-up has gone; and two replicas rolling up at once sum each sample
exactly once. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from bot.booking import measured
from bot.booking.measured import Measured, measured_totals
from bot.core.measure import Sample, hour_of
from bot.lifecycle import usage_rollup
from bot.lifecycle.usage_rollup import roll_up
from storage.db import Database
from storage.migrate import alembic_config, upgrade
from storage.models import AgentDevice, Gpu, UsageHour, UsageSample
from storage.types import UTCDateTime
from tests.conftest import T0, blank_database, pg_database, require_postgres

TEAM = "T_ROLL"
LOGINS = ["alice", "bob", "carol", "?"]
#: Samples from a day and a half before T0 to two days after it (UTC days cut through it).
FIRST = T0 - timedelta(days=1, hours=5, minutes=7)
LAST = T0 + timedelta(days=2)


async def _seed(
    db: Database,
    rng: random.Random,
    cards: int = 4,
    starts: dict[int, timedelta] | None = None,
    silences: dict[int, tuple[datetime, datetime]] | None = None,
) -> dict[int | None, list[Sample]]:
    """Bound cards and an unbound one (the last), reporting at irregular moments; the samples per
    GPU id (``None`` for the unbound card). Card ``n`` starts ``starts[n]`` after
    :data:`FIRST` and reports nothing within ``silences[n]``."""
    kept: dict[int | None, list[Sample]] = {}
    async with db.write() as session:
        for n in range(cards):
            uuid = f"GPU-{n}"
            gpu = None
            if n < cards - 1:
                gpu = Gpu(
                    team_id=TEAM,
                    name=f"card-{n}",
                    capacity_mib=81920,
                    created_at=FIRST,
                    updated_at=FIRST,
                    device_uuid=uuid,
                )
                session.add(gpu)
            device = AgentDevice.first_seen(
                TEAM, uuid, FIRST, host="h", index=n, name="A100", total_mib=81920, used_mib=0
            )
            session.add(device)
            await session.flush()
            samples = kept.setdefault(gpu.id if gpu else None, [])
            at = FIRST + (starts or {}).get(n, timedelta(0)) + timedelta(seconds=rng.randrange(600))
            quiet_from, quiet_to = (silences or {}).get(n, (LAST, LAST))
            while at < LAST:
                if quiet_from <= at < quiet_to:
                    at = quiet_to
                    continue
                users = {
                    login: rng.choice([None, rng.randrange(40_000)])
                    for login in rng.sample(LOGINS, rng.randrange(len(LOGINS)))
                }
                sample = Sample(at, rng.randrange(46), rng.randrange(81920), users)
                samples.append(sample)
                session.add(
                    UsageSample(
                        device_id=device.id,
                        at=sample.at,
                        seconds=sample.seconds,
                        used_mib=sample.used_mib,
                        users=sample.users,
                    )
                )
                at += timedelta(seconds=rng.randrange(30, 1500))
    return kept


def _reference(kept: dict[int | None, list[Sample]], start: datetime, end: datetime) -> Measured:
    """Every raw sample whose hour starts in the window, summed in Python."""
    per_gpu: dict[int, int] = {}
    per_login: dict[str, int] = {}
    for gpu_id, samples in kept.items():
        if gpu_id is None:
            continue
        per_gpu[gpu_id] = 0
        for s in samples:
            if start <= hour_of(s.at) < end:
                per_gpu[gpu_id] += s.used_mib * s.seconds
                for login, mib in s.users.items():
                    per_login[login] = per_login.get(login, 0) + (mib or 0) * s.seconds
    return Measured(per_gpu, {login: mib_s for login, mib_s in per_login.items() if mib_s})


def _windows(rng: random.Random) -> list[tuple[datetime, datetime]]:
    """Whole-hour, whole-day and ragged windows, short and long, some reaching past the data."""
    windows = [(FIRST - timedelta(days=3), LAST + timedelta(days=1)), (T0, T0 + timedelta(days=1))]
    for _ in range(10):
        start = FIRST + timedelta(seconds=rng.randrange(int((LAST - FIRST).total_seconds())))
        length = timedelta(seconds=rng.choice([1800, 3600, 5000, 86400, 2 * 86400 + 77]))
        windows.append((start, start + length))
    return windows


async def _measured(db: Database, windows: list[tuple[datetime, datetime]]) -> list[Measured]:
    async with db.read() as session:
        return [await measured_totals(session, TEAM, start, end) for start, end in windows]


async def _counts(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        return (
            await session.scalar(select(func.count()).select_from(UsageSample)) or 0,
            await session.scalar(select(func.count()).select_from(UsageHour)) or 0,
        )


async def test_stats_from_rollups_equal_stats_from_samples(db: Database) -> None:
    rng = random.Random(10)
    kept = await _seed(db, rng)
    windows = _windows(rng)
    expected = [_reference(kept, start, end) for start, end in windows]
    assert await _measured(db, windows) == expected  # nothing rolled up: raw samples only
    # The sweep at moments through the data (summing part of it, the last time part of an
    # hour), then long after it, when the retention has deleted every sample.
    for now in (
        T0 - timedelta(hours=20, minutes=1),
        T0 + timedelta(minutes=47),
        T0 + timedelta(days=1, hours=23, minutes=58),
        LAST + timedelta(days=9),
    ):
        await roll_up(db, now, retention=timedelta(days=1))
        assert await _measured(db, windows) == expected, now
    samples, hours = await _counts(db)
    assert samples == 0 and hours


async def test_two_replicas_rolling_up_at_once_sum_each_sample_once(db: Database) -> None:
    rng = random.Random(12)
    kept = await _seed(db, rng)
    total = sum(len(samples) for samples in kept.values())
    other = Database(db.url) if db.backend == "sqlite" else pg_database(require_postgres())
    try:
        moved = 0
        for now in (T0, T0 + timedelta(hours=7, minutes=3), LAST + timedelta(hours=1)):
            a, b = await asyncio.gather(
                roll_up(db, now, timedelta(days=30)), roll_up(other, now, timedelta(days=30))
            )
            moved += a + b
    finally:
        await other.dispose()
    assert moved == total
    async with db.read() as session:
        hourly = await session.scalar(select(func.sum(UsageHour.samples)))
        latest = list(
            await session.scalars(
                select(func.max(UsageHour.cum_used_mib_s)).group_by(UsageHour.device_id)
            )
        )
        whole = sum(s.used_mib * s.seconds for samples in kept.values() for s in samples)
    assert hourly == total
    assert sum(latest) == whole


async def test_upgrading_gives_existing_hourly_rows_their_running_totals(
    backend: str, tmp_path: Path
) -> None:
    database = await blank_database(backend, tmp_path)
    try:
        before = ScriptDirectory.from_config(alembic_config()).get_revision("usage_rollups")
        await upgrade(database, str(before.down_revision))
        devices = sa.table(
            "agent_devices",
            *(sa.column(c) for c in ("id", "team_id", "host", "uuid", "index", "name")),
            *(sa.column(c) for c in ("total_mib", "used_mib")),
            *(sa.column(c, sa.JSON()) for c in ("users", "prev_users", "seen")),
            *(sa.column(c, UTCDateTime()) for c in ("first_seen_at", "last_seen_at")),
        )
        hourly = sa.table(
            "usage_hourly",
            *(sa.column(c) for c in ("device_id", "samples", "seconds", "used_mib_s")),
            sa.column("max_used_mib"),
            sa.column("hour", UTCDateTime()),
            sa.column("users", sa.JSON()),
        )
        async with database.write() as session:
            for n in (1, 2):
                await session.execute(
                    sa.insert(devices).values(
                        id=n,
                        team_id=TEAM,
                        host="h",
                        uuid=f"GPU-{n}",
                        index=n,
                        name="A100",
                        total_mib=81920,
                        used_mib=0,
                        users={},
                        prev_users=None,
                        seen={},
                        first_seen_at=T0,
                        last_seen_at=T0,
                    )
                )
            for n, h, mib_s, users in (
                (1, 0, 100, {"alice": 60, "bob": 40}),
                (1, 2, 50, {"alice": 50}),
                (2, 1, 7, {"?": 7}),
            ):
                await session.execute(
                    sa.insert(hourly).values(
                        device_id=n,
                        hour=T0 + timedelta(hours=h),
                        samples=1,
                        seconds=15,
                        used_mib_s=mib_s,
                        max_used_mib=1,
                        users=users,
                    )
                )
        await upgrade(database)
        async with database.read() as session:
            rows = list(
                await session.execute(
                    select(
                        UsageHour.device_id, UsageHour.cum_used_mib_s, UsageHour.cum_users
                    ).order_by(UsageHour.device_id, UsageHour.hour)
                )
            )
            marks = set(await session.scalars(select(AgentDevice.rolled_to)))
    finally:
        await database.dispose()
    assert [tuple(r) for r in rows] == [
        (1, 100, {"alice": 60, "bob": 40}),
        (1, 150, {"alice": 110, "bob": 40}),
        (2, 7, {"?": 7}),
    ]
    assert marks == {None}


async def test_a_roll_up_committing_mid_read_leaves_the_totals_whole(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The running totals and the samples not summed yet are read in separate statements: a
    roll-up committing between them moves ``rolled_to`` past samples the totals read before it
    did not hold. The statistics' read sees one snapshot, so nothing falls between the two."""
    rng = random.Random(14)
    kept = await _seed(db, rng)
    windows = _windows(rng)
    expected = [_reference(kept, start, end) for start, end in windows]
    await roll_up(db, T0 - timedelta(hours=20, minutes=1), retention=timedelta(days=30))
    unsummed = measured._add_unsummed
    rolled: list[int] = []

    async def roll_up_first(*args: Any) -> None:
        if not rolled:
            rolled.append(await roll_up(db, T0 + timedelta(hours=9), timedelta(days=30)))
        await unsummed(*args)

    monkeypatch.setattr(measured, "_add_unsummed", roll_up_first)
    async with db.read(snapshot=True) as session:
        got = [await measured_totals(session, TEAM, start, end) for start, end in windows]
    assert rolled[0] > 0
    assert got == expected


async def test_batched_roll_ups_of_cards_at_different_marks_equal_the_samples(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards are summed a batch per transaction: cards of one batch at different marks (one
    starting a day late, so never rolled up when the others are; one silent for hours, so its
    latest hourly row is far behind its mark) each sum exactly their own samples."""
    monkeypatch.setattr(usage_rollup, "BATCH", 2)
    transactions = 0
    write = db.write

    def counted(**options: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return write(**options)

    monkeypatch.setattr(db, "write", counted)
    rng = random.Random(15)
    kept = await _seed(
        db,
        rng,
        cards=5,
        starts={1: timedelta(days=1, hours=3)},
        silences={2: (T0 - timedelta(hours=2), T0 + timedelta(hours=9, minutes=20))},
    )
    windows = _windows(rng)
    expected = [_reference(kept, start, end) for start, end in windows]
    total = sum(len(samples) for samples in kept.values())
    transactions = 0
    # The first roll-up: 5 cards, none more than a day to sum, in 3 transactions.
    moved = await roll_up(db, T0 - timedelta(hours=20, minutes=1), retention=timedelta(days=1))
    assert transactions == 3
    assert await _measured(db, windows) == expected
    for now in (
        T0 + timedelta(hours=7, minutes=3),
        T0 + timedelta(hours=9, minutes=59),
        LAST + timedelta(days=9),
    ):
        moved += await roll_up(db, now, retention=timedelta(days=1))
        assert await _measured(db, windows) == expected, now
    assert moved == total
    async with db.read() as session:
        rows = list(await session.scalars(select(UsageHour).order_by(UsageHour.hour)))
    by_card: dict[int, int] = {}
    for row in rows:
        by_card[row.device_id] = by_card.get(row.device_id, 0) + row.used_mib_s
        assert row.cum_used_mib_s == by_card[row.device_id]
