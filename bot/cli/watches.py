"""``gpubook notify``: watches kept for someone — started, listed, cancelled — as in Slack.

The same service calls as `/gpubook notify …`. A watch is a person's: it DMs them (never the
operator) when the window opens, so ``add`` and ``list`` name the person with ``--user``;
``add`` prints only the new watch's id, as ``gpubook book`` prints the booking's, for scripts.
"""

from __future__ import annotations

import argparse

from bot.booking import Actor, BookingService
from bot.cli.identities import check_in_slack, user_argument
from bot.cli.registry import (
    EXIT_OK,
    Subparsers,
    add_command,
    admin_actor,
    argument_type,
    service_command,
    when,
    zone_option,
)
from bot.cli.wording import TerminalText
from bot.core.phrases import Code
from bot.core.sentence import say
from bot.core.units import parse_duration, parse_size
from bot.core.watches import watch_facts
from bot.core.wording import render
from bot.runtime.config import Settings

_USER_HELP = "Slack user id of the person who waits (and gets the DM), like U0123ABCD"


def add_notify_commands(commands: Subparsers) -> None:
    notify = commands.add_parser(
        "notify",
        help="watches: DM someone when a window of memory opens",
        description="Manage watches.",
    )
    actions = notify.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_command(
        actions,
        "add",
        "Watch for SIZE for --for on a GPU for someone; prints the new watch's id.",
        service_command(_add),
    )
    add.add_argument("size", metavar="SIZE", type=argument_type(parse_size), help="like '20GB'")
    add.add_argument("--user", required=True, type=user_argument, help=_USER_HELP)
    add.add_argument(
        "--for",
        dest="duration",
        required=True,
        metavar="DURATION",
        type=argument_type(parse_duration),
        help="like '2h'",
    )
    add.add_argument("--on", dest="pattern", metavar="GPU", help="a GPU name or a pattern: a100-*")
    add.add_argument(
        "--before",
        metavar="WHEN",
        help="the window must end by then: ISO 8601 with an offset, or 'YYYY-MM-DD HH:MM' in --tz",
    )
    add.add_argument("--task", metavar="TEXT", help="the task the booking gets")
    zone_option(add)
    listed = add_command(actions, "list", "List someone's open watches.", service_command(_list))
    listed.add_argument("--user", required=True, type=user_argument, help=_USER_HELP)
    cancel = add_command(
        actions, "cancel", "Cancel a watch (as an admin, or as --user).", service_command(_cancel)
    )
    cancel.add_argument("watch_id", metavar="ID", type=int)
    cancel.add_argument(
        "--user", type=user_argument, help="act as this Slack user instead of as an admin"
    )


async def _add(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    await check_in_slack(settings, user=args.user)
    now = service.clock()
    deadline = None if args.before is None else when(args.before, now, args.tz, "before").at
    watch = await service.create_watch(
        Actor(args.user, settings.team, tz=args.tz),
        memory=args.size,
        duration=args.duration,
        pattern=args.pattern,
        deadline=deadline,
        task=args.task,
    )
    print(watch.id)
    return EXIT_OK


async def _list(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    surface = TerminalText(now=service.clock())
    watches = await service.my_watches(Actor(args.user, settings.team))
    if not watches:
        print(f"{args.user} has no open watches.")
    for watch in watches:
        print(render(say(Code.WATCH_LINE, **watch_facts(watch)), surface))
    return EXIT_OK


async def _cancel(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    await check_in_slack(settings, user=args.user)
    actor = Actor(args.user, settings.team) if args.user else admin_actor(settings)
    watch = await service.cancel_watch(actor, args.watch_id)
    print(render(say(Code.WATCH_CANCELLED, id=watch.id), TerminalText(now=service.clock())))
    return EXIT_OK
