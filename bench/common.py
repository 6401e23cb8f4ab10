"""Plumbing shared by the benchmarks: the machine, timing, percentiles, tables, JSON and databases.

Figures are only comparable with the machine they came from, so every script prints it and stores
it beside the numbers. Databases are built through the real migrations and the real service, so a
benchmark measures what production runs, not a look-alike schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bot.booking import Actor, BookingService
from bot.core.capacity import Span
from bot.core.vocabulary import BookingStatus
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Booking
from tests.conftest import PG_URL, pg_database, reset_pg_schema

RESULTS_DIR = Path(__file__).with_name("results")
#: "Now" in every benchmark (the test calendar's T0), so generated windows are in the future.
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
GIB = 1024
PG_SCHEMA = "gpubook_bench"
ADMIN = Actor("UADMIN", is_workspace_admin=True)


def parse_args(
    description: str,
    argv: Sequence[str] | None,
    more: Callable[[argparse.ArgumentParser], object] | None = None,
) -> argparse.Namespace:
    """The options every benchmark shares: ``--quick`` for the smoke test, ``--out`` for JSON;
    ``more`` adds a benchmark's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the script runs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for the JSON")
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated (DB benchmarks only)"
    )
    if more is not None:
        more(parser)
    return parser.parse_args(argv)


def overlapping(spans: Sequence[Span], start: datetime, end: datetime) -> list[Span]:
    """What the service's SQL query selects: spans with ``end > start and start < end``."""
    return [s for s in spans if s.end > start and s.start < end]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(pg_version: str | None = None) -> dict[str, Any]:
    """What the figures depend on besides the code."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if pg_version is not None:
        info["postgresql"] = pg_version
    return info


def print_machine(info: dict[str, Any]) -> None:
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))


def time_ns(fn: Callable[[], object], repetitions: int, warmup: int = 3) -> list[int]:
    """Wall time of ``repetitions`` calls of ``fn``, after a few untimed calls to warm caches."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repetitions):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return samples


async def time_async_ns(
    fn: Callable[[], Awaitable[object]], repetitions: int, warmup: int = 3
) -> list[int]:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(repetitions):
        t = time.perf_counter_ns()
        await fn()
        samples.append(time.perf_counter_ns() - t)
    return samples


def percentiles_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (inclusive method: defined for any sample of two or more)."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return {
        "n": len(samples_ns),
        "p50_ms": round(cuts[49] / 1e6, 4),
        "p95_ms": round(cuts[94] / 1e6, 4),
        "p99_ms": round(cuts[98] / 1e6, 4),
    }


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 3
        return f"{value:,.{digits}f}"
    return str(value)


def write_results(name: str, results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {path}")
    return path


# ---------------------------------------------------------------------- databases


async def sqlite_database(path: Path) -> Database:
    """A migrated SQLite file: the embedded default deployment."""
    db = Database(f"sqlite:///{path}")
    await upgrade(db)
    return db


async def postgres_database(schema: str = PG_SCHEMA) -> Database | None:
    """A migrated, empty ``schema``, or None (with a line saying why) if PG is down."""
    try:
        await asyncio.wait_for(reset_pg_schema(PG_URL, schema), 5)
    except Exception as exc:  # any failure to connect means: skip PostgreSQL
        print(f"PostgreSQL at {PG_URL} not reachable ({type(exc).__name__}: {exc}); skipping it")
        return None
    db = pg_database(PG_URL, schema)
    await upgrade(db)
    return db


async def table_bytes(db: Database, table: str) -> int:
    """What ``table`` takes on disk with its indexes: SQLite's ``dbstat`` (the pages in use)
    or PostgreSQL's ``pg_total_relation_size``."""
    if db.backend == "sqlite":
        query = (
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name = :table)"
        )
    else:
        query = "SELECT pg_total_relation_size(:table)"
    async with db.read() as session:
        return int(await session.scalar(text(query), {"table": table}) or 0)


async def pg_server_version(db: Database) -> str:
    async with db.read() as session:
        return str(await session.scalar(text("SHOW server_version")))


async def backends_and_machine(
    requested: str, schema: str = PG_SCHEMA
) -> tuple[list[str], dict[str, Any]]:
    """The backends to measure (PostgreSQL dropped, with a line, when unreachable) and the
    machine facts, printed: every database benchmark starts this way."""
    backends = [b.strip() for b in requested.split(",") if b.strip()]
    pg_version = None
    if "postgres" in backends:
        probe = await postgres_database(schema)
        if probe is None:
            backends.remove("postgres")
        else:
            pg_version = await pg_server_version(probe)
            await probe.dispose()
    info = machine(pg_version)
    print_machine(info)
    return backends, info


async def bulk_insert_bookings(db: Database, gpu_id: int, spans: Sequence[Span]) -> None:
    """Insert upcoming bookings straight into the table: seeding 10,000 rows via the service
    would take minutes and measure nothing of interest."""
    rows = [
        {
            "team_id": ADMIN.team_id,
            "gpu_id": gpu_id,
            "user_id": f"U{i % 40:03d}",
            "task": f"seeded {i}",
            "memory_mib": s.mib,
            "start_at": s.start,
            "end_at": s.end,
            "original_end_at": s.end,
            "status": BookingStatus.UPCOMING,
            "created_by": f"U{i % 40:03d}",
            "created_at": T0,
            "updated_at": T0,
        }
        for i, s in enumerate(spans)
    ]
    async with db.write() as session:
        await session.execute(insert(Booking), rows)


async def add_gpus(service: BookingService, sizes_gib: Sequence[int]) -> list[int]:
    """GPUs ``gpu-0``, ``gpu-1``… added through the service; returns their ids."""
    return [
        (await service.add_gpu(ADMIN, f"gpu-{i}", size * GIB)).id
        for i, size in enumerate(sizes_gib)
    ]
