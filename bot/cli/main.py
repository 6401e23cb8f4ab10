"""``gpubook``, the administrator's command line: a thin layer over the booking service.

It runs the same rules as Slack (every operation goes through :class:`BookingService`) and prints
the same sentences, so a refusal reads identically wherever it happens. The CLI acts as an admin
(user ``cli``) in the workspace ``GPUBOOK_TEAM`` unless ``--user`` says whom to act as. Exit codes
are in :mod:`bot.cli.registry`.

Every command that touches the database first migrates it (idempotent), so ``gpubook gpu add``
works on a fresh file. Adding a command: write a registrar that creates its parser with
:func:`bot.cli.registry.add_command` and a handler, and list the registrar in :data:`COMMANDS`.
This module is the only one that knows every command; the others know only the registry.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.cli.bookings import add_book, add_cancel, add_release
from bot.cli.db import add_db_commands
from bot.cli.export import add_export
from bot.cli.gpus import add_gpu_commands
from bot.cli.groups import add_group_commands, add_limits
from bot.cli.registry import EXIT_REFUSED, EXIT_USAGE, Registrar, UsageError
from bot.cli.wording import terminal_text
from bot.console import add_console
from bot.core.clock import Clock, system_clock
from bot.core.errors import GpubookError, InputError
from bot.runtime.config import Settings
from bot.runtime.runner import add_serve

#: Every top-level command, in the order ``--help`` lists them.
COMMANDS: tuple[Registrar, ...] = (
    add_db_commands,
    add_gpu_commands,
    add_group_commands,
    add_limits,
    add_book,
    add_cancel,
    add_release,
    add_export,
    add_serve,
    add_console,
)


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


if __name__ == "__main__":
    raise SystemExit(main())
