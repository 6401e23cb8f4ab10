"""``gpubook group`` and ``gpubook limits``: groups of people and their limits, as an admin.

The same service calls as `/gpubook admin group …` and `/gpubook admin limits …`; the answers
are the same sentences, rendered for a terminal.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from bot.booking import BookingService
from bot.cli.identities import user_argument
from bot.cli.registry import (
    EXIT_OK,
    Subparsers,
    UsageError,
    add_command,
    admin_actor,
    service_command,
)
from bot.cli.wording import TerminalText
from bot.core.limits import group_sentence, parse_limit, parse_value, standing_sentences
from bot.core.sentence import Sentence
from bot.core.wording import render
from bot.runtime.config import Settings


def add_group_commands(commands: Subparsers) -> None:
    group = commands.add_parser(
        "group", help="put people in groups, which carry limits", description="Manage groups."
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_command(actions, "add", "Put Slack users in a group.", service_command(_add))
    add.add_argument("group", metavar="GROUP")
    add.add_argument("users", metavar="USER_ID", nargs="+", type=user_argument)
    remove = add_command(
        actions,
        "remove",
        "Take Slack users out of a group; naming no one removes the group and its limits.",
        service_command(_remove),
    )
    remove.add_argument("group", metavar="GROUP")
    remove.add_argument("users", metavar="USER_ID", nargs="*", type=user_argument)
    add_command(
        actions, "list", "List the groups, their members and limits.", service_command(_list)
    )


def add_limits(commands: Subparsers) -> None:
    limits = add_command(
        commands,
        "limits",
        "Set a group's limit (GROUP LIMIT VALUE; 'everyone' holds the defaults, 'none' clears), "
        "or show where --user stands.",
        service_command(_limits),
    )
    limits.add_argument("setting", metavar="GROUP LIMIT VALUE", nargs="*")
    limits.add_argument(
        "--user", metavar="USER_ID", type=user_argument, help="show this user's limits and use"
    )


async def _add(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    changed = await service.add_to_group(admin_actor(settings), args.group, args.users)
    return _say([group_sentence(changed)], service)


async def _remove(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    changed = await service.remove_from_group(admin_actor(settings), args.group, args.users)
    return _say([group_sentence(changed)], service)


async def _list(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    groups = await service.groups(admin_actor(settings))
    return _say([group_sentence(g) for g in groups], service)


async def _limits(args: argparse.Namespace, service: BookingService, settings: Settings) -> int:
    actor = admin_actor(settings)
    if args.user and not args.setting:
        return _say(standing_sentences(await service.standing(actor, args.user)), service)
    if len(args.setting) < 3 or args.user:
        raise UsageError("give GROUP LIMIT VALUE, like 'premium max-held 96GB', or --user ID")
    group, name_text, *value = args.setting
    name = parse_limit(name_text)
    changed = await service.set_limit(actor, group, name, parse_value(name, "".join(value)))
    return _say([group_sentence(changed)], service)


def _say(sentences: Iterable[Sentence], service: BookingService) -> int:
    surface = TerminalText(now=service.clock())
    for sentence in sentences:
        print(render(sentence, surface))
    return EXIT_OK
