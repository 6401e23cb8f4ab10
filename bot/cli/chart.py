"""``gpubook chart``: a GPU's memory timeline over a day or a week, written as a PNG file.

The same picture `/gpubook chart` sends in Slack (:mod:`bot.render.chart`), without anyone's
bookings highlighted and with owners shown by their Slack user ids (the command line has no
Slack to ask for names).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.booking import BookingService
from bot.cli.registry import (
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    admin_actor,
    service_command,
    zone,
)
from bot.cli.wording import terminal_text
from bot.core.errors import InputError
from bot.core.timeparse import day_bounds, parse_day
from bot.render.chart import chart_png
from bot.runtime.config import Settings


def add_chart(commands: Subparsers) -> None:
    chart = add_command(
        commands,
        "chart",
        "Draw a GPU's memory held over a day or a week as a PNG file.",
        service_command(_chart),
    )
    chart.add_argument("gpu", help="the GPU to draw")
    view = chart.add_mutually_exclusive_group()
    view.add_argument(
        "--day", dest="week", action="store_false", default=False, help="one day (the default)"
    )
    view.add_argument("--week", dest="week", action="store_true", help="seven days from --date")
    chart.add_argument(
        "--date", default="today", help="the (first) day: today, friday, 2026-12-01 (default today)"
    )
    chart.add_argument(
        "--tz", type=zone, default=ZoneInfo("UTC"), help="the time zone of days and times (UTC)"
    )
    chart.add_argument(
        "--output", metavar="FILE", help="where to write it (default gpubook-GPU-DATE.png)"
    )


async def _chart(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    now = service.clock()
    try:
        day = parse_day(args.date, now=now, tz=args.tz)
    except InputError as exc:
        raise UsageError(f"--date: {terminal_text(exc, args.tz, now)}") from None
    start, end = day_bounds(day, args.tz, days=7 if args.week else 1)
    cal = await service.calendar(admin_actor(settings, args.tz), args.gpu, start, end)
    png = await asyncio.to_thread(chart_png, cal, now=now, tz=args.tz, week=args.week)
    suffix = "-week" if args.week else ""
    path = Path(args.output or f"gpubook-{cal.gpu.name}-{day.isoformat()}{suffix}.png")
    await asyncio.to_thread(path.write_bytes, png)
    print(f"Wrote the chart of {cal.gpu.name} to {path}.")
    return EXIT_OK
