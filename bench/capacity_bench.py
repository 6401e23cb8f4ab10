"""How long the capacity core takes on a busy GPU, and the service calls built on it.

One 80 GB GPU holds 10,000 bookings over ~60 days (seeded random). They are arranged so that
exactly ``overlap`` of them (100, then 1,000) overlap the queried 4-hour window and the rest do
not; the overlapping ones alone already exceed the card, so a create in that window is refused.
The background load averages well under the card, so a 40 GB search finds a slot after the
window, while a whole-card (80 GB) search never does and scans the full 30-day horizon.

Measured, p50/p95/p99 over many repetitions:

* ``fits`` given only the overlapping spans (what the SQL query returns);
* the service's check path without the database: filter the 10,000 spans to the overlapping
  ones, then ``fits`` (an upper bound for when the query is not selective);
* ``earliest_fit`` over a 30-day horizon given all 10,000 spans (found / nothing fits);
* ``BookingService.free()`` and a refused ``create()`` (which searches for suggestions) on a
  SQLite file holding the same 10,000 bookings, so the query and row decoding are included.

Run: ``.venv/bin/python -m bench.capacity_bench [--quick]``
"""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    GIB,
    T0,
    add_gpus,
    bulk_insert_bookings,
    machine,
    overlapping,
    parse_args,
    percentiles_ms,
    print_machine,
    print_table,
    sqlite_database,
    time_async_ns,
    time_ns,
    write_results,
)
from bot.booking import Actor, BookingService
from bot.core import capacity
from bot.core.capacity import Span
from bot.core.clock import FrozenClock
from bot.core.errors import CapacityError

CAPACITY_MIB = 80 * GIB
WINDOW_START = T0 + timedelta(days=30, hours=2)
WINDOW = timedelta(hours=4)
DAYS = 60
HORIZON = timedelta(days=30)
TARGET_CHECK_MS = 5.0
TARGET_SEARCH_MS = 20.0
USER = Actor("UBENCH")


@dataclass(frozen=True)
class Sizes:
    bookings: int
    overlaps: tuple[int, ...]
    core_reps: int
    search_reps: int
    service_reps: int


FULL = Sizes(
    bookings=10_000, overlaps=(100, 1_000), core_reps=1_000, search_reps=100, service_reps=30
)
QUICK = Sizes(bookings=1_000, overlaps=(100, 200), core_reps=20, search_reps=5, service_reps=3)


def make_spans(rng: random.Random, total: int, overlap: int) -> list[Span]:
    """``total`` bookings of 1–4 GB, exactly ``overlap`` of them overlapping the query window.

    Overlapping ones all hold the window's middle instant, so the window is over-full (at least
    one GB each) whenever ``overlap`` is 80 or more; the others are spread over 60 days and
    redrawn until they miss the window.
    """
    window_end = WINDOW_START + WINDOW
    middle = WINDOW_START + WINDOW / 2
    spans = [_span(rng, lambda length: middle - length * rng.random()) for _ in range(overlap)]
    while len(spans) < total:
        span = _span(rng, lambda _: T0 + timedelta(minutes=rng.uniform(60, DAYS * 24 * 60)))
        if span.end <= WINDOW_START or span.start >= window_end:
            spans.append(span)
    rng.shuffle(spans)
    return spans


def _span(rng: random.Random, start_for: Callable[[timedelta], datetime]) -> Span:
    """A 30 min – 4 h booking of 1–4 GB starting where ``start_for(its length)`` says."""
    length = timedelta(minutes=rng.randrange(30, 241, 5))
    start = start_for(length).replace(second=0, microsecond=0)
    return Span(start, start + length, rng.randint(1, 4) * GIB)


