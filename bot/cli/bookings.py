"""``gpubook book`` and ``gpubook cancel``: bookings made and cancelled for someone, under the
same rules as in Slack."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC

from bot.booking import Actor, BookingService
from bot.cli.identities import check_in_slack, user_argument
from bot.cli.registry import (
    EXIT_OK,
    Subparsers,
    add_command,
    admin_actor,
    argument_type,
    booking_size,
    service_command,
    when,
    zone_option,
)
from bot.cli.wording import TerminalText
from bot.core.timefmt import zoned_window
from bot.core.units import parse_duration
from bot.core.wording import render
from bot.runtime.config import Settings


def add_book(commands: Subparsers) -> None:
    book = add_command(
        commands,
        "book",
        "Book GPU memory for someone; prints the new booking's id.",
        service_command(_book),
    )
    book.add_argument("gpu", metavar="GPU", help="a GPU name, or 'any' to pick the best fit")
    book.add_argument(
        "size", metavar="SIZE", type=argument_type(booking_size), help="like '20GB' or '50%%'"
    )
    book.add_argument(
        "--user",
        required=True,
        type=user_argument,
        help="Slack user id of the owner, like U0123ABCD (checked with Slack when "
        "SLACK_BOT_TOKEN is set)",
    )
    book.add_argument(
        "--start",
        required=True,
        metavar="WHEN",
        help="'now', ISO 8601 with an offset, or 'YYYY-MM-DD HH:MM' in --tz",
    )
    length = book.add_mutually_exclusive_group(required=True)
    length.add_argument(
        "--end",
        metavar="WHEN",
        help="same forms as --start, read from the start: '17:00' is the first 17:00 after it",
    )
    length.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        type=argument_type(parse_duration),
        help="like '3h' or '1h30m'",
    )
    book.add_argument("--task", required=True, metavar="TEXT")
    book.add_argument(
        "--override-limits",
        action="store_true",
        help="book past the owner's limits (max-held, max-gbh, max-open); audited",
    )
    zone_option(book)


async def _book(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    await check_in_slack(settings, user=args.user)
    now = service.clock()
    start = when(args.start, now, args.tz, "start")
    end = None if args.end is None else when(args.end, now, args.tz, "end", start=start.at)
    booking = await service.create(
        admin_actor(settings, args.tz),
        gpu=None if args.gpu.strip().lower() == "any" else args.gpu,
        memory=args.size,
        start=start.at,
        end=start.at + args.duration if end is None else end.at,
        task=args.task,
        user_id=args.user,
        override_limits=args.override_limits,
    )
    print(booking.id)
    # How a wall time was read on a DST day: worth knowing, but not the booking id scripts read.
    for note in (*start.notes, *(end.notes if end else ())):
        print(render(note, TerminalText(args.tz, now)), file=sys.stderr)
    return EXIT_OK


def add_cancel(commands: Subparsers) -> None:
    _add_change(commands, "cancel", "Cancel a booking that has not started.", "Cancelled")


def add_release(commands: Subparsers) -> None:
    _add_change(commands, "release", "End a running booking now, freeing its memory.", "Released")


def _add_change(commands: Subparsers, verb: str, summary: str, done: str) -> None:
    """``cancel`` and ``release``: one booking by id, as an admin or as its owner."""

    async def change(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
        await check_in_slack(settings, user=args.user)
        actor = Actor(args.user, settings.team) if args.user else admin_actor(settings)
        booking = await getattr(service, verb)(actor, args.booking_id)
        window = zoned_window(booking.start, booking.end, UTC, service.clock())
        print(
            f"{done} booking #{booking.id} on '{booking.gpu_name}' ({window}, {booking.user_id})."
        )
        return EXIT_OK

    parser = add_command(commands, verb, summary, service_command(change))
    parser.add_argument("booking_id", metavar="ID", type=int)
    parser.add_argument(
        "--user",
        type=user_argument,
        help="act as this Slack user (their own rights) instead of as an admin",
    )
