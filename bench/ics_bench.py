"""How long a calendar feed of 1,000 bookings takes: rendering, reading, and the whole request.

One 80 GB GPU with 1,000 upcoming bookings (bulk-inserted into a migrated SQLite file) and a
GPU feed link through the real service. Measured, p50/p95/p99 over repetitions:

- rendering the iCalendar bytes *cold* (the per-event cache emptied before every run: every
  event is built again from ``icalendar``'s types) — the target is < 100 ms — and *warm* (events
  unchanged since the last request, as for a subscriber polling an unchanged calendar);
- ``BookingService.calendar_feed``: the token lookup and the bookings' read;
- a ``GET /ics/<token>.ics`` over loopback HTTP on the real endpoint (warm), and the same GET
  answered ``304 Not Modified`` through ``If-None-Match``.

Beside wall time, the median CPU time of this process (``time.process_time``) is shown: on a
shared machine it says more about the code than wall time does.

Run: ``.venv/bin/python -m bench.ics_bench [--quick]``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    ADMIN,
    GIB,
    T0,
    add_gpus,
    bulk_insert_bookings,
    machine,
    parse_args,
    percentiles_ms,
    print_machine,
    print_table,
    sqlite_database,
    time_async_ns,
    time_ns,
    write_results,
)
from bot.booking import BookingService
from bot.core.capacity import Span
from bot.core.clock import FrozenClock
from bot.render import ics
from bot.runtime.runner import start_http

FULL = {"bookings": 1000, "repetitions": 30}
QUICK = {"bookings": 20, "repetitions": 3}


def _cpu_ms(fn: Any, repetitions: int) -> float:
    """Median CPU time of ``fn()`` in milliseconds."""
    samples = []
    for _ in range(repetitions):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1e3)
    return round(statistics.median(samples), 3)


async def _cpu_ms_async(fn: Any, repetitions: int) -> float:
    samples = []
    for _ in range(repetitions):
        started = time.process_time()
        await fn()
        samples.append((time.process_time() - started) * 1e3)
    return round(statistics.median(samples), 3)


def _cold(feed: Any) -> None:
    ics._event_ics.cache_clear()
    ics.feed_ics(feed)


async def run(argv: Sequence[str] | None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    size = QUICK if args.quick else FULL
    n, reps = size["bookings"], size["repetitions"]
    info = machine()
    print_machine(info)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = await sqlite_database(Path(tmp) / "ics.db")
        service = BookingService(db, clock=FrozenClock(T0))
        [gpu_id] = await add_gpus(service, [80])
        spans = [
            Span(T0 + timedelta(hours=2 * i), T0 + timedelta(hours=2 * i + 1), GIB)
            for i in range(n)
        ]
        await bulk_insert_bookings(db, gpu_id, spans)
        token = await service.issue_calendar_link(ADMIN, "gpu-0")
        feed = await service.calendar_feed(token)
        assert feed is not None and len(feed.entries) == n
        body = ics.feed_ics(feed)
        cold = time_ns(lambda: _cold(feed), reps)
        rows.append(
            {
                "case": "render, cold",
                **percentiles_ms(cold),
                "cpu_p50_ms": _cpu_ms(lambda: _cold(feed), reps),
            }
        )
        warm = time_ns(lambda: ics.feed_ics(feed), reps)
        rows.append(
            {
                "case": "render, warm",
                **percentiles_ms(warm),
                "cpu_p50_ms": _cpu_ms(lambda: ics.feed_ics(feed), reps),
            }
        )
        read = await time_async_ns(lambda: service.calendar_feed(token), reps)
        read_cpu = await _cpu_ms_async(lambda: service.calendar_feed(token), reps)
        rows.append(
            {"case": "service.calendar_feed", **percentiles_ms(read), "cpu_p50_ms": read_cpu}
        )
        runner = await start_http(None, {}, host="127.0.0.1", port=0, service=service)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/ics/{token}.ics"
        try:
            async with aiohttp.ClientSession() as session:

                async def fetch(**headers: str) -> tuple[int, str]:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        return response.status, response.headers["ETag"]

                status, etag = await fetch()
                assert status == 200
                full = await time_async_ns(fetch, reps)
                full_cpu = await _cpu_ms_async(fetch, reps)
                rows.append(
                    {"case": "GET 200 (warm)", **percentiles_ms(full), "cpu_p50_ms": full_cpu}
                )
                same = await time_async_ns(lambda: fetch(**{"If-None-Match": etag}), reps)
                same_cpu = await _cpu_ms_async(lambda: fetch(**{"If-None-Match": etag}), reps)
                assert (await fetch(**{"If-None-Match": etag}))[0] == 304
                rows.append({"case": "GET 304", **percentiles_ms(same), "cpu_p50_ms": same_cpu})
        finally:
            await runner.cleanup()
            await db.dispose()
    print(f"\nfeed of {n} bookings: {len(body):,} bytes")
    print_table(
        ["case", "n", "p50 ms", "p95 ms", "p99 ms", "CPU p50 ms"],
        [[r["case"], r["n"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["cpu_p50_ms"]] for r in rows],
    )
    results = {"machine": info, "bookings": n, "bytes": len(body), "rows": rows}
    write_results("ics_bench", results, args.out)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
