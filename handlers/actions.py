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
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.snapshots import BookingInfo
from bot.core.units import format_duration
from handlers import ids
from handlers.blocks.common import Message
from handlers.blocks.messages import CALENDAR_NAV_ACTION, mib_text
from handlers.commands import calendar_reply
from handlers.context import Deps, action_reply, actor_and_profile, answer, zone_reply
from handlers.home import refresh_homes
from handlers.modals import confirmation, open_booking_modal, open_edit_modal


def _value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value") or "")


def _booking_id(body: dict[str, Any]) -> int:
    value = _value(body)
    if not value.isdigit():
        raise InputError(Code.BROKEN_BUTTON)
    return int(value)


def _json_value(body: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(_value(body))
    except json.JSONDecodeError:
        raise InputError(Code.BROKEN_BUTTON) from None
    if not isinstance(value, dict):
        raise InputError(Code.BROKEN_BUTTON)
    return value


def _channel(body: dict[str, Any]) -> str | None:
    """Where a form opened by this click should confirm: the message's channel, if any."""
    if body.get("container", {}).get("type") == "view":
        return None
    return (body.get("channel") or {}).get("id")


@dataclass(frozen=True)
class Click:
    """One button click: who clicked (after ``ack()``), the request, and the bookings it changed
    (whose owners' App Homes are refreshed along with the clicker's)."""

    deps: Deps
    body: dict[str, Any]
    client: AsyncWebClient
    actor: Actor
    changed: list[BookingInfo] = field(default_factory=list)


Work = Callable[[Click], Awaitable[Message | None]]
#: Whether a click opens a form: its trigger_id then bounds the users.info wait.
OpensModal = Callable[[dict[str, Any]], bool]


def _never(body: dict[str, Any]) -> bool:
    return False


def _always(body: dict[str, Any]) -> bool:
    return True


def _on_click(
    app: AsyncApp,
    deps: Deps,
    action_id: str | re.Pattern[str],
    work: Work,
    *,
    opens_modal: OpensModal = _never,
    changes: bool = False,
    replace: bool = False,
    zoned: bool = False,
) -> None:
    """Register one button's listener: ack, work out the clicker, run ``work``, answer the clicker
    and, for ``changes``, refresh the App Homes of everyone whose booking changed.

    ``zoned`` answers (in the clicker's zone) say so when that zone is a UTC fallback.
    """

    @app.action(action_id)
    async def on_click(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        await ack()
        wait = deps.lookup_timeout if opens_modal(body) else deps.reply_lookup_timeout
        actor, profile = await actor_and_profile(
            deps, client, context.team_id, body["user"]["id"], max_wait=wait
        )
        click = Click(deps, body, client, actor)
        reply = action_reply(body, client, respond)
        if zoned:
            reply = zone_reply(reply, profile)
        ok = await answer(reply, deps, lambda: work(click), replace=replace, tz=actor.tz)
        if ok and changes:
            await refresh_homes(deps, client, actor, click.changed)


def _booking_change(headline: str, change: Callable[[Actor, int], Awaitable[BookingInfo]]) -> Work:
    """Extend, Release, Cancel: one service call on the button's booking, confirmed by its card."""

    async def work(click: Click) -> Message:
        booking = await change(click.actor, _booking_id(click.body))
        click.changed.append(booking)
        return confirmation(booking, headline, click.actor, click.deps.now())

    return work


def _slot(body: dict[str, Any]) -> tuple[str, int, datetime, datetime, str]:
    """A Book button's window: GPU, MiB, start, end and task (possibly empty)."""
    slot = _json_value(body)
    try:
        gpu, mib = str(slot["gpu"]), int(slot["mib"])
        start = datetime.fromtimestamp(int(slot["start"]), UTC)
        end = datetime.fromtimestamp(int(slot["end"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InputError(Code.BROKEN_BUTTON) from None
    return gpu, mib, start, end, str(slot.get("task") or "")


def _slot_without_task(body: dict[str, Any]) -> bool:
    """A Book button without a task opens the form; an unreadable one is answered by message."""
    try:
        return not _slot(body)[4].strip()
    except InputError:
        return False


async def _book_slot(click: Click) -> Message | None:
    """Book the offered window for the clicker; without a task, open the form instead.

    Offers often start "now", and the service refuses starts more than a minute past, so a window
    already under way is booked from now to its end: the button stays good until the window ends
    (after that the service's refusal of a past window is the right answer).
    """
    gpu, mib, start, end, task = _slot(click.body)
    deps = click.deps
    now = deps.now()
    if start < now < end:
        start = now
    if not task.strip():
        await open_booking_modal(
            deps,
            click.client,
            click.actor,
            click.body["trigger_id"],
            channel=_channel(click.body),
            gpu=gpu,
            memory_text=mib_text(mib),
            start=start,
            duration_text=format_duration(end - start),
        )
        return None
    booking = await deps.service.create(
        click.actor, gpu=gpu, memory=mib, start=start, end=end, task=task
    )
    click.changed.append(booking)
    return confirmation(booking, "Booked", click.actor, deps.now())


async def _calendar_nav(click: Click) -> Message:
    value = _json_value(click.body)
    try:
        gpu = str(value["gpu"])
        day = date.fromisoformat(str(value["day"]))
    except (KeyError, ValueError):
        raise InputError(Code.BROKEN_BUTTON) from None
    return await calendar_reply(click.deps, click.actor, gpu, day, bool(value.get("week")))


async def _edit(click: Click) -> None:
    await open_edit_modal(
        click.deps,
        click.client,
        click.actor,
        click.body["trigger_id"],
        _booking_id(click.body),
        channel=_channel(click.body),
    )


async def _home_new_booking(click: Click) -> None:
    await open_booking_modal(
        click.deps, click.client, click.actor, click.body["trigger_id"], channel=None
    )


async def _home_calendar(click: Click) -> Message:
    """The calendar as a DM: its navigation buttons then work like any message's."""
    return await calendar_reply(click.deps, click.actor, None, None, False)


def register(app: AsyncApp, deps: Deps) -> None:
    service = deps.service
    step = ids.EXTEND_STEP
    booking_buttons: dict[str, tuple[str, Callable[[Actor, int], Awaitable[BookingInfo]]]] = {
        ids.EXTEND: (
            f"Extended by {format_duration(step)}",
            lambda actor, booking_id: service.extend(actor, booking_id, step),
        ),
        ids.RELEASE: ("Released", service.release),
        ids.CANCEL: ("Cancelled", service.cancel),
    }
    for action_id, (headline, change) in booking_buttons.items():
        _on_click(app, deps, action_id, _booking_change(headline, change), changes=True)
    _on_click(app, deps, ids.EDIT, _edit, opens_modal=_always)
    _on_click(app, deps, ids.BOOK_SLOT, _book_slot, opens_modal=_slot_without_task, changes=True)
    _on_click(app, deps, CALENDAR_NAV_ACTION, _calendar_nav, replace=True, zoned=True)
    _on_click(app, deps, ids.HOME_NEW_BOOKING, _home_new_booking, opens_modal=_always)
    _on_click(app, deps, ids.HOME_CALENDAR, _home_calendar, zoned=True)
