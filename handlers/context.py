"""What every listener shares: the dependencies, who is asking, and how to answer them.

Listeners follow one shape (``handlers.pipeline``) — ``ack()``, work out the
:class:`~bot.booking.service.Actor`, call the one service, render with a builder, reply — and the
parts of it that the pipeline and the other listeners share live here: building the actor from
Bolt's context and the cached ``users.info``, the three ways of answering one person (a
``response_url``, an ephemeral message in a channel, a DM), and the rule that a refusal becomes
the refusal blocks while a crash becomes a short apology and a log line, never a traceback in
Slack.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.booking import DEFAULT_TEAM, Actor, BookingService
from bot.core.clock import Clock
from bot.core.errors import GpubookError
from handlers.blocks.common import MAX_MESSAGE_BLOCKS, Message, context, notice
from handlers.blocks.refusals import refusal
from handlers.home_refresh import HomeRefresher
from handlers.users import UserDirectory, UserProfile
from handlers.wording import SlackText

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side and nothing was changed. Please try again."
UTC_NOTE = "Times read in UTC: I couldn't fetch your time zone from Slack."


#: Draws a calendar's memory timeline as PNG bytes (``bot.render.chart.chart_png``, given by
#: the runtime: handlers do not import the renderers).
ChartDrawer = Callable[..., bytes]


@dataclass(frozen=True)
class Deps:
    """Everything listeners need, built once per process (see ``bot.runtime.app.build_deps``)."""

    service: BookingService
    users: UserDirectory
    #: `/gpubook free 40GB` without `for …` looks for this long a window.
    free_duration: timedelta = timedelta(hours=1)
    #: How long a listener holding a trigger_id waits for an uncached ``users.info``
    #: (trigger ids expire after 3 s; past this it proceeds in UTC).
    lookup_timeout: float = 1.0
    #: The same wait for listeners that answer through a response_url (valid for 30 minutes):
    #: they can afford to wait for the user's zone rather than read their times in UTC.
    reply_lookup_timeout: float = 10.0
    #: How long a modal submission (lookup, save) is awaited before its ack, since a refusal has
    #: to be the ack and Slack drops acks after 3 s; past it the form closes and the save's
    #: outcome is sent by message.
    submit_deadline: float = 2.5
    #: How long a slash command's answer is awaited to be sent *as* its ack (one HTTP response,
    #: no second request to Slack); past it the ack goes empty and the answer follows through
    #: the response_url, so Slack's 3-second deadline is never at risk.
    answer_in_ack_within: float = 1.0
    #: Where the bot's HTTP port is reached from outside (``GPUBOOK_PUBLIC_URL``): calendar
    #: links are made from it; ``None``: links cannot be made.
    public_url: str | None = None
    #: How charts are drawn; ``None``: this app draws none.
    draw_chart: ChartDrawer | None = None
    #: App Home rebuilds after changes, coalesced per user (no delay unless configured).
    homes: HomeRefresher = field(default_factory=HomeRefresher)
    #: Requests whose work runs at once (``GPUBOOK_ANSWERS_AT_ONCE``), the others' waiting
    #: their turn. Requests arriving together share the one event loop with everything else it
    #: does — hosts' reports above all: ten bookings run at once put every report arriving
    #: meanwhile behind all ten (report p99 62–92 ms under a fleet; one at a time 22–35 ms),
    #: and the burst takes as long either way. More only pays with a database far away.
    answering: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    #: A Home opened less than this long ago may still be on screen, so changes rebuild it; an
    #: older one is rebuilt when next opened (Slack tells each time the tab is shown).
    home_in_view_for: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.homes.watched is None:  # rebuild only the Homes someone may be looking at
            self.homes.watched = self.homes_in_view

    async def homes_in_view(self, homes: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return await self.service.homes_in_view(homes, self.home_in_view_for)

    @property
    def clock(self) -> Clock:
        """The service's clock: handlers and service must agree on "now" (tests freeze it)."""
        return self.service.clock

    def now(self) -> datetime:
        return self.service.clock()


async def actor_and_profile(
    deps: Deps,
    client: AsyncWebClient,
    team_id: str | None,
    user_id: str,
    *,
    max_wait: float | None = None,
) -> tuple[Actor, UserProfile]:
    """The Actor for a request (Bolt's ``context.team_id`` and the user's cached profile), and the
    profile itself, which says whether the zone really came from Slack."""
    team = team_id or DEFAULT_TEAM
    profile = await deps.users.get(client, team, user_id, max_wait=max_wait)
    return Actor(user_id, team, profile.is_workspace_admin, profile.tz), profile


def known_zone(deps: Deps, team_id: str | None, user_id: str) -> ZoneInfo | None:
    """The asker's zone when their profile is cached (the Actor will have it), without waiting;
    ``None`` when it must still be asked for."""
    profile = deps.users.cached(team_id or DEFAULT_TEAM, user_id)
    return profile.tz if profile is not None else None


async def actor_for(
    deps: Deps,
    client: AsyncWebClient,
    team_id: str | None,
    user_id: str,
    *,
    max_wait: float | None = None,
) -> Actor:
    """The Actor for a request, for listeners whose answer does not depend on the zone's source."""
    actor, _ = await actor_and_profile(deps, client, team_id, user_id, max_wait=max_wait)
    return actor


class Reply(Protocol):
    """One way of answering the person who asked."""

    async def send(self, message: Message, *, replace: bool = False) -> None: ...


class ReplyNotDelivered(Exception):
    """Slack refused a reply (the webhook client returns an HTTP error instead of raising)."""


