"""Reads at scale: what each interactive answer costs with 20 GPUs/10,000 bookings and with
200 GPUs/100,000 bookings, on SQLite and PostgreSQL.

An answer should cost what it shows, not the history behind it: a list shows one page, status one
line per GPU, the calendar one card's day. So the figures at the two sizes should stay close for
those, however many bookings came before. Each call is timed the way a request runs it: the
handler (the same function the verb registry dispatches to) with its service calls and its Block
Kit, against a database seeded with bulk inserts: half of the bookings in the past 55 days
(completed, a few cancelled), half in the next 55 days (upcoming, a few cancelled), those under
way now active. Every GPU's bookings are laid out in four lanes of at most a fifth of the card
each, so no card is ever over-full and a small create always fits.

Every card also has an agent reporting on it, with 35 days of measured use as the roll-up leaves
it (:mod:`bot.lifecycle.usage_rollup`, seeded by :mod:`bench.usage_seed`): hourly rows with
running totals, and the last hour of 15-second samples, of which the last 3½ minutes are not
summed yet (the most a card is ever behind). ``admin stats 30d`` reads the measured side too; ``measured 30d`` times that side alone.
The statistics' settled days are read once after the seed, as ``gpubook serve`` reads them at start.

``--explain`` prints the query plan of every statement each call sends (at the largest size), so
an index review reads from the real queries rather than from copies.

Run: ``.venv/bin/python -m bench.scale_bench [--quick] [--backends sqlite,postgres] [--explain]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text

from bench.common import (
    ADMIN,
    GIB,
    T0,
    add_gpus,
    backends_and_machine,
    parse_args,
    percentiles_ms,
    postgres_database,
    print_table,
    sqlite_database,
    time_async_ns,
    write_results,
)
from bench.usage_seed import seed_usage
from bot.booking import Actor, BookingService, ServiceConfig
from bot.booking.measured import measured_totals
from bot.core.clock import FrozenClock
from bot.core.vocabulary import BookingStatus
from handlers.commands import admin_answers, answers
from handlers.commands.syntax import AdminStats, Book, Calendar, Free, ListBookings, Status
from handlers.context import Deps
from handlers.home import publish_home
from handlers.pipeline import Request
from handlers.users import UserDirectory
from storage.db import Database
from storage.models import Booking

PG_SCHEMA = "gpubook_scale_bench"
#: How far back and ahead of "now" the seeded bookings reach.
SPREAD = timedelta(days=55)
USERS = 50
LANES = 4
CARD_SIZES_GIB = (24, 48, 80)
CANCELLED_SHARE = 0.05
#: Whose bookings `list` and the App Home show.
VIEWER = Actor("U007")
INSERT_CHUNK = 5_000


@dataclass(frozen=True)
class Size:
    gpus: int
    bookings: int

    @property
    def label(self) -> str:
        return f"{self.gpus}/{self.bookings:,}"


SIZES = (Size(20, 10_000), Size(200, 100_000))
QUICK_SIZES = (Size(2, 200), Size(4, 400))
#: What is timed, in the order of the table.
CALLS = (
    "status",
    "free 20GB for 4h",
    "list",
    "list all",
    "admin stats 30d",
    "measured 30d",
    "App Home build",
    "calendar 1 card 1 day",
    "create",
)


def lane_rows(rng: random.Random, gpu_id: int, capacity_mib: int, count: int) -> list[dict]:
    """``count`` bookings on one GPU in :data:`LANES` lanes that never overlap within a lane,
    each holding at most a fifth of the card: the card is never over-full."""
    rows = []
    per_lane = [count // LANES + (1 if i < count % LANES else 0) for i in range(LANES)]
    first, last = T0 - SPREAD, T0 + SPREAD
    span_s = int((last - first).total_seconds())
    for lane, n in enumerate(per_lane):
        starts = sorted(first + timedelta(seconds=rng.randrange(span_s)) for _ in range(n))
        for i, start in enumerate(starts):
            length = timedelta(minutes=rng.randrange(30, 8 * 60))
            end = min(start + length, starts[i + 1] if i + 1 < n else last + length)
            if end - start < timedelta(minutes=5):
                end = start + timedelta(minutes=5)
                if i + 1 < n and end > starts[i + 1]:
                    continue  # no room before the lane's next booking
            user = f"U{rng.randrange(USERS):03d}"
            status = (
                BookingStatus.COMPLETED
                if end <= T0
                else BookingStatus.ACTIVE
                if start <= T0
                else BookingStatus.UPCOMING
            )
            if status != BookingStatus.ACTIVE and rng.random() < CANCELLED_SHARE:
                status = BookingStatus.CANCELLED
            rows.append(
                {
                    "team_id": ADMIN.team_id,
                    "gpu_id": gpu_id,
                    "user_id": user,
                    "task": f"seeded lane {lane} #{i}",
                    "memory_mib": rng.randrange(GIB, capacity_mib // 5 + 1),
                    "start_at": start,
                    "end_at": end,
                    "original_end_at": end,
                    "status": status,
                    "end_reason": "ended" if status == BookingStatus.COMPLETED else None,
                    "created_by": user,
                    "created_at": start - timedelta(days=1),
                    "updated_at": start - timedelta(days=1),
                }
            )
    return rows


async def seed(db: Database, service: BookingService, size: Size, rng: random.Random) -> None:
    """GPUs through the service (as an admin adds them); bookings and measured use by bulk
    insert."""
    sizes = [CARD_SIZES_GIB[i % len(CARD_SIZES_GIB)] for i in range(size.gpus)]
    ids = await add_gpus(service, sizes)
    rows: list[dict] = []
    for n, (gpu_id, gib) in enumerate(zip(ids, sizes, strict=True)):
        count = size.bookings // size.gpus + (1 if n < size.bookings % size.gpus else 0)
        rows.extend(lane_rows(rng, gpu_id, gib * GIB, count))
    for i in range(0, len(rows), INSERT_CHUNK):
        async with db.write() as session:
            await session.execute(insert(Booking), rows[i : i + INSERT_CHUNK])
    await seed_usage(db, ids, rng)
    if db.backend == "postgresql":  # what autovacuum does in production after bulk inserts
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("bookings", "usage_samples", "usage_hourly", "gpus", "agent_devices"):
                await conn.execute(text(f"VACUUM ANALYZE {table}"))


class _QuietClient:
    """Stands in for Slack's Web API where an answer publishes a view: nothing is sent."""

    async def views_publish(self, **_: Any) -> None:
        return None


