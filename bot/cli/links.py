"""``gpubook link USER LOGIN`` and ``gpubook unlink LOGIN``: whose Unix login is whose (audited)."""

from __future__ import annotations

import argparse

from bot.booking import BookingService
from bot.cli.registry import EXIT_OK, Subparsers, add_command, admin_actor, service_command
from bot.runtime.config import Settings


def add_link_commands(commands: Subparsers) -> None:
    link = add_command(
        commands,
        "link",
        "Link a Unix login on the GPU hosts to a Slack user (moving it from anyone else).",
        service_command(_link),
    )
    link.add_argument("user", metavar="USER", help="the Slack user id, like U0123ABCD")
    link.add_argument("login", metavar="LOGIN", help="the Unix login, like alice")
    unlink = add_command(
        commands, "unlink", "Unlink a Unix login from whoever holds it.", service_command(_unlink)
    )
    unlink.add_argument("login", metavar="LOGIN")


async def _link(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    done = await service.link_login(admin_actor(settings), args.login, args.user.strip())
    print(f"Linked {done.login} to {done.user_id}.")
    return EXIT_OK


async def _unlink(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    done = await service.unlink_login(admin_actor(settings), args.login)
    print(f"Unlinked {done.login} from {done.user_id}.")
    return EXIT_OK