@dataclass(frozen=True)
class ResponseUrlReply:
    """Through the request's ``response_url``: ephemeral, and able to replace the clicked message.

    It is tried once (slack-sdk retries only a broken connection): a reply Slack did not take
    is logged by :func:`answer`, never retried until it is stale.
    """

    webhook: AsyncWebhookClient

    async def send(self, message: Message, *, replace: bool = False) -> None:
        response = await self.webhook.send(
            text=message.text,
            blocks=list(message.blocks),
            response_type="ephemeral",
            replace_original=replace,
        )
        if response.status_code >= 400:
            raise ReplyNotDelivered(f"HTTP {response.status_code}: {response.body[:200]}")


def response_url_reply(client: AsyncWebClient, respond: AsyncRespond) -> ResponseUrlReply:
    """A reply through ``respond``'s URL over the Web API client's connection pool.

    Bolt's own ``respond()`` makes a client without a session, so every reply would open (and
    over TLS, handshake) a connection of its own; the app's pool keeps them open. Where the
    client has no pool (tests, the console) the webhook still makes one per call.
    """
    url = str(respond.response_url)
    return ResponseUrlReply(
        AsyncWebhookClient(url, session=client.session, proxy=respond.proxy, ssl=respond.ssl)
    )


@dataclass(frozen=True)
class EphemeralReply:
    """An ephemeral message in a channel (a modal submitted after a command in that channel).

    Slack refuses it where the bot cannot post (a DM between people, a private channel without
    the bot: ``channel_not_found``, ``not_in_channel``, …) although the command worked there, and
    by then the change is saved, so the answer goes by DM instead of being lost.
    """

    client: AsyncWebClient
    channel: str
    user_id: str

    async def send(self, message: Message, *, replace: bool = False) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=self.channel, user=self.user_id, text=message.text, blocks=message.blocks
            )
        except SlackApiError as error:
            log.info(
                "no ephemeral in %s (%s); answering %s by DM",
                self.channel,
                error.response.get("error"),
                self.user_id,
            )
            await DirectReply(self.client, self.user_id).send(message, replace=replace)


@dataclass(frozen=True)
class DirectReply:
    """A DM from the app (posting to a user id lands in the app's Messages tab with them).

    Used where there is no channel to answer in: the App Home and modals opened from it.
    """

    client: AsyncWebClient
    user_id: str

    async def send(self, message: Message, *, replace: bool = False) -> None:
        await self.client.chat_postMessage(
            channel=self.user_id, text=message.text, blocks=message.blocks
        )


@dataclass(frozen=True)
class NotedReply:
    """Another reply, with one context line added under whatever it sends."""

    inner: Reply
    note: str

    async def send(self, message: Message, *, replace: bool = False) -> None:
        await self.inner.send(with_note(message, self.note), replace=replace)


def with_note(message: Message, note: str) -> Message:
    """``message`` with a trusted context line under it, unless it is already at the block limit."""
    if len(message.blocks) >= MAX_MESSAGE_BLOCKS:
        return message
    return replace(message, blocks=[*message.blocks, context(note)])


def zone_reply(reply: Reply, profile: UserProfile) -> Reply:
    """For answers that read or show times in the user's zone: say so when that zone is a
    UTC fallback, so nobody books 09:00 UTC believing it was their 09:00."""
    return reply if profile.zone_known else NotedReply(reply, UTC_NOTE)


def reply_for(
    client: AsyncWebClient, user_id: str, respond: AsyncRespond | None, channel: str | None
) -> Reply:
    """The best way to answer: the response_url if there is one, else ephemeral, else a DM."""
    if respond is not None and respond.response_url:
        return response_url_reply(client, respond)
    if channel:
        return EphemeralReply(client, channel, user_id)
    return DirectReply(client, user_id)


def refusal_message(
    error: GpubookError, *, now: datetime, task: str | None = None, tz: tzinfo = UTC
) -> Message:
    """A service refusal as the refusal blocks, its sentence as the fallback text.

    The fallback is escaped like the blocks: a sentence may quote what the user typed.
    """
    return Message(error.render(SlackText(tz, now)), refusal(error, task=task, now=now, tz=tz))


def apology() -> Message:
    return Message(APOLOGY, notice(APOLOGY, emoji=":warning:"))


async def answer(
    reply: Reply,
    deps: Deps,
    work: Callable[[], Awaitable[Message | None]],
    *,
    task: str | None = None,
    replace: bool = False,
    tz: tzinfo = UTC,
) -> bool:
    """Run ``work`` and send what it returns; True when it succeeded.

    A GpubookError is answered with the refusal blocks (``task`` feeds their "book this window"
    buttons); anything else is logged and answered with an apology. Failing to deliver the answer
    is logged: there is nobody left to tell.
    """
    ok = True
    try:
        message = await work()
    except GpubookError as error:
        ok, replace, message = (
            False,
            False,
            refusal_message(error, now=deps.now(), task=task, tz=tz),
        )
    except Exception:
        log.exception("listener failed")
        ok, replace, message = False, False, apology()
    if message is not None:
        try:
            await reply.send(message, replace=replace)
        except Exception:
            log.exception("could not deliver a reply")
    return ok


def metadata(**values: Any) -> str:
    """A view's ``private_metadata`` (what a submission needs to know about where it came from)."""
    return json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))


def read_metadata(raw: str | None) -> dict[str, Any]:
    """Inverse of :func:`metadata`; anything unreadable counts as empty (it is client-echoed)."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
