"""What the usage roll-up costs the lifecycle sweep at 200 cards reporting every 15 seconds.

Each card is seeded as :mod:`bench.usage_seed` leaves it (35 days of hourly rows, the last hour
of samples, the last 3½ minutes not summed), then the roll-up runs as the sweep runs it, at
successive sweeps 30 s apart over 10 minutes of frozen time, new samples arriving between them
(one per card every 15 s). Printed: p50/p95/max of one sweep's roll-up, and how many samples a
sweep summed. Every card is written once per roll-up step (2 minutes), so most sweeps find
nothing due and cost one read.

Run: ``.venv/bin/python -m bench.rollup_bench [--quick] [--backends sqlite,postgres]``
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench.common import (
    GIB,
    T0,
    add_gpus,
    backends_and_machine,
    parse_args,
    percentiles_ms,
    postgres_database,
    print_table,
    sqlite_database,
    write_results,
)
from bench.usage_seed import SAMPLE_EVERY, seed_usage
from bot.booking import BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.lifecycle.usage_rollup import roll_up
from storage.db import Database
from storage.models import AgentDevice, UsageSample

PG_SCHEMA = "gpubook_rollup_bench"
SWEEP = timedelta(seconds=30)
RETENTION = timedelta(days=7)


async def measure(db: Database, cards: int, sweeps: int) -> dict[str, Any]:
    service = BookingService(db, ServiceConfig(), FrozenClock(T0))
    ids = await add_gpus(service, [80] * cards)
    await seed_usage(db, ids, random.Random(1))
    async with db.read() as session:
        devices = list(await session.scalars(select(AgentDevice.id)))
    timings, summed = [], []
    now = T0
    for _ in range(sweeps):
        async with db.write() as session:  # the reports that arrived since the last sweep
            await session.execute(
                insert(UsageSample),
                [
                    {
                        "device_id": d,
                        "at": now + k * SAMPLE_EVERY,
                        "seconds": 15,
                        "used_mib": 40 * GIB,
                        "users": {"alice": 40 * GIB},
                    }
                    for d in devices
                    for k in range(int(SWEEP / SAMPLE_EVERY))
                ],
            )
        now += SWEEP
        start = asyncio.get_running_loop().time()
        summed.append(await roll_up(db, now, RETENTION))
        timings.append(int((asyncio.get_running_loop().time() - start) * 1e9))
    return {**percentiles_ms(timings), "max_ms": max(timings) / 1e6, "samples_summed": summed}


async def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    cards, sweeps = (4, 6) if args.quick else (200, 20)
    backends, info = await backends_and_machine(args.backends, schema=PG_SCHEMA)
    results: dict[str, Any] = {"machine": info, "cards": cards, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            db = (
                await sqlite_database(Path(tmp) / "rollup.db")
                if backend == "sqlite"
                else await postgres_database(PG_SCHEMA)
            )
            if db is None:
                continue
            try:
                results["backends"][backend] = await measure(db, cards, sweeps)
            finally:
                await db.dispose()
    print_table(
        ["backend", "cards", "sweep p50 ms", "p95", "max", "samples summed per sweep"],
        [
            [
                b,
                cards,
                r["p50_ms"],
                r["p95_ms"],
                r["max_ms"],
                " ".join(map(str, r["samples_summed"])),
            ]
            for b, r in results["backends"].items()
        ],
    )
    write_results("rollup_bench", results, args.out)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
