"""Buttons on booking cards, refusals, free-window answers, the calendar and the App Home.

A button's value is client-echoed data, so it is only ever a request: the clicker is the actor,
and the service decides whether they may touch the booking (a forged value naming someone else's
booking gets the service's refusal). Answers go to the clicker alone: ephemeral through the
message's ``response_url``, or a DM when the click came from the App Home. Calendar navigation
and a list's More button replace the message they were clicked in; every other answer is a new
message, so a list the user clicked in stays intact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor, BookingChange, BookingService
from bot.core.errors import InputError
from bot.core.formats import format_duration, format_size
from bot.core.phrases import Code
from bot.core.recurrence import Recurrence
from bot.core.sentence import say
from bot.core.snapshots import BookingInfo
from handlers import ids
from handlers.blocks.calendar import CALENDAR_NAV_ACTION
from handlers.blocks.common import Message, mib_text, notice
from handlers.calendar import calendar_reply
from handlers.chart import send_chart
from handlers.commands.answers import list_page
from handlers.context import Deps
from handlers.modals import open_booking_modal, open_edit_modal
from handlers.pipeline import (
    Incoming,
    Plan,
    Request,
    Work,
    always,
    confirm_series,
    never,
    serve,
)
from handlers.wording import mrkdwn


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


#: Whether a click opens a form: its trigger_id then bounds the users.info wait.
OpensForm = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Button:
    """One button's registration: its action_id, its work and how the pipeline treats it."""

    action_id: str | re.Pattern[str]
    work: Work
    opens_form: OpensForm = never
    changes: bool = False
    replace: bool = False
    zoned: bool = False

    def plan(self, body: dict[str, Any]) -> Plan:
        return Plan(
            self.work,
            opens_form=self.opens_form(body),
            zoned=self.zoned,
            changes=self.changes,
            replace=self.replace,
        )


BookingCall = Callable[[BookingService, Actor, int], Awaitable[BookingInfo]]


def _booking_change(headline: str, change: BookingCall) -> Work:
    """Extend, Release, Cancel: one service call on the button's booking, confirmed by its card."""

    async def work(request: Request) -> Message:
        booking = await change(request.deps.service, request.actor, _booking_id(request.body))
        return request.confirm(booking, headline)

    return work


