"""How long the memory chart takes to draw: a week with 200 bookings, and a day.

The bookings are seeded (1–8 GB, 30 min – 10 h, spread over the week on one 80 GB card, several
owners, one of them the viewer), handed to the renderer as the service hands them
(``CalendarData``). The first render is reported apart: it imports matplotlib (and, on a fresh
machine, builds its font cache). Then p50/p95/p99 over repetitions — the target for the week
is < 1 s — with the PNG's size and, since wall time on a shared machine says little, the
median CPU time of this process (``time.process_time``).

Run: ``.venv/bin/python -m bench.chart_bench [--quick]`` (no database).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import (
    GIB,
    T0,
    machine,
    parse_args,
    percentiles_ms,
    print_machine,
    print_table,
    time_ns,
    write_results,
)
from bot.core.snapshots import BookingInfo, CalendarData, GpuInfo
from bot.core.vocabulary import BookingStatus
from bot.render.chart import chart_png

FULL = {"bookings": 200, "repetitions": 15}
QUICK = {"bookings": 10, "repetitions": 2}
ZONE = ZoneInfo("Europe/Berlin")
GPU = GpuInfo(1, "a100-1", 80 * GIB, "", None, False)


def week_of(rng: random.Random, n: int) -> CalendarData:
    start, end = T0, T0 + timedelta(days=7)
    bookings = []
    for i in range(n):
        begin = start + timedelta(minutes=rng.randrange(0, 7 * 24 * 60 - 30))
        stop = min(begin + timedelta(minutes=rng.randrange(30, 600)), end)
        user = f"U{rng.randrange(12):02d}"
        bookings.append(
            BookingInfo(
                i + 1,
                GPU.name,
                GPU.capacity_mib,
                user,
                f"task {i}",
                rng.randrange(1, 9) * GIB,
                begin,
                stop,
                stop,
                BookingStatus.UPCOMING,
                None,
                user,
                T0,
            )  # fmt: skip
        )
    return CalendarData(GPU, start, end, bookings, [])


def cpu_p50_ms(fn: Any, repetitions: int) -> float:
    samples = []
    for _ in range(repetitions):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1e3)
    return round(statistics.median(samples), 1)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    size = QUICK if args.quick else FULL
    info = machine()
    print_machine(info)
    week = week_of(random.Random(args.seed), size["bookings"])
    day = CalendarData(
        GPU,
        T0,
        T0 + timedelta(days=1),
        [b for b in week.bookings if b.start < week.start + timedelta(days=1)],
        [],
    )
    now = T0 + timedelta(days=2)

    def draw_week() -> bytes:
        return chart_png(week, now=now, tz=ZONE, week=True, viewer="U03")

    def draw_day() -> bytes:
        return chart_png(day, now=now, tz=ZONE, viewer="U03")

    started = time.perf_counter()
    png = draw_week()
    first_ms = (time.perf_counter() - started) * 1e3
    rows = [
        {
            "case": f"week, {len(week.bookings)} bookings",
            **percentiles_ms(time_ns(draw_week, size["repetitions"], 1)),
            "cpu_p50_ms": cpu_p50_ms(draw_week, size["repetitions"]),
        },
        {
            "case": f"day, {len(day.bookings)} bookings",
            **percentiles_ms(time_ns(draw_day, size["repetitions"], 1)),
            "cpu_p50_ms": cpu_p50_ms(draw_day, size["repetitions"]),
        },
    ]
    print(f"\nfirst render (imports matplotlib): {first_ms:,.0f} ms; week PNG {len(png):,} bytes")
    print_table(
        ["case", "n", "p50 ms", "p95 ms", "p99 ms", "CPU p50 ms"],
        [[r["case"], r["n"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["cpu_p50_ms"]] for r in rows],
    )
    results = {
        "machine": info,
        "first_render_ms": round(first_ms, 1),
        "png_bytes": len(png),
        "rows": rows,
    }
    write_results("chart_bench", results, args.out)
    return results


if __name__ == "__main__":
    main()