def calls(deps: Deps, size: Size) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every call measured, as the request's handler runs it (service, then Block Kit)."""

    def request(actor: Actor) -> Request:
        return Request(deps, actor, _QuietClient(), "CBENCH", "", deps.now(), {})  # type: ignore[arg-type]

    viewer, admin = request(VIEWER), request(ADMIN)
    tomorrow = (T0 + timedelta(days=1)).date()
    created = itertools.count()

    async def create() -> object:
        # A fresh quarter-hour one GiB slot on each call, spread over the cards: always fits.
        i = next(created)
        start = T0 + timedelta(hours=1) + timedelta(minutes=15) * (i // size.gpus)
        book = Book(f"gpu-{i % size.gpus}", "1GB", start, start + timedelta(minutes=15), None, "b")
        return await answers.book(viewer, book)

    work = [
        lambda: answers.status(viewer, Status()),
        lambda: answers.free(viewer, Free("20GB", timedelta(hours=4))),
        lambda: answers.list_bookings(viewer, ListBookings(everyone=False)),
        lambda: answers.list_bookings(viewer, ListBookings(everyone=True)),
        lambda: admin_answers.stats(admin, AdminStats(days=30)),
        lambda: _measured_30d(deps),
        lambda: publish_home(deps, _QuietClient(), VIEWER),  # type: ignore[arg-type]
        lambda: answers.calendar(viewer, Calendar(f"gpu-{size.gpus // 2}", tomorrow)),
        create,
    ]
    return dict(zip(CALLS, work, strict=True))


async def _measured_30d(deps: Deps) -> object:
    async with deps.service.db.read() as session:
        return await measured_totals(
            session, ADMIN.team_id, deps.now() - timedelta(days=30), deps.now()
        )


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) sent while the block runs."""
    seen: list[tuple[str, Any]] = []

    def _seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", _seen)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", _seen)


async def explain(db: Database, call: Callable[[], Awaitable[object]]) -> list[str]:
    """The plan of every SELECT ``call`` sends that reads the bookings table."""
    with captured(db) as seen:
        await call()
    prefix = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
    plans = []
    async with db.engine.connect() as conn:
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")) or not any(
                t in statement for t in ("bookings", "usage_")
            ):
                continue
            result = await conn.exec_driver_sql(prefix + statement, parameters)
            lines = [" ".join(str(c) for c in row[-1:]) for row in result]
            plans.append(" ".join(statement.split())[:160] + "\n    " + "\n    ".join(lines))
    return plans


async def measure(
    db: Database, size: Size, reps: int, rng: random.Random, *, show_plans: bool
) -> dict[str, dict[str, float]]:
    clock = FrozenClock(T0)
    service = BookingService(db, ServiceConfig(), clock)
    await seed(db, service, size, rng)
    # As `gpubook serve` does when it starts: statistics' settled days read in the background.
    await service.keep_settled_days()
    await service.settled_days.drain()
    deps = Deps(service, UserDirectory())
    rows: dict[str, dict[str, float]] = {}
    for name, call in calls(deps, size).items():
        rows[name] = percentiles_ms(await time_async_ns(call, reps))
        if show_plans:
            print(f"\n[{db.backend} {size.label}] {name}")
            for plan in await explain(db, call):
                print("  " + plan)
    return rows


async def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    sizes = QUICK_SIZES if args.quick else SIZES
    reps = 3 if args.quick else args.reps
    backends, info = await backends_and_machine(args.backends, schema=PG_SCHEMA)
    results: dict[str, Any] = {"machine": info, "reps": reps, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            per_size: dict[str, Any] = {}
            for n, size in enumerate(sizes):
                db = (
                    await sqlite_database(Path(tmp) / f"scale-{size.gpus}.db")
                    if backend == "sqlite"
                    else await postgres_database(PG_SCHEMA)
                )
                if db is None:
                    break
                try:
                    rng = random.Random(args.seed + n)
                    explain_here = args.explain and size == sizes[-1]
                    per_size[size.label] = await measure(
                        db, size, reps, rng, show_plans=explain_here
                    )
                finally:
                    await db.dispose()
            results["backends"][backend] = per_size
            _print(backend, sizes, per_size)
    write_results("scale_bench", results, args.out)
    return results


def _print(backend: str, sizes: Sequence[Size], per_size: dict[str, Any]) -> None:
    if len(per_size) < len(sizes):
        return
    small, large = (per_size[s.label] for s in (sizes[0], sizes[-1]))
    print(f"\n{backend}: p50 / p95 in ms, GPUs/bookings {sizes[0].label} and {sizes[-1].label}")
    print_table(
        ["call", f"{sizes[0].label} p50", "p95", f"{sizes[-1].label} p50", "p95", "growth p50"],
        [
            [
                name,
                small[name]["p50_ms"],
                small[name]["p95_ms"],
                large[name]["p50_ms"],
                large[name]["p95_ms"],
                f"×{large[name]['p50_ms'] / small[name]['p50_ms']:.1f}",
            ]
            for name in small
        ],
    )


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=40, help="timed calls per case")
    parser.add_argument("--explain", action="store_true", help="print every query plan")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
