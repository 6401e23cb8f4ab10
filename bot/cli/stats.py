"""``gpubook stats``: GB·hours booked against available, and measured, per GPU and per user.

The same figures and the same line wording as the Slack command ``admin stats``
(:mod:`bot.core.stats`), as plain text: people appear by their Slack user id.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from bot.booking import BookingService
from bot.cli.registry import EXIT_OK, Subparsers, add_command, admin_actor, service_command
from bot.core.stats import MAX_STATS_DAYS, STATS_NOTE, gpu_line, unlinked_line, user_line
from bot.runtime.config import Settings


def _days(text: str) -> int:
    if text.isdigit() and 1 <= int(text) <= MAX_STATS_DAYS:
        return int(text)
    raise argparse.ArgumentTypeError(f"a number of days from 1 to {MAX_STATS_DAYS}")


def add_stats(commands: Subparsers) -> None:
    stats = add_command(
        commands,
        "stats",
        "GB·hours booked vs available, and measured by host agents, per GPU and per user.",
        service_command(_stats),
    )
    stats.add_argument(
        "--days", type=_days, default=7, help="the window: this many days up to now (default 7)"
    )


async def _stats(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    now = service.clock()
    start = now - timedelta(days=args.days)
    u = await service.utilisation(admin_actor(settings), start, now)
    lines = [
        f"Utilisation from {start:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC",
        gpu_line(u.total, "Total:"),
        "Per GPU:",
        *(gpu_line(g, f"  {g.key}") for g in u.per_gpu),
        "Per user:",
        *([user_line(p, f"  {p.key}") for p in u.per_user] or ["  No bookings in this window."]),
    ]
    if u.unlinked:
        lines += [
            "Unix logins nobody linked:",
            *(unlinked_line(x, f"  {x.key}") for x in u.unlinked),
        ]
    print("\n".join([*lines, STATS_NOTE]))
    return EXIT_OK
