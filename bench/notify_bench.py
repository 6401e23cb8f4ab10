"""Notification burst: 1,000 bookings starting in the same minute across 10 channels.

Ten GPUs, each with its own channel, hold 100 bookings each, all starting within one minute.
The bot sweeps once after that minute (``Lifecycle.advance`` then ``Notifier.flush``, as the
scheduler does) and keeps sweeping until every "started" notification is posted. Slack is the fake
Web API from the tests on loopback, so the figures are gpubook's own cost plus one local HTTP
round trip per call, not Slack's latency.

Reported: Slack calls made (a naive bot would make 1,000, one per booking; Slack allows about one
message per second per channel, so 100 messages in one channel take ~100 s), sweeps needed, and
wall time from the first sweep until all are announced, split into the database transitions and
the posting.

Run: ``.venv/bin/python -m bench.notify_bench [--quick] [--backends sqlite,postgres]``
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    ADMIN,
    GIB,
    T0,
    add_gpus,
    backends_and_machine,
    bulk_insert_bookings,
    parse_args,
    postgres_database,
    print_table,
    sqlite_database,
    write_results,
)
from bot.booking import BookingService, ServiceConfig
from bot.core.capacity import Span
from bot.core.clock import FrozenClock
from bot.lifecycle.sweep import Lifecycle
from bot.runtime.assembly import build_notifier
from bot.runtime.slack_client import build_client
from storage.db import Database
from storage.models import Notification
from tests.slackfake import FakeSlackWebAPI

CHANNELS = 10
FIRST_START = T0 + timedelta(minutes=1)
#: The first sweep after the burst minute; later sweeps follow every 30 s of frozen time.
SWEEP_AT = FIRST_START + timedelta(minutes=1)
SWEEP_EVERY = timedelta(seconds=30)
MAX_SWEEPS = 20


async def seed(db: Database, bookings: int) -> None:
    """Ten 1,000 GB GPUs with a channel each and ``bookings`` 1 GB bookings starting in one minute."""
    service = BookingService(db, ServiceConfig(admins=frozenset({ADMIN.user_id})), FrozenClock(T0))
    gpu_ids = await add_gpus(service, [1000] * CHANNELS)
    for n in range(CHANNELS):
        await service.edit_gpu(ADMIN, f"gpu-{n}", channel_id=f"CGPU{n}")
    per_gpu = bookings // CHANNELS
    for n, gpu_id in enumerate(gpu_ids):
        spans = [
            Span(
                FIRST_START + timedelta(seconds=(i * CHANNELS + n) * 60 // bookings),
                FIRST_START + timedelta(hours=2),
                GIB,
            )
            for i in range(per_gpu)
        ]
        await bulk_insert_bookings(db, gpu_id, spans)


async def unsent_starts(db: Database) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.kind == "started", Notification.sent_at.is_(None))
            )
            or 0
        )


async def bench_backend(
    make_db: Callable[[], Awaitable[Database | None]], bookings: int
) -> dict[str, Any] | None:
    db = await make_db()
    if db is None:
        return None
    try:
        await seed(db, bookings)
        clock = FrozenClock(SWEEP_AT)
        async with FakeSlackWebAPI() as fake:
            client = build_client("xoxb-bench", fake.base_url)
            lifecycle = Lifecycle(db, ServiceConfig(), clock)
            notifier = build_notifier(db, client, clock, worker_id="bench")
            advance_s = flush_s = 0.0
            sweeps, total_s = 0, 0.0
            began = time.perf_counter()
            while sweeps < MAX_SWEEPS:
                sweeps += 1
                t = time.perf_counter()
                counts = await lifecycle.advance(clock())
                advance_s += time.perf_counter() - t
                t = time.perf_counter()
                await notifier.flush(clock())
                flush_s += time.perf_counter() - t
                total_s = time.perf_counter() - began
                if counts.started and await unsent_starts(db) == 0:
                    break
                clock.advance(SWEEP_EVERY)
            calls = fake.calls_to("chat.postMessage", include_failed=True)
            fake.assert_all_valid()
        left = await unsent_starts(db)
    finally:
        await db.dispose()
    return {
        "bookings": bookings,
        "channels": CHANNELS,
        "slack_calls": len(calls),
        "calls_per_channel": round(len(calls) / CHANNELS, 2),
        "sweeps": sweeps,
        "unsent_after": left,
        "seconds_until_all_announced": round(total_s, 3),
        "advance_seconds": round(advance_s, 3),
        "flush_seconds": round(flush_s, 3),
    }


async def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    bookings = 100 if args.quick else 1000
    backends, info = await backends_and_machine(args.backends)
    results: dict[str, Any] = {"machine": info, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        factories: dict[str, Callable[[], Awaitable[Database | None]]] = {
            "sqlite": lambda: sqlite_database(Path(tmp) / "notify.db"),
            "postgres": postgres_database,
        }
        for backend in backends:
            row = await bench_backend(factories[backend], bookings)
            if row is not None:
                results["backends"][backend] = row
    print(f"\n{bookings} bookings starting in one minute across {CHANNELS} channels")
    print_table(
        ["backend", "Slack calls", "sweeps", "seconds", "advance s", "flush s", "unsent"],
        [
            [
                name,
                r["slack_calls"],
                r["sweeps"],
                r["seconds_until_all_announced"],
                r["advance_seconds"],
                r["flush_seconds"],
                r["unsent_after"],
            ]
            for name, r in results["backends"].items()
        ],
    )
    write_results("notify_bench", results, args.out)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
