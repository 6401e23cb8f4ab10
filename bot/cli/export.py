"""``gpubook export``: every booking of the workspace as JSON or CSV, for spreadsheets and audits."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.booking import BookingService
from bot.cli.files import writing
from bot.cli.registry import EXIT_OK, Subparsers, add_command, admin_actor, service_command
from bot.core.formats import count_of
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus
from bot.runtime.config import Settings

EXPORT_FIELDS = ("id", "gpu", "user", "task", "memory_mib", "start", "end", "status")


def add_export(commands: Subparsers) -> None:
    export = add_command(
        commands,
        "export",
        "Export every booking of the workspace (all statuses, all GPUs); "
        "times are ISO 8601 in UTC to the second, with a +00:00 offset.",
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
        print(f"Wrote {count_of(len(rows), 'booking')} to {args.output}.")
    return EXIT_OK


def export_row(booking: BookingInfo) -> dict[str, Any]:
    return {
        "id": booking.id,
        "gpu": booking.gpu_name,
        "user": booking.user_id,
        "task": booking.task,
        "memory_mib": booking.memory_mib,
        "start": export_time(booking.start),
        "end": export_time(booking.end),
        "status": booking.status.value,
    }


def export_time(at: datetime) -> str:
    """Every exported instant reads alike: UTC, to the second, ``2026-11-30T08:00:00+00:00``.

    Instants a person typed are whole minutes, but "now" (a start, a release's end) carries
    microseconds; shown as they are, one column would read differently from the other.
    """
    return at.astimezone(UTC).isoformat(timespec="seconds")


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """The file to write (``newline=""`` as the csv module requires), or stdout; a file that
    cannot be written is named in the refusal (a closed stdout is ``bot.cli.main``'s business)."""
    if path is None:
        yield sys.stdout
        return
    with writing(path), open(path, "w", encoding="utf-8", newline="") as out:
        yield out