def bench_core(spans: list[Span], sizes: Sizes) -> list[dict[str, Any]]:
    start, end = WINDOW_START, WINDOW_START + WINDOW
    hits = overlapping(spans, start, end)
    rows = [
        _row(
            "fits (overlapping spans only)",
            len(hits),
            TARGET_CHECK_MS,
            time_ns(
                lambda: capacity.fits(hits, CAPACITY_MIB, 8 * GIB, start, end), sizes.core_reps
            ),
        ),
        _row(
            "filter all spans + fits",
            len(spans),
            TARGET_CHECK_MS,
            time_ns(
                lambda: capacity.fits(
                    overlapping(spans, start, end), CAPACITY_MIB, 8 * GIB, start, end
                ),
                sizes.core_reps,
            ),
        ),
    ]
    for gib in (40, 80):
        found = capacity.earliest_fit(
            spans, CAPACITY_MIB, gib * GIB, WINDOW, start, start + HORIZON
        )
        samples = time_ns(
            lambda gib=gib: capacity.earliest_fit(
                spans, CAPACITY_MIB, gib * GIB, WINDOW, start, start + HORIZON
            ),
            sizes.search_reps,
        )
        rows.append(
            _row(f"earliest_fit {gib} GB x 4h, 30 d", len(spans), TARGET_SEARCH_MS, samples)
            | {"found": found.isoformat() if found else None}
        )
    with frozen_gc():
        samples = time_ns(
            lambda: capacity.earliest_fit(
                spans, CAPACITY_MIB, 40 * GIB, WINDOW, start, start + HORIZON
            ),
            sizes.search_reps,
        )
    rows.append(_row("earliest_fit 40 GB, gc.freeze()d", len(spans), TARGET_SEARCH_MS, samples))
    return rows


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Move every live object out of the collector's reach, as a server could after start-up.

    The search allocates thousands of short-lived steps, which triggers full collections that
    walk every long-lived object; this row shows how much of the tail that is.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def bench_service(spans: list[Span], sizes: Sizes, path: Path) -> list[dict[str, Any]]:
    """``free()`` and a refused ``create()`` against the same bookings in a SQLite file."""
    db = await sqlite_database(path)
    try:
        service = BookingService(db, clock=FrozenClock(T0))
        (gpu_id,) = await add_gpus(service, [80])
        await bulk_insert_bookings(db, gpu_id, spans)
        rows = []
        for gib in (40, 80):
            samples = await time_async_ns(
                lambda gib=gib: service.free(
                    USER, f"{gib}GB", WINDOW, gpu="gpu-0", not_before=WINDOW_START
                ),
                sizes.service_reps,
            )
            rows.append(_row(f"service.free() {gib} GB x 4h", len(spans), None, samples))
        rows.append(
            _row(
                "service.create() refused + suggestions",
                len(spans),
                None,
                await time_async_ns(lambda: _refused_create(service), sizes.service_reps),
            )
        )
        return rows
    finally:
        await db.dispose()


async def _refused_create(service: BookingService) -> None:
    try:
        await service.create(
            USER,
            gpu="gpu-0",
            memory="8GB",
            start=WINDOW_START,
            end=WINDOW_START + WINDOW,
            task="bench",
        )
    except CapacityError:
        return
    raise AssertionError("the benchmark create should have been refused: the window is over-full")


def _row(case: str, spans: int, target_ms: float | None, samples: list[int]) -> dict[str, Any]:
    return {"case": case, "spans": spans, "target_p95_ms": target_ms} | percentiles_ms(samples)


async def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    sizes = QUICK if args.quick else FULL
    info = machine()
    print_machine(info)
    results: dict[str, Any] = {"machine": info, "bookings": sizes.bookings, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for overlap in sizes.overlaps:
            spans = make_spans(random.Random(args.seed), sizes.bookings, overlap)
            rows = bench_core(spans, sizes)
            rows += await bench_service(spans, sizes, Path(tmp) / f"capacity-{overlap}.db")
            results["runs"].append({"overlapping": overlap, "rows": rows})
            print(f"\n{sizes.bookings:,} bookings on one 80 GB GPU, {overlap:,} overlap the window")
            print_table(
                ["case", "spans", "p50 ms", "p95 ms", "p99 ms", "target p95", "n"],
                [
                    [
                        r["case"],
                        r["spans"],
                        r["p50_ms"],
                        r["p95_ms"],
                        r["p99_ms"],
                        _target(r),
                        r["n"],
                    ]
                    for r in rows
                ],
            )
            for r in rows:
                if "found" in r:
                    print(f"  {r['case']}: earliest start {r['found'] or 'none within 30 days'}")
    write_results("capacity_bench", results, args.out)
    return results


def _target(row: dict[str, Any]) -> str:
    target = row["target_p95_ms"]
    if target is None:
        return "-"
    return f"< {target:g} ms " + ("ok" if row["p95_ms"] < target else "MISSED")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return asyncio.run(run(argv))


if __name__ == "__main__":
    main()
