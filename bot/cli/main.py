"""``gpubook``, the administrator's command line: a thin layer over the booking service.

It runs the same rules as Slack (every operation goes through :class:`BookingService`) and prints
the same sentences, so a refusal reads identically wherever it happens. The CLI acts as an admin
(user ``cli``) in the workspace ``GPUBOOK_TEAM`` unless ``--user`` says whom to act as.

Exit codes, for scripts: 0 done; 1 refused by a rule (the sentence is on stderr); 2 malformed
arguments or settings (nothing was attempted).

Every command that touches the database first migrates it (idempotent), so ``gpubook gpu add``
works on a fresh file. Adding a command (``serve``, ``console``): write a registrar that creates
its parser with :func:`add_command` and a :data:`Handler`, and list the registrar in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.booking import Actor, BookingService
from bot.cli.wording import terminal_text
from bot.console import add_console
from bot.core.clock import Clock, FrozenClock, system_clock
from bot.core.errors import GpubookError, InputError
from bot.core.snapshots import BookingInfo
from bot.core.timefmt import format_window, zone_label
from bot.core.timeparse import parse_when
from bot.core.units import MAX_MIB, format_size, parse_duration, parse_size
from bot.core.vocabulary import BookingStatus
from bot.runtime.config import Settings
from bot.runtime.runner import add_serve
from storage.db import Database
from storage.migrate import current_revision, upgrade

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
CLI_USER = "cli"
EXPORT_FIELDS = ("id", "gpu", "user", "task", "memory_mib", "start", "end", "status")

#: What a command runs: parsed arguments, settings and the clock in; exit code out.
Handler = Callable[[argparse.Namespace, Settings, Clock], int]
#: A command that works on the database, given a service over a migrated database.
ServiceCommand = Callable[[argparse.Namespace, BookingService, Settings], Awaitable[int]]
Subparsers = Any  # argparse's _SubParsersAction, which argparse does not export


class UsageError(Exception):
    """An argument that argparse accepted but that does not read (a time): exit 2, like argparse."""


# ---------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None, *, clock: Clock = system_clock) -> int:
    """Run one command; return its exit code (``--help`` and argparse errors included)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        settings = Settings.from_env()
    except InputError as exc:
        print(f"gpubook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args, settings, clock)
    except UsageError as exc:
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GpubookError as exc:
        print(terminal_text(exc, now=clock()), file=sys.stderr)
        return EXIT_REFUSED
    except (OSError, DBAPIError) as exc:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        print(f"gpubook: the database at {url} failed: {reason}", file=sys.stderr)
        return EXIT_REFUSED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpubook",
        description="Administer gpubook: GPUs, bookings and the database. "
        "Settings come from the environment (and .env); see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def add_command(
    subparsers: Subparsers, name: str, summary: str, handler: Handler
) -> argparse.ArgumentParser:
    """A leaf command: its parser knows its handler, and itself for usage errors found later."""
    parser = subparsers.add_parser(name, help=summary, description=summary)
    parser.set_defaults(handler=handler, command_parser=parser)
    return parser


def service_command(command: ServiceCommand) -> Handler:
    """Adapt ``command`` to a Handler that opens, migrates and closes the database around it."""

    def handler(args: argparse.Namespace, settings: Settings, clock: Clock) -> int:
        return asyncio.run(_with_service(command, args, settings, clock))

    return handler


async def _with_service(
    command: ServiceCommand, args: argparse.Namespace, settings: Settings, clock: Clock
) -> int:
    """Run ``command`` with the clock pinned to one whole second for the whole invocation.

    One instant per command makes `--start now --for 2h` last exactly two hours (the service
    would otherwise read a slightly later "now" than the CLI did) and keeps exported times tidy.
    """
    pinned = FrozenClock(clock().replace(microsecond=0))
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        service = BookingService(db, settings.service_config(), pinned)
        settings = replace(settings, team_id=await service.home_team(settings.team_id))
        return await command(args, service, settings)
    finally:
        await db.dispose()


def admin_actor(settings: Settings, tz: ZoneInfo = ZoneInfo("UTC")) -> Actor:
    return Actor(CLI_USER, settings.team, is_workspace_admin=True, tz=tz)


# ---------------------------------------------------------------------------- argument types


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn a gpubook parser into an argparse type, keeping its sentence as the error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(terminal_text(exc)) from None

    return convert


def _booking_size(text: str) -> int | str:
    """MiB, or the text of a percentage: only the service knows the chosen GPU's capacity.

    A percentage is still checked here (against the largest size there is) so a typo exits 2.
    """
    if text.strip().endswith("%"):
        parse_size(text, capacity_mib=MAX_MIB)
        return text
    return parse_size(text)


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r}; use an IANA name like `Europe/Berlin` or `UTC`."
        ) from None


