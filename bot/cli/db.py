"""``gpubook db``: the schema (``upgrade``) and a safe copy of a SQLite file (``backup``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.booking import BookingService
from bot.cli.files import writing
from bot.cli.registry import (
    EXIT_OK,
    EXIT_REFUSED,
    Subparsers,
    add_command,
    service_command,
)
from bot.runtime.config import Settings
from storage.migrate import current_revision


def add_db_commands(commands: Subparsers) -> None:
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
        with writing(target):
            await service.db.backup_to(target)
    except ValueError as exc:
        print(f"{exc}.", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Backed up to {target}.")
    return EXIT_OK


async def _db_upgrade(args: argparse.Namespace, service: BookingService, _: Settings) -> int:
    # service_command has already migrated; report where that left the schema.
    print(f"Database is at revision {await current_revision(service.db)}.")
    return EXIT_OK
