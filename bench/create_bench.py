"""Create-booking throughput through the service, beside a bare INSERT loop on the same database.

A create is one transaction that locks the GPU, reads the overlapping bookings, checks capacity,
inserts the booking, an audit entry and an outbox notification. The bare loop inserts one booking
row per transaction with SQLAlchemy Core and nothing else, so ``service / bare`` is what the rules,
the audit trail and the outbox cost on top of the database's own commit.

Modes, each on a fresh database (a SQLite file in a temp dir; the ``gpubook_bench`` schema on
PostgreSQL): sequential creates on one GPU; 20 concurrent workers (``asyncio.gather``) on one GPU,
so they queue on its lock; 20 concurrent workers on 20 GPUs, one each. Windows never overlap, so
every create succeeds; a FrozenClock keeps them in the future.

Run: ``.venv/bin/python -m bench.create_bench [--quick] [--backends sqlite,postgres]``
PostgreSQL comes from ``GPUBOOK_TEST_PG_URL``; when it is unreachable a line says so and it is
skipped.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from bench.common import (
    ADMIN,
    GIB,
    T0,
    add_gpus,
    backends_and_machine,
    parse_args,
    postgres_database,
    print_table,
    sqlite_database,
    write_results,
)
from bot.booking import Actor, BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.core.vocabulary import BookingStatus
from storage.db import Database
from storage.models import Booking

SLOT = timedelta(minutes=10)
FIRST_START = T0 + timedelta(hours=1)
USER = Actor("UBENCH")


@dataclass(frozen=True)
class Mode:
    name: str
    workers: int
    gpus: int


MODES = (
    Mode("sequential, 1 GPU", 1, 1),
    Mode("20 concurrent, 1 GPU", 20, 1),
    Mode("20 concurrent, 20 GPUs", 20, 20),
)


@contextmanager
def statement_counter(db: Database) -> Iterator[list[int]]:
    """Counts the SQL statements sent while the block runs (the round trips a create costs)."""
    count = [0]

    def _count(*_: Any) -> None:
        count[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", _count)
    try:
        yield count
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _count)


async def timed(db: Database, ops: int, work: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    with statement_counter(db) as count:
        t = time.perf_counter_ns()
        await work()
        elapsed = (time.perf_counter_ns() - t) / 1e9
    return {
        "ops": ops,
        "seconds": round(elapsed, 3),
        "ops_per_s": round(ops / elapsed, 1),
        "statements_per_op": round(count[0] / ops, 2),
    }


async def service_run(db: Database, mode: Mode, ops: int) -> dict[str, Any]:
    """``ops`` creates split over ``mode.workers`` workers; booking ``i`` gets its own window."""
    service = BookingService(db, ServiceConfig(default_channel="CBENCH"), FrozenClock(T0))
    await add_gpus(service, [80] * mode.gpus)

    async def worker(w: int) -> None:
        for i in range(w, ops, mode.workers):
            start = FIRST_START + SLOT * (i // mode.gpus)
            await service.create(
                USER,
                gpu=f"gpu-{i % mode.gpus}",
                memory=8 * GIB,
                start=start,
                end=start + SLOT,
                task=f"bench {i}",
            )

    async def work() -> None:
        await asyncio.gather(*(worker(w) for w in range(mode.workers)))

    return {"mode": mode.name} | await timed(db, ops, work)


async def bare_run(db: Database, ops: int) -> dict[str, Any]:
    """One Core INSERT per transaction, sequential: the floor a create cannot go below."""
    (gpu_id,) = await add_gpus(BookingService(db, clock=FrozenClock(T0)), [80])

    async def work() -> None:
        for i in range(ops):
            start = FIRST_START + SLOT * i
            async with db.engine.begin() as conn:
                await conn.execute(
                    insert(Booking).values(
                        team_id=ADMIN.team_id,
                        gpu_id=gpu_id,
                        user_id=USER.user_id,
                        task=f"bare {i}",
                        memory_mib=8 * GIB,
                        start_at=start,
                        end_at=start + SLOT,
                        original_end_at=start + SLOT,
                        status=BookingStatus.UPCOMING,
                        created_by=USER.user_id,
                        created_at=T0,
                        updated_at=T0,
                    )
                )

    return {"mode": "bare INSERT, sequential"} | await timed(db, ops, work)


async def bench_backend(
    fresh: Callable[[], Awaitable[Database | None]], ops: int
) -> list[dict[str, Any]] | None:
    """Every mode plus the bare loop, each on a fresh database; None when the backend is down."""
    rows: list[dict[str, Any]] = []
    for run in [
        *(lambda db, m=m: service_run(db, m, ops) for m in MODES),
        lambda db: bare_run(db, ops),
    ]:
        db = await fresh()
        if db is None:
            return None
        try:
            rows.append(await run(db))
        finally:
            await db.dispose()
    bare = rows[-1]["ops_per_s"]
    for row in rows:
        row["vs_bare"] = round(row["ops_per_s"] / bare, 3)
    return rows


async def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    ops = 40 if args.quick else 500
    backends, info = await backends_and_machine(args.backends)
    results: dict[str, Any] = {"machine": info, "ops_per_mode": ops, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        fresh_files = (Path(tmp) / f"create-{n}.db" for n in range(len(MODES) + 1))
        factories: dict[str, Callable[[], Awaitable[Database | None]]] = {
            "sqlite": lambda: sqlite_database(next(fresh_files)),
            "postgres": postgres_database,
        }
        for backend in backends:
            rows = await bench_backend(factories[backend], ops)
            if rows is None:
                continue
            results["backends"][backend] = rows
            print(f"\n{backend}: {ops} creates per mode")
            print_table(
                ["mode", "ops/s", "seconds", "SQL stmts/op", "vs bare"],
                [
                    [r["mode"], r["ops_per_s"], r["seconds"], r["statements_per_op"], r["vs_bare"]]
                    for r in rows
                ],
            )
    write_results("create_bench", results, args.out)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
