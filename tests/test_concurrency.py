"""Acceptance scenario 11: simultaneous requests never over-book a GPU, on SQLite and PostgreSQL.

40 requests of 4 GB for one window on a 24 GB card: exactly 6 succeed, 34 are refused for
capacity, and the bookings in the database never hold more than the card at any instant. The
requests come from 40 asyncio tasks sharing one service, and from several OS processes on one
database file / one PostgreSQL schema (``tests/procs/book_many.py``), which is what replicas
or a CLI next to the bot do. Mixed concurrent operations keep the same invariant.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.booking import Actor, BookingChange, BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.core.errors import CapacityError, GpubookError
from storage.db import Database
from storage.migrate import upgrade
from tests.conftest import ADMIN, PG_SCHEMA, T0, at, pg_database, require_postgres, reset_pg_schema
from tests.procs import run_together
from tests.test_service_scenarios import CARD, GB, add_gpu, all_bookings, book, holding_peak

REQUESTS = 40
FITTING = 6  # 6 × 4 GB = 24 GB
PROCESSES = 4
PROCS_SCHEMA = f"{PG_SCHEMA}_procs"


async def _assert_six_of_forty_and_no_overbooking(service: BookingService) -> None:
    held = await all_bookings(service)
    assert len(held) == FITTING
    assert all(b.memory_mib == 4 * GB for b in held)
    assert await holding_peak(service) == 24 * GB


async def test_forty_simultaneous_requests_from_one_process(service: BookingService) -> None:
    await add_gpu(service)
    outcomes = await asyncio.gather(
        *(book(service, Actor(f"U{i}"), "4GB", at(10), at(12)) for i in range(REQUESTS)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, CapacityError)]
    booked = [o for o in outcomes if not isinstance(o, BaseException)]
    assert (len(booked), len(refused)) == (FITTING, REQUESTS - FITTING), outcomes
    assert all("24 GB of 24 GB already held" in str(r) for r in refused)
    await _assert_six_of_forty_and_no_overbooking(service)


async def test_simultaneous_any_gpu_requests_fill_every_card_and_never_deadlock(
    service: BookingService,
) -> None:
    """`any` locks every candidate GPU in id order: racing placements (on PostgreSQL, several
    transactions locking several rows) neither over-book a card nor deadlock."""
    await add_gpu(service)  # rtx-0, 24 GB
    await service.add_gpu(Actor(ADMIN), "rtx-1", "24GB")
    await service.add_gpu(Actor(ADMIN), "a100-1", "48GB")
    outcomes = await asyncio.gather(
        *(book(service, Actor(f"U{i}"), "8GB", at(10), at(12), gpu=None) for i in range(16)),
        return_exceptions=True,
    )
    unexpected = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, CapacityError) for o in unexpected), unexpected
    booked = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(booked) == 12  # 3 + 3 + 6 slices of 8 GB: every card full, none over
    per_gpu = {
        name: sum(b.memory_mib for b in booked if b.gpu_name == name)
        for name in (CARD, "rtx-1", "a100-1")
    }
    assert per_gpu == {CARD: 24 * GB, "rtx-1": 24 * GB, "a100-1": 48 * GB}


# ---------------------------------------------------------------------------- several processes


async def _run_processes(url: str, schema: str | None) -> list[dict[str, object]]:
    """Start the booking processes, release them together once all are ready, collect results."""
    per_process = REQUESTS // PROCESSES
    common = [
        f"--url={url}",
        f"--gpu={CARD}",
        f"--count={per_process}",
        "--memory=4GB",
        f"--start={at(10).isoformat()}",
        f"--end={at(12).isoformat()}",
        f"--now={T0.isoformat()}",
    ] + ([f"--schema={schema}"] if schema else [])
    return await run_together("book_many", [[f"--name=p{n}", *common] for n in range(PROCESSES)])


def _assert_totals(results: list[dict[str, object]]) -> None:
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    assert sum(r["booked"] for r in results) == FITTING  # type: ignore[misc]
    assert sum(r["refused"] for r in results) == REQUESTS - FITTING  # type: ignore[misc]


def _service(db: Database) -> BookingService:
    """The parent's view of the shared database, at the same frozen "now" as the processes."""
    return BookingService(db, ServiceConfig(admins=frozenset({ADMIN})), FrozenClock(T0))


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[tuple[str, Database]]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    db = Database(url)
    await upgrade(db)
    yield url, db
    await db.dispose()


@pytest.fixture
async def pg_schema() -> AsyncIterator[tuple[str, Database]]:
    """A schema of this run's own that the processes and this test share."""
    url = require_postgres()
    await reset_pg_schema(url, PROCS_SCHEMA)
    db = pg_database(url, PROCS_SCHEMA)
    await upgrade(db)
    yield url, db
    await db.dispose()


@pytest.mark.slow
async def test_processes_on_one_sqlite_file(sqlite_file: tuple[str, Database]) -> None:
    url, db = sqlite_file
    service = _service(db)
    await add_gpu(service)
    _assert_totals(await _run_processes(url, None))
    await _assert_six_of_forty_and_no_overbooking(service)


@pytest.mark.slow
async def test_processes_on_one_postgres_database(pg_schema: tuple[str, Database]) -> None:
    url, db = pg_schema
    service = _service(db)
    await add_gpu(service)
    _assert_totals(await _run_processes(url, PROCS_SCHEMA))
    await _assert_six_of_forty_and_no_overbooking(service)


# ---------------------------------------------------------------------------- mixed operations


async def test_mixed_concurrent_operations_never_exceed_capacity(service: BookingService) -> None:
    """Creates, extends, memory changes and cancels racing on one card keep peak ≤ capacity.

    The card starts full from 10:00 to 12:00 with staggered bookings; every operation competes
    for the memory the others hold or free. Only refusals (GpubookError) are expected to fail.
    """
    await add_gpu(service)
    rng = random.Random(11)
    owners = [Actor(f"U{i}") for i in range(6)]
    seeded = [
        await book(service, owner, "4GB", at(10 + i % 2), at(12 + i % 2))
        for i, owner in enumerate(owners)
    ]
    operations: list[Callable[[], Awaitable[object]]] = []
    for i in range(12):
        start = at(9) + timedelta(minutes=30 * rng.randrange(8))
        operations.append(
            lambda i=i, start=start: book(
                service, Actor(f"UNEW{i}"), "4GB", start, start + timedelta(hours=2)
            )
        )
    for booking, owner in zip(seeded, owners, strict=True):
        operations.append(lambda b=booking, o=owner: service.extend(o, b.id, timedelta(hours=1)))
        operations.append(
            lambda b=booking, o=owner: service.update(o, b.id, BookingChange(memory="6GB"))
        )
    for booking, owner in list(zip(seeded, owners, strict=True))[::3]:
        operations.append(lambda b=booking, o=owner: service.cancel(o, b.id))
    rng.shuffle(operations)

    outcomes = await asyncio.gather(*(op() for op in operations), return_exceptions=True)

    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, GpubookError)
    ]
    assert unexpected == []
    assert any(isinstance(o, CapacityError) for o in outcomes)  # the operations did compete
    assert any(not isinstance(o, BaseException) for o in outcomes)
    assert await holding_peak(service) <= 24 * GB