def _when(text: str, now: datetime, tz: ZoneInfo, field: str) -> datetime:
    try:
        return parse_when(text, now=now, tz=tz, field=field)
    except InputError as exc:
        raise UsageError(f"--{field}: {terminal_text(exc)}") from None


# ---------------------------------------------------------------------------- db


def _add_db(commands: Subparsers) -> None:
    db = commands.add_parser(
        "db", help="manage the database schema", description="Manage the database schema."
    )
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_command(
        actions,
        "upgrade",
        "Apply the database migrations (safe to repeat) and print the revision reached.",
        service_command(_db_upgrade),
    )
    backup = add_command(
        actions,
        "backup",
        "Copy the SQLite database to FILE, safely while the bot runs (PostgreSQL: use pg_dump).",
        service_command(_db_backup),
    )
    backup.add_argument("file", metavar="FILE", help="where to write the copy (must not exist)")


async def _db_backup(args: argparse.Namespace, service: BookingService, _: Settings) -> int:
    target = Path(args.file)
    try:
        await service.db.backup_to(target)
    except FileExistsError:
        print(f"{target} already exists; give a new file name.", file=sys.stderr)
        return EXIT_REFUSED
    except ValueError as exc:
        print(f"{exc}.", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Backed up to {target}.")
    return EXIT_OK


async def _db_upgrade(args: argparse.Namespace, service: BookingService, _: Settings) -> int:
    # service_command has already migrated; report where that left the schema.
    print(f"Database is at revision {await current_revision(service.db)}.")
    return EXIT_OK


# ---------------------------------------------------------------------------- gpu


def _add_gpu(commands: Subparsers) -> None:
    gpu = commands.add_parser(
        "gpu", help="add, list, edit and retire GPUs", description="Manage GPUs."
    )
    actions = gpu.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_command(actions, "add", "Add a GPU with its memory.", service_command(_gpu_add))
    add.add_argument("name", metavar="NAME", help="like `a100-1` (lower case, digits, . _ -)")
    add.add_argument("size", metavar="SIZE", type=_argument_type(parse_size), help="like `80GB`")
    add.add_argument("--description", default="", metavar="TEXT")
    listing = add_command(
        actions, "list", "List every GPU, retired ones included.", service_command(_gpu_list)
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    edit = add_command(
        actions,
        "edit",
        "Resize, rename, describe a GPU or route its notifications; shrinking below what its "
        "bookings hold is refused.",
        service_command(_gpu_edit),
    )
    edit.add_argument("name", metavar="NAME")
    edit.add_argument("--size", type=_argument_type(parse_size), metavar="SIZE", help="like `80GB`")
    edit.add_argument("--rename", metavar="NEW", help="the GPU's new name")
    edit.add_argument("--description", metavar="TEXT", help='`""` clears it')
    edit.add_argument(
        "--channel",
        metavar="CHANNEL_ID",
        help="Slack channel id for this GPU's notifications; `\"\"` falls back to the workspace's",
    )
    retire = add_command(
        actions,
        "retire",
        "Retire a GPU; refused while it has upcoming or active bookings unless --cancel-future.",
        service_command(_gpu_retire),
    )
    retire.add_argument("name", metavar="NAME")
    retire.add_argument(
        "--cancel-future",
        action="store_true",
        help="cancel its upcoming bookings and end its active ones (their owners are told)",
    )


async def _gpu_add(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    gpu = await service.add_gpu(admin_actor(settings), args.name, args.size, args.description)
    print(f"Added GPU `{gpu.name}` with {format_size(gpu.capacity_mib)}.")
    return EXIT_OK


async def _gpu_edit(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    changes = (args.size, args.rename, args.description, args.channel)
    if all(change is None for change in changes):
        raise UsageError("say what to change: --size, --rename, --description or --channel")
    gpu = await service.edit_gpu(
        admin_actor(settings),
        args.name,
        new_name=args.rename,
        size=args.size,
        description=args.description,
        channel_id=args.channel,
    )
    channel = f", notifications in {gpu.channel_id}" if gpu.channel_id else ""
    print(f"Updated GPU `{gpu.name}`: {format_size(gpu.capacity_mib)}{channel}.")
    return EXIT_OK


async def _gpu_list(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    gpus = await service.list_gpus(admin_actor(settings), include_retired=True)
    if args.json:
        rows = [
            {
                "name": g.name,
                "capacity_mib": g.capacity_mib,
                "description": g.description,
                "retired": g.retired,
            }
            for g in gpus
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    table = [("NAME", "CAPACITY", "DESCRIPTION", "RETIRED")] + [
        (g.name, format_size(g.capacity_mib), g.description, "yes" if g.retired else "no")
        for g in gpus
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return EXIT_OK


async def _gpu_retire(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    ended = await service.retire_gpu(
        admin_actor(settings), args.name, cancel_future=args.cancel_future
    )
    print(f"Retired GPU `{args.name.strip().lower()}`.")
    for booking in ended:
        verb = "Ended" if booking.status == BookingStatus.COMPLETED else "Cancelled"
        print(f"{verb} booking #{booking.id} of {booking.user_id}.")
    return EXIT_OK


# ---------------------------------------------------------------------------- bookings


def _add_book(commands: Subparsers) -> None:
    book = add_command(
        commands,
        "book",
        "Book GPU memory for someone; prints the new booking's id.",
        service_command(_book),
    )
    book.add_argument("gpu", metavar="GPU", help="a GPU name, or `any` to pick the best fit")
    book.add_argument(
        "size", metavar="SIZE", type=_argument_type(_booking_size), help="like `20GB` or `50%%`"
    )
    book.add_argument("--user", required=True, help="Slack user id of the owner")
    book.add_argument(
        "--start",
        required=True,
        metavar="WHEN",
        help="`now`, ISO 8601 with an offset, or `YYYY-MM-DD HH:MM` in --tz",
    )
    length = book.add_mutually_exclusive_group(required=True)
    length.add_argument("--end", metavar="WHEN", help="same forms as --start")
    length.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        type=_argument_type(parse_duration),
        help="like `3h` or `1h30m`",
    )
    book.add_argument("--task", required=True, metavar="TEXT")
    book.add_argument(
        "--tz",
        type=_zone,
        default=ZoneInfo("UTC"),
        metavar="ZONE",
        help="zone for times without an offset, like `Europe/Berlin` (default: UTC)",
    )


async def _book(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    now = service.clock()
    start = _when(args.start, now, args.tz, "start")
    end = start + args.duration if args.end is None else _when(args.end, now, args.tz, "end")
    booking = await service.create(
        admin_actor(settings, args.tz),
        gpu=None if args.gpu.strip().lower() == "any" else args.gpu,
        memory=args.size,
        start=start,
        end=end,
        task=args.task,
        user_id=args.user,
    )
    print(booking.id)
    return EXIT_OK


def _add_cancel(commands: Subparsers) -> None:
    cancel = add_command(
        commands, "cancel", "Cancel a booking that has not started.", service_command(_cancel)
    )
    cancel.add_argument("booking_id", metavar="ID", type=int)
    cancel.add_argument(
        "--user", help="act as this Slack user (their own rights) instead of as an admin"
    )


async def _cancel(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    actor = Actor(args.user, settings.team) if args.user else admin_actor(settings)
    booking = await service.cancel(actor, args.booking_id)
    window = format_window(booking.start, booking.end, UTC, service.clock())
    print(
        f"Cancelled booking #{booking.id} on `{booking.gpu_name}` "
        f"({window} {zone_label(UTC, booking.start)}, {booking.user_id})."
    )
    return EXIT_OK


# ---------------------------------------------------------------------------- export


def _add_export(commands: Subparsers) -> None:
    export = add_command(
        commands,
        "export",
        "Export every booking of the workspace (all statuses, all GPUs); "
        "times are ISO 8601 in UTC with a +00:00 offset.",
        service_command(_export),
    )
    export.add_argument("--format", choices=("json", "csv"), required=True)
    export.add_argument("--output", metavar="FILE", help="write here instead of to stdout")


async def _export(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    bookings = await service.list_bookings(
        admin_actor(settings), everyone=True, statuses=list(BookingStatus)
    )
    rows = [export_row(b) for b in bookings]
    with _output(args.output) as out:
        if args.format == "json":
            json.dump(rows, out, indent=2)
            out.write("\n")
        else:
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    if args.output:
        print(f"Wrote {len(rows)} booking(s) to {args.output}.")
    return EXIT_OK


def export_row(booking: BookingInfo) -> dict[str, Any]:
    return {
        "id": booking.id,
        "gpu": booking.gpu_name,
        "user": booking.user_id,
        "task": booking.task,
        "memory_mib": booking.memory_mib,
        "start": booking.start.astimezone(UTC).isoformat(),
        "end": booking.end.astimezone(UTC).isoformat(),
        "status": booking.status.value,
    }


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """The file to write (``newline=""`` as the csv module requires), or stdout."""
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


#: Every top-level command, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_db,
    _add_gpu,
    _add_book,
    _add_cancel,
    _add_export,
    add_serve,
    add_console,
)


if __name__ == "__main__":
    raise SystemExit(main())
