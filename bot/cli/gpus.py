"""``gpubook gpu``: add, list, edit and retire GPUs, as a workspace admin."""

from __future__ import annotations

import argparse
import json

from bot.booking import BookingService
from bot.cli.identities import channel_argument, check_in_slack
from bot.cli.registry import (
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    admin_actor,
    argument_type,
    service_command,
)
from bot.core.formats import format_size
from bot.core.units import parse_size
from bot.core.vocabulary import BookingStatus
from bot.runtime.config import Settings


def add_gpu_commands(commands: Subparsers) -> None:
    gpu = commands.add_parser(
        "gpu", help="add, list, edit and retire GPUs", description="Manage GPUs."
    )
    actions = gpu.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_command(actions, "add", "Add a GPU with its memory.", service_command(_gpu_add))
    add.add_argument("name", metavar="NAME", help="like 'a100-1' (lower case, digits, . _ -)")
    add.add_argument("size", metavar="SIZE", type=argument_type(parse_size), help="like '80GB'")
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
    edit.add_argument("--size", type=argument_type(parse_size), metavar="SIZE", help="like '80GB'")
    edit.add_argument("--rename", metavar="NEW", help="the GPU's new name")
    edit.add_argument("--description", metavar="TEXT", help='"" clears it')
    edit.add_argument(
        "--channel",
        metavar="CHANNEL_ID",
        type=channel_argument,
        help="Slack channel id for this GPU's notifications, like C0123ABCD (checked with Slack "
        "when SLACK_BOT_TOKEN is set); '\"\"' falls back to the workspace's",
    )
    edit.add_argument(
        "--uuid",
        metavar="DEVICE_UUID",
        help="the NVML UUID of the card it is (see `gpubook agent devices`); '\"\"' unbinds",
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
    print(f"Added GPU '{gpu.name}' with {format_size(gpu.capacity_mib)}.")
    return EXIT_OK


async def _gpu_edit(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    changes = (args.size, args.rename, args.description, args.channel, args.uuid)
    if all(change is None for change in changes):
        raise UsageError("say what to change: --size, --rename, --description, --channel or --uuid")
    await check_in_slack(settings, channel=args.channel)
    gpu = await service.edit_gpu(
        admin_actor(settings),
        args.name,
        new_name=args.rename,
        size=args.size,
        description=args.description,
        channel_id=args.channel,
        device_uuid=args.uuid,
    )
    channel = f", notifications in {gpu.channel_id}" if gpu.channel_id else ""
    device = f", card {gpu.device_uuid}" if gpu.device_uuid else ""
    print(f"Updated GPU '{gpu.name}': {format_size(gpu.capacity_mib)}{channel}{device}.")
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
    print(f"Retired GPU '{args.name.strip().lower()}'.")
    for booking in ended:
        verb = "Ended" if booking.status == BookingStatus.COMPLETED else "Cancelled"
        print(f"{verb} booking #{booking.id} of {booking.user_id}.")
    return EXIT_OK
