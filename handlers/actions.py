"""Buttons on booking cards, refusals, free-window answers, the calendar and the App Home.

A button's value is client-echoed data, so it is only ever a request: the clicker is the actor,
and the service decides whether they may touch the booking (a forged value naming someone else's
booking gets the service's refusal). Answers go to the clicker alone: ephemeral through the
message's ``response_url``, or a DM when the click came from the App Home. Calendar navigation
replaces the message it was clicked in; every other answer is a new message, so a list the user
clicked in stays intact.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InputError
from bot.service import Actor
from bot.units import format_duration
from bot.views import BookingInfo
from handlers import ids
from handlers.blocks.messages import CALENDAR_NAV_ACTION, mib_text
from handlers.commands import calendar_reply
from handlers.context import Deps, Message, action_reply, actor_for, answer
from handlers.home import refresh_home
from handlers.modals import confirmation, open_booking_modal, open_edit_modal

BROKEN_BUTTON = "That button's data is unreadable; run the command again for a fresh one."


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


def _booking_id(body: dict[str, Any]) -> int:
    value = _value(body)
    if not value.isdigit():
        raise InputError(BROKEN_BUTTON)
    return int(value)


def _json_value(body: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(_value(body))
    except json.JSONDecodeError:
        raise InputError(BROKEN_BUTTON) from None
    if not isinstance(value, dict):
        raise InputError(BROKEN_BUTTON)
    return value


def _channel(body: dict[str, Any]) -> str | None:
    """Where a form opened by this click should confirm: the message's channel, if any."""
    if body.get("container", {}).get("type") == "view":
        return None
    return (body.get("channel") or {}).get("id")


Work = Callable[[Actor], Awaitable[Message | None]]


async def _click(
    deps: Deps,
    body: dict[str, Any],
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    context: Any,
    work: Work,
    *,
    changes: bool = False,
    replace: bool = False,
    task: str | None = None,
) -> None:
    """The part of every click after ``ack()``: actor, work, answer, and a Home refresh."""
    actor = await actor_for(
        deps, client, context.team_id, body["user"]["id"], max_wait=deps.lookup_timeout
    )
    reply = action_reply(body, client, respond)
    ok = await answer(reply, deps, lambda: work(actor), task=task, replace=replace)
    if ok and changes:
        await refresh_home(deps, client, actor)


def _changed(
    headline: str,
    change: Callable[[Actor, int], Awaitable[BookingInfo]],
    deps: Deps,
    body: dict[str, Any],
) -> Work:
    async def work(actor: Actor) -> Message:
        booking = await change(actor, _booking_id(body))
        return confirmation(booking, headline, actor, deps.now())

    return work


def _book_slot(deps: Deps, client: AsyncWebClient, body: dict[str, Any]) -> Work:
    """Book exactly the offered window for the clicker; without a task, open the form instead."""

    async def work(actor: Actor) -> Message | None:
        slot = _json_value(body)
        try:
            gpu, mib = str(slot["gpu"]), int(slot["mib"])
            start = datetime.fromtimestamp(int(slot["start"]), UTC)
            end = datetime.fromtimestamp(int(slot["end"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise InputError(BROKEN_BUTTON) from None
        task = str(slot.get("task") or "")
        if not task.strip():
            await open_booking_modal(
                deps,
                client,
                actor,
                body["trigger_id"],
                channel=_channel(body),
                gpu=gpu,
                memory_text=mib_text(mib),
                start=start,
                duration_text=format_duration(end - start),
            )
            return None
        booking = await deps.service.create(
            actor, gpu=gpu, memory=mib, start=start, end=end, task=task
        )
        return confirmation(booking, "Booked", actor, deps.now())

    return work


def _calendar_nav(deps: Deps, body: dict[str, Any]) -> Work:
    async def work(actor: Actor) -> Message:
        value = _json_value(body)
        try:
            gpu = str(value["gpu"])
            day = date.fromisoformat(str(value["day"]))
        except (KeyError, ValueError):
            raise InputError(BROKEN_BUTTON) from None
        return await calendar_reply(deps, actor, gpu, day, bool(value.get("week")))

    return work


def _register_booking_button(
    app: AsyncApp,
    deps: Deps,
    action_id: str,
    headline: str,
    change: Callable[[Actor, int], Awaitable[BookingInfo]],
) -> None:
    """One listener per button, in a scope of its own (Bolt injects every parameter by name)."""

    @app.action(action_id)
    async def on_click(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()
        work = _changed(headline, change, deps, body)
        await _click(deps, body, client, respond, context, work, changes=True)


def register(app: AsyncApp, deps: Deps) -> None:
    service = deps.service
    booking_buttons: dict[str, tuple[str, Callable[[Actor, int], Awaitable[BookingInfo]]]] = {
        ids.EXTEND: (
            f"Extended by {format_duration(deps.extend_step)}",
            lambda actor, booking_id: service.extend(actor, booking_id, deps.extend_step),
        ),
        ids.RELEASE: ("Released", service.release),
        ids.CANCEL: ("Cancelled", service.cancel),
    }
    for action_id, (headline, change) in booking_buttons.items():
        _register_booking_button(app, deps, action_id, headline, change)

    @app.action(ids.EDIT)
    async def edit(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()

        async def work(actor: Actor) -> None:
            await open_edit_modal(
                deps, client, actor, body["trigger_id"], _booking_id(body), channel=_channel(body)
            )

        await _click(deps, body, client, respond, context, work)

    @app.action(ids.BOOK_SLOT)
    async def book_slot(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()
        work = _book_slot(deps, client, body)
        await _click(deps, body, client, respond, context, work, changes=True)

    @app.action(CALENDAR_NAV_ACTION)
    async def calendar_nav(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()
        work = _calendar_nav(deps, body)
        await _click(deps, body, client, respond, context, work, replace=True)

    @app.action(ids.HOME_NEW_BOOKING)
    async def home_new_booking(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()

        async def work(actor: Actor) -> None:
            await open_booking_modal(deps, client, actor, body["trigger_id"], channel=None)

        await _click(deps, body, client, respond, context, work)

    @app.action(ids.HOME_CALENDAR)
    async def home_calendar(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        """The calendar as a DM: its navigation buttons then work like any message's."""
        await ack()

        async def work(actor: Actor) -> Message:
            return await calendar_reply(deps, actor, None, None, False)

        await _click(deps, body, client, respond, context, work)
