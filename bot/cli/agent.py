"""``gpubook agent token …`` and ``gpubook agent devices``: what an admin does for host agents.

(``gpubook agent`` itself, with no action, runs the agent on a GPU host: :mod:`bot.agent.run`.)
A new token is printed once, alone on the last line of stdout, so a provisioning script can take
it with ``tail -n 1``; only its hash is stored.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bot.agent.run import add_agent_options
from bot.booking import BookingService
from bot.cli.registry import EXIT_OK, Subparsers, add_command, admin_actor, service_command
from bot.core.formats import format_size, typed_size
from bot.runtime.config import Settings

#: The unbound-devices listing says how to bind each card with these commands.
ADD_COMMAND = "gpubook gpu add {name} {size}"
BIND_COMMAND = "gpubook gpu edit {name} --uuid {uuid}"


def add_agent_commands(commands: Subparsers) -> None:
    agent = commands.add_parser(
        "agent",
        help="run the host agent; manage host tokens and the cards agents report",
        description="Without an action: run the agent on this GPU host, reporting every "
        "GPUBOOK_AGENT_INTERVAL to GPUBOOK_AGENT_URL. With one: manage host tokens and cards.",
    )
    add_agent_options(agent)
    actions = agent.add_subparsers(dest="action", metavar="ACTION")
    add_agent_admin_commands(actions)


def add_agent_admin_commands(actions: Subparsers) -> None:
    """The admin actions under ``gpubook agent`` (its parser's subparsers)."""
    token = actions.add_parser(
        "token", help="create, list and revoke host tokens", description="Manage host tokens."
    )
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = add_command(
        token_actions,
        "create",
        "Create a token for HOST; it is printed once, alone on the last line.",
        service_command(_token_create),
    )
    create.add_argument("host", metavar="HOST", help="the host's name, as its agent reports it")
    add_command(token_actions, "list", "List every token.", service_command(_token_list))
    revoke = add_command(
        token_actions,
        "revoke",
        "Revoke a token by its id, or every token of a host.",
        service_command(_token_revoke),
    )
    revoke.add_argument("which", metavar="ID|HOST")
    add_command(
        actions,
        "devices",
        "List cards that report but are bound to no GPU, with the commands that bind them.",
        service_command(_devices),
    )


async def _token_create(args: argparse.Namespace, service: BookingService, s: Settings) -> int:
    token, secret = await service.create_agent_token(admin_actor(s), args.host)
    print(
        f"Created token {token.id} for {token.host}. It is shown only now: "
        "set it as GPUBOOK_AGENT_TOKEN on that host."
    )
    print(secret)
    return EXIT_OK


async def _token_list(args: argparse.Namespace, service: BookingService, s: Settings) -> int:
    tokens = await service.agent_tokens(admin_actor(s))
    rows = [("ID", "HOST", "CREATED", "LAST REPORT", "STATE")]
    for t in tokens:
        used = _utc(t.last_used_at) if t.last_used_at else "never"
        state = f"revoked {_utc(t.revoked_at)}" if t.revoked_at else "active"
        rows.append((str(t.id), t.host, _utc(t.created_at), used, state))
    _print_table(rows)
    return EXIT_OK


async def _token_revoke(args: argparse.Namespace, service: BookingService, s: Settings) -> int:
    for token in await service.revoke_agent_token(admin_actor(s), args.which):
        print(f"Revoked token {token.id} of {token.host}.")
    return EXIT_OK


async def _devices(args: argparse.Namespace, service: BookingService, s: Settings) -> int:
    devices = await service.unbound_devices(admin_actor(s))
    if not devices:
        print("Every reporting card is bound to a GPU.")
        return EXIT_OK
    for d in devices:
        name = d.suggested_gpu_name
        print(
            f"{d.host} #{d.index} {d.name}, {format_size(d.total_mib)}, {d.uuid} "
            f"(last report {_utc(d.last_seen_at)})"
        )
        print("  " + ADD_COMMAND.format(name=name, size=typed_size(d.total_mib)))
        print("  " + BIND_COMMAND.format(name=name, uuid=d.uuid))
    return EXIT_OK


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
