"""The `/gpubook` listener: reads the text into a plan for the pipeline, answered ephemerally.

The wait for the user's profile has to be chosen before the profile (and so the zone) is known:
a command that opens a form must hurry, since its trigger_id expires within seconds. So the text
is read once in UTC, which is enough to tell the subcommand, whether it opens a form (a pure
test of the parsed command), whether it changes bookings and the task it names: none of these
depends on the zone. Only a zoned subcommand's reading does (its times, and "today", are the
user's), so only those are read again, in the user's zone, once it is known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import InputError
from handlers.blocks.common import Message
from handlers.commands import COMMAND
from handlers.commands.registry import find_verb
from handlers.commands.syntax import Command
from handlers.context import Deps
from handlers.pipeline import Incoming, Plan, Request, Work, serve
from handlers.users import UTC_ZONE


def plan(text: str, now: datetime) -> Plan:
    """What `/gpubook <text>` will do; text that does not read is answered with its refusal."""
    try:
        verb, args = find_verb(text.split())
    except InputError as error:
        return Plan(_refusing(error))
    try:
        first: Command | Exception = verb.parse(args, now, UTC_ZONE)
    except Exception as error:  # a refusal or a parser bug: answered like any other failure
        first = error

    async def work(request: Request) -> Message | None:
        command = verb.parse(args, request.now, request.actor.tz) if verb.zoned else first
        if isinstance(command, Exception):
            raise command
        return await verb.handle(request, command)

    if isinstance(first, Exception):
        return Plan(work, zoned=verb.zoned)
    opens_form = verb.opens_form(first)
    return Plan(
        work,
        opens_form=opens_form,
        zoned=verb.zoned,
        changes=verb.changes and not opens_form,
        # A refusal offers other windows as buttons that keep the task the user typed.
        task=getattr(first, "task", None),
    )


def _refusing(error: InputError) -> Work:
    async def work(request: Request) -> None:
        raise error

    return work


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command(COMMAND)
    async def gpubook(
        ack: Any,
        command: dict[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
        context: Any,
    ) -> None:
        incoming = Incoming(
            context.team_id, command["user_id"], command.get("channel_id"), command, respond
        )
        text = command.get("text") or ""
        await serve(ack, deps, client, incoming, lambda: plan(text, deps.now()))
