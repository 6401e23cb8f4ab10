"""The `/gpubook` listener: reads the text into a plan for the pipeline, answered ephemerally.

The wait for the user's profile has to be chosen before the profile (and so the zone) is known:
a command that opens a form must hurry, since its trigger_id expires within seconds. So the text
is read before the profile is awaited, which is enough to tell the subcommand, whether it opens a
form (a pure test of the parsed command), whether it changes bookings and the task it names: none
of these depends on the zone. Only a zoned subcommand's reading does (its times, and "today", are
the user's). Usually the profile is already cached, so the text is read once, in the user's zone;
otherwise it is read in UTC first and a zoned subcommand again, in the user's zone, once known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import InputError
from handlers.blocks.common import Message
from handlers.commands import COMMAND
from handlers.commands.registry import find_verb
from handlers.commands.syntax import Command
from handlers.context import Deps, known_zone
from handlers.pipeline import Incoming, Plan, Request, Work, serve
from handlers.users import UTC_ZONE


def plan(text: str, now: datetime, zone: ZoneInfo | None = None) -> Plan:
    """What `/gpubook <text>` will do; text that does not read is answered with its refusal.

    ``zone``: the asker's, when already known (then it is the one their request will carry).
    """
    try:
        verb, args = find_verb(text.split())
    except InputError as error:
        return Plan(_refusing(error))
    try:
        first: Command | Exception = verb.parse(args, now, zone or UTC_ZONE)
    except Exception as error:  # a refusal or a parser bug: answered like any other failure
        first = error

    async def work(request: Request) -> Message | None:
        reread = verb.zoned and (zone is None or request.actor.tz != zone)
        command = verb.parse(args, request.now, request.actor.tz) if reread else first
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
        zone = known_zone(deps, incoming.team_id, incoming.user_id)
        await serve(
            ack, deps, client, incoming, lambda: plan(text, deps.now(), zone), answer_in_ack=True
        )
