"""Every query behind an interactive read finds its bookings through an index.

A read that scans the bookings table costs the whole history, so each statement that status,
the lists (first and later pages), the App Home's week, statistics (settled days and the pieces
around them), the calendar and `free` (every round of its search) send is
EXPLAINed: on SQLite (as production runs it, without ANALYZE) each step over ``bookings`` must
be an index SEARCH; on PostgreSQL, with sequential scans priced out, no plan may still need one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from bot.booking import Actor, BookingService, search
from bot.core.clock import FrozenClock
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AgentDevice, Gpu, UsageSample
from tests.conftest import ADMIN, T0, at, pg_database, reset_pg_schema

ALICE = Actor("UALICE")
Read = Callable[[BookingService], Awaitable[object]]

READS: dict[str, Read] = {
    "status": lambda s: s.status(ALICE),
    "status of a large pool": lambda s: s.pool_status(ALICE, limit=1),
    "list": lambda s: s.list_bookings(ALICE, limit=16),
    "list, next page": lambda s: s.list_bookings(ALICE, after=(at(10), 1), limit=16),
    "list all": lambda s: s.list_bookings(ALICE, everyone=True, limit=16),
    "stats": lambda s: s.utilisation(Actor(ADMIN), T0 - timedelta(days=30), T0),
    "my week": lambda s: s.my_usage(ALICE, T0 - timedelta(days=7), T0),
    "calendar": lambda s: s.calendar(ALICE, "rtx-0", at(0, day=6), at(0, day=7)),
    "free": lambda s: s.free(ALICE, "22GB", timedelta(hours=30)),
    "free, read on in rounds": lambda s: free_in_rounds(s),
}


async def free_in_rounds(service: BookingService) -> object:
    """`free` with a first round of half an hour: the window (at 14:00) is found only after
    several rounds, each reading the bookings starting in its new stretch."""
    first, search.FIRST_REACH = search.FIRST_REACH, timedelta(minutes=30)
    try:
        return await service.free(ALICE, "22GB", timedelta(hours=30))
    finally:
        search.FIRST_REACH = first


@contextmanager
def statements(db: Database, table: str = "bookings") -> Iterator[list[tuple[str, Any]]]:
    """The reads over ``table`` sent while the block runs."""
    seen: list[tuple[str, Any]] = []

    def _seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and table in statement:
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)


async def plans(db: Database, read: Read, service: BookingService) -> list[list[str]]:
    with statements(db) as seen:
        await read(service)
    assert seen, "the read sent no query over bookings"
    found = []
    async with db.engine.connect() as conn:
        if db.backend == "postgresql":
            await conn.execute(text("SET enable_seqscan = off"))
        prefix = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
        for statement, parameters in seen:
            rows = await conn.exec_driver_sql(prefix + statement, parameters)
            found.append([str(row[-1]) for row in rows])
    return found


@pytest.mark.parametrize("read", list(READS))
async def test_each_read_reaches_bookings_through_an_index(
    service: BookingService, clock: FrozenClock, db: Database, read: str
) -> None:
    await service.add_gpu(Actor(ADMIN), "rtx-0", "24GB")
    # Under way now and handing its memory over at 9:00: status reads past the next start.
    await service.create(ALICE, gpu="rtx-0", memory="4GB", start=T0, end=at(9), task="now")
    for hour in (9, 11, 13):
        await service.create(
            ALICE, gpu="rtx-0", memory="4GB", start=at(hour), end=at(hour + 1), task="t"
        )
    for steps in await plans(db, READS[read], service):
        if db.backend == "sqlite":
            over_bookings = [s for s in steps if " bookings " in f"{s} "]
            assert over_bookings and all(
                s.startswith("SEARCH bookings USING ")
                and ("INDEX" in s or "PRIMARY KEY" in s)
                # A search on the workspace alone reads all of its bookings.
                and not s.endswith("(team_id=?)")
                for s in over_bookings
            ), steps
        else:
            assert not [s for s in steps if "Seq Scan on bookings" in s], steps


async def test_measured_stats_reach_samples_and_hours_through_their_keys(
    service: BookingService, db: Database
) -> None:
    """The measured half of statistics reads two hourly rows per bound card by (card, hour) and
    the samples not summed yet by (card, time), never every row kept."""
    from bot.booking.measured import measured_totals

    seen: list[tuple[str, Any]] = []

    def _seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "usage_samples" in statement or "usage_hourly" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        async with db.read() as session:
            await measured_totals(session, ALICE.team_id, T0 - timedelta(days=30), T0)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)
    assert len(seen) == 3  # running totals; unsummed samples per GPU, per login
    async with db.engine.connect() as conn:
        if db.backend == "postgresql":
            await conn.execute(text("SET enable_seqscan = off"))
        prefix = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
        for statement, parameters in seen:
            steps = [str(r[-1]) for r in await conn.exec_driver_sql(prefix + statement, parameters)]
            if db.backend == "sqlite":
                samples = [s for s in steps if "usage_samples" in s]
                hours = [s for s in steps if "usage_hourly" in s]
                assert all(
                    "USING INDEX ix_usage_samples_device_at (device_id=? AND at>? AND at<?)" in s
                    for s in samples
                ), steps
                assert all(
                    "USING INDEX sqlite_autoindex_usage_hourly_1 (device_id=? AND hour<?)" in s
                    for s in hours
                ), steps
                assert samples or len(hours) == 4, steps
            else:
                scans = ("Seq Scan on usage_samples", "Seq Scan on usage_hourly")
                assert not [s for s in steps if any(scan in s for scan in scans)], steps
                # Per card, by its own range: not every sample, filtered afterwards.
                per_card = "(device_id = agent_devices.id) AND (at >= GREATEST("
                assert "usage_samples" not in statement or any(per_card in s for s in steps)


async def test_held_against_measured_reads_only_each_cards_latest_report(
    service: BookingService, db: Database
) -> None:
    """Status, the App Home and the calendar show each card's latest reading (one row per card
    in agent_devices): never samples or hourly rows, whatever the history."""
    seen: list[str] = []

    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        await service.live_cards(ALICE)
        await service.live_cards(ALICE, "rtx-0")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)
    assert any("agent_devices" in s for s in seen)
    assert not [s for s in seen if "usage_samples" in s or "usage_hourly" in s]


async def test_postgres_reads_unsummed_samples_per_card_even_when_a_scan_looks_cheaper(
    pg_url: str,
) -> None:
    """With real statistics (analysed, sequential scans allowed) PostgreSQL still reads the
    samples not summed yet one index range per card, not every sample kept: 200 cards with an
    hour of samples each, of which the last minutes only are not summed (without LATERAL, it
    hash-joined all 48,000)."""
    from bot.booking.measured import measured_totals

    await reset_pg_schema(pg_url)
    db = pg_database(pg_url)
    try:
        await upgrade(db)
        async with db.write() as session:
            for n in range(200):
                session.add(
                    Gpu(
                        team_id=ALICE.team_id,
                        name=f"card-{n}",
                        capacity_mib=81920,
                        created_at=T0,
                        updated_at=T0,
                        device_uuid=f"GPU-{n}",
                    )
                )
                device = AgentDevice.first_seen(
                    ALICE.team_id,
                    f"GPU-{n}",
                    T0,
                    host="h",
                    index=n,
                    name="A100",
                    total_mib=81920,
                    used_mib=0,
                    rolled_to=T0 - timedelta(minutes=3),
                )
                session.add(device)
                await session.flush()
                await session.execute(
                    insert(UsageSample),
                    [
                        {
                            "device_id": device.id,
                            "at": T0 - timedelta(seconds=15 * k),
                            "seconds": 15,
                            "used_mib": k,
                            "users": {"alice": k},
                        }
                        for k in range(1, 241)
                    ],
                )
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        with statements(db, "usage_samples") as seen:
            async with db.read() as session:
                await measured_totals(session, ALICE.team_id, T0 - timedelta(days=30), T0)
        assert len(seen) == 2, seen
        async with db.engine.connect() as conn:
            for statement, parameters in seen:
                plan = [
                    str(r[0])
                    for r in await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
                ]
                assert not [s for s in plan if "Seq Scan on usage_samples" in s], plan
    finally:
        await db.dispose()
