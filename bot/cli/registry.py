"""What a ``gpubook`` command is made of: the parser it registers, its handler, its exit codes.

Commands live in modules of their own (``bot.cli.db``, ``bot.console``, ``bot.runtime.runner``…)
and register through this module, while ``bot.cli.main`` lists them. So this module imports
nothing of the console or the runtime: they can import it without importing the entry point
that imports them. (``Settings`` is named for type checkers only, for the same reason.)

Exit codes, for scripts: 0 done; 1 refused by a rule or failed (a file, the database: the sentence
is on stderr); 2 malformed arguments or settings (nothing was attempted); 141 the reader of the
output went away (``| head``), as for any program SIGPIPE ends; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.booking import Actor, BookingService
from bot.cli.wording import terminal_text
from bot.core.clock import Clock, FrozenClock
from bot.core.endtimes import read_end
from bot.core.errors import InputError
from bot.core.timeparse import Reading, read_when
from bot.core.units import MAX_MIB, parse_size
from storage.db import Database
from storage.migrate import upgrade

if TYPE_CHECKING:
    from bot.runtime.config import Settings

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
CLI_USER = "cli"

#: What a command runs: parsed arguments, settings and the clock in; exit code out.
Handler = Callable[[argparse.Namespace, "Settings", Clock], int]
#: A command that works on the database, given a service over a migrated database.
ServiceCommand = Callable[[argparse.Namespace, BookingService, "Settings"], Awaitable[int]]
Subparsers = Any  # argparse's _SubParsersAction, which argparse does not export
#: Adds one top-level command (and its subcommands) to the ``gpubook`` parser.
Registrar = Callable[[Subparsers], None]


class UsageError(Exception):
    """An argument that argparse accepted but that does not read (a time): exit 2, like argparse."""


def add_command(
    subparsers: Subparsers,
    name: str,
    summary: str,
    handler: Handler,
    *,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A leaf command: its parser knows its handler, and itself for usage errors found later.

    ``summary`` is the line in the parent's ``--help``; ``description`` heads the command's own
    (by default the same).
    """
    parser = subparsers.add_parser(name, help=summary, description=description or summary)
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


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn a gpubook parser into an argparse type, keeping its sentence as the error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(terminal_text(exc)) from None

    return convert


def booking_size(text: str) -> int | str:
    """MiB, or the text of a percentage: only the service knows the chosen GPU's capacity.

    A percentage is still checked here (against the largest size there is) so a typo exits 2.
    """
    if text.strip().endswith("%"):
        parse_size(text, capacity_mib=MAX_MIB)
        return text
    return parse_size(text)


def zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r}; use an IANA name like Europe/Berlin or UTC."
        ) from None


def zone_option(parser: argparse.ArgumentParser) -> None:
    """``--tz``: the zone in which times without an offset are read (UTC unless given)."""
    parser.add_argument(
        "--tz",
        type=zone,
        default=ZoneInfo("UTC"),
        metavar="ZONE",
        help="zone for times without an offset, like 'Europe/Berlin' (default: UTC)",
    )


def when(
    text: str, now: datetime, tz: ZoneInfo, field: str, *, start: datetime | None = None
) -> Reading:
    """``text`` as a time, read once the service's "now" is known (hence not an argparse type);
    given the ``start``, as the end of a booking from it (the rule `until` follows in Slack). A
    time that does not read is a UsageError."""
    try:
        if start is None:
            return read_when(text, now=now, tz=tz, field=field)
        return read_end(text, start=start, now=now, tz=tz)
    except InputError as exc:
        raise UsageError(f"--{field}: {terminal_text(exc, tz, now)}") from None