async def _extend_offer(request: Request) -> Message:
    """Extend by what a refused extension offered: the longest extension that fitted then."""
    offer = _json_value(request.body)
    try:
        booking_id, by = int(offer["id"]), timedelta(seconds=int(offer["seconds"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InputError(Code.BROKEN_BUTTON) from None
    booking = await request.deps.service.extend(request.actor, booking_id, by)
    return request.confirm(booking, f"Extended by {format_duration(by)}")


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


async def _book_slot(request: Request) -> Message | None:
    """Book the offered window for the clicker; without a task, open the form instead.

    Offers often start "now", and the service refuses starts more than a minute past, so a window
    already under way is booked from now to its end: the button stays good until the window ends
    (after that the service's refusal of a past window is the right answer).
    """
    gpu, mib, start, end, task = _slot(request.body)
    deps = request.deps
    now = deps.now()
    if start < now < end:
        start = now
    if not task.strip():
        await open_booking_modal(
            deps,
            request.client,
            request.actor,
            request.trigger_id,
            channel=request.channel,
            gpu=gpu,
            memory_text=mib_text(mib),
            start=start,
            duration_text=format_duration(end - start),
        )
        return None
    booking = await deps.service.create(
        request.actor, gpu=gpu, memory=mib, start=start, end=end, task=task
    )
    return request.confirm(booking, "Booked")


async def _book_series_fit(request: Request) -> Message:
    """Book the occurrences of a refused series that fit now (the others are left out)."""
    value = _json_value(request.body)
    try:
        gpu, mib, task = str(value["gpu"]), int(value["mib"]), str(value["task"])
        rule = Recurrence.from_dict(value["rule"])
    except (KeyError, TypeError, ValueError, AttributeError, ZoneInfoNotFoundError):
        raise InputError(Code.BROKEN_BUTTON) from None
    result = await request.deps.service.create_series(
        request.actor, gpu=gpu, memory=mib, rule=rule, task=task, partial=True
    )
    return confirm_series(request, result, "Booked")


def _calendar_value(body: dict[str, Any]) -> tuple[str, date, bool]:
    """A calendar button's GPU, (local) day and whether it shows a week."""
    value = _json_value(body)
    try:
        return str(value["gpu"]), date.fromisoformat(str(value["day"])), bool(value.get("week"))
    except (KeyError, ValueError):
        raise InputError(Code.BROKEN_BUTTON) from None


async def _calendar_nav(request: Request) -> Message:
    gpu, day, week = _calendar_value(request.body)
    return await calendar_reply(request.deps, request.actor, gpu, day, week)


async def _calendar_chart(request: Request) -> Message:
    gpu, day, week = _calendar_value(request.body)
    return await send_chart(request.deps, request.client, request.actor, gpu, day, week)


async def _list_more(request: Request) -> Message:
    """The next page of a list, from the cursor the More button carries."""
    value = _json_value(request.body)
    try:
        start = datetime.fromisoformat(str(value["start"]))
        booking_id, shown = int(value["id"]), int(value["shown"])
    except (KeyError, TypeError, ValueError):
        raise InputError(Code.BROKEN_BUTTON) from None
    if start.tzinfo is None:
        raise InputError(Code.BROKEN_BUTTON)
    after = (start.astimezone(UTC), booking_id)
    return await list_page(request, everyone=bool(value.get("all")), after=after, shown=shown)


async def _edit(request: Request) -> None:
    await open_edit_modal(
        request.deps,
        request.client,
        request.actor,
        request.trigger_id,
        _booking_id(request.body),
        channel=request.channel,
    )


async def _home_new_booking(request: Request) -> None:
    await open_booking_modal(
        request.deps, request.client, request.actor, request.trigger_id, channel=None
    )


async def _home_calendar(request: Request) -> Message:
    """The calendar as a DM: its navigation buttons then work like any message's."""
    return await calendar_reply(request.deps, request.actor, None, None, False)


async def _raise_booking(request: Request) -> Message:
    """Raise a booking's memory to what its owner measurably uses (the over-use DM's button)."""
    value = _json_value(request.body)
    try:
        booking_id, mib = int(value["booking"]), int(value["mib"])
    except (KeyError, TypeError, ValueError):
        raise InputError(Code.BROKEN_BUTTON) from None
    service = request.deps.service
    booking = await service.update(request.actor, booking_id, BookingChange(memory=mib))
    return request.confirm(booking, f"Raised to {format_size(mib)}")


def _settle(code: Code) -> Work:
    """Dismiss an over-use / keep an idle booking: said once, not again while it lasts."""

    async def work(request: Request) -> Message:
        done = await request.deps.service.settle_usage_episode(
            request.actor, _booking_id(request.body)
        )
        text = mrkdwn(say(code, id=done.booking_id or 0), request.actor.tz, request.now)
        return Message(text, notice(text, emoji=":white_check_mark:"))

    return work


def _extend(service: BookingService, actor: Actor, booking_id: int) -> Awaitable[BookingInfo]:
    return service.extend(actor, booking_id, ids.EXTEND_STEP)


BUTTONS = (
    Button(
        ids.EXTEND,
        _booking_change(f"Extended by {format_duration(ids.EXTEND_STEP)}", _extend),
        changes=True,
    ),
    Button(ids.EXTEND_OFFER, _extend_offer, changes=True),
    Button(ids.RELEASE, _booking_change("Released", BookingService.release), changes=True),
    Button(ids.CANCEL, _booking_change("Cancelled", BookingService.cancel), changes=True),
    Button(ids.PIN, _booking_change("Pinned", BookingService.pin), changes=True),
    Button(ids.EDIT, _edit, opens_form=always),
    Button(ids.BOOK_SLOT, _book_slot, opens_form=_slot_without_task, changes=True),
    Button(ids.BOOK_SERIES_FIT, _book_series_fit, changes=True),
    Button(CALENDAR_NAV_ACTION, _calendar_nav, replace=True, zoned=True),
    Button(ids.USAGE_RAISE, _raise_booking, changes=True),
    Button(ids.USAGE_DISMISS, _settle(Code.USAGE_DISMISSED)),
    Button(ids.USAGE_KEEP, _settle(Code.USAGE_KEPT)),
    Button(ids.CALENDAR_CHART, _calendar_chart, zoned=True),
    Button(ids.LIST_MORE, _list_more, replace=True),
    Button(ids.HOME_NEW_BOOKING, _home_new_booking, opens_form=always),
    Button(ids.HOME_CALENDAR, _home_calendar, zoned=True),
)


def _incoming(context: Any, body: dict[str, Any], respond: AsyncRespond) -> Incoming:
    """A click in the App Home (or a modal) has no channel nor response_url: it is answered by
    DM; a click in a message, through its response_url."""
    if body.get("container", {}).get("type") == "view":
        return Incoming(context.team_id, body["user"]["id"], None, body)
    channel = (body.get("channel") or {}).get("id")
    return Incoming(context.team_id, body["user"]["id"], channel, body, respond)


def register(app: AsyncApp, deps: Deps) -> None:
    for button in BUTTONS:
        _listen(app, deps, button)


def _listen(app: AsyncApp, deps: Deps, button: Button) -> None:
    @app.action(button.action_id)
    async def on_click(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, context: Any
    ) -> None:
        incoming = _incoming(context, body, respond)
        await serve(ack, deps, client, incoming, lambda: button.plan(body))
