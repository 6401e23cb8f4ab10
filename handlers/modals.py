"""The booking and edit modals: opening them, following the GPU select, and their submissions.

Opening happens right after ``ack()`` with the request's ``trigger_id``, which Slack expires within
seconds, so the only work before ``views.open`` is one quick database read and a cached (or
deadline-bounded) ``users.info``. A submission's refusal must be the ``ack`` itself
(``response_action="errors"``), so submissions call the service *before* acking — one short
transaction, awaited up to a deadline — and send the confirmation after. A save that outlives the
deadline is never cancelled (its commit may be under way): the form is closed and its outcome is
sent by message instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor, BookingChange
from bot.core.errors import GpubookError, InputError, NotFound
from bot.core.phrases import Code
from bot.core.snapshots import BookingInfo
from bot.core.timefmt import format_window, zone_label
from bot.core.units import format_duration, format_size, parse_duration
from bot.core.vocabulary import ChangeVerb
from handlers import ids
from handlers.blocks.common import Message, clip
from handlers.blocks.messages import booking_confirmation
from handlers.blocks.modals import ANY_GPU, booking_modal, edit_modal, modal_values
from handlers.context import (
    APOLOGY,
    Deps,
    DirectReply,
    EphemeralReply,
    Reply,
    actor_for,
    answer,
    metadata,
    read_metadata,
)
from handlers.home import refresh_homes
from handlers.wording import FormText

log = logging.getLogger(__name__)

#: The date-time picker has minute resolution: a start within this of the booking's is unchanged.
PICKER_RESOLUTION = timedelta(minutes=1)
#: Longest field error sent back into a form (the sentences are short; a quoted input may not be).
MAX_FIELD_ERROR = 500

#: Saves a submitted form: (deps, actor, view, private metadata) → the booking saved.
Save = Callable[[Deps, Actor, dict[str, Any], dict[str, Any]], Awaitable[BookingInfo]]


def confirmation(b: BookingInfo, headline: str, actor: Actor, now: datetime) -> Message:
    """A booking's confirmation card; the fallback text names no user text (so it pings nobody)."""
    window = f"{format_window(b.start, b.end, actor.tz, now)} {zone_label(actor.tz, b.start)}"
    text = f"{headline} #{b.id}: {format_size(b.memory_mib)} on {b.gpu_name}, {window}."
    blocks = booking_confirmation(
        b, headline=f":white_check_mark: {headline}", now=now, viewer_id=actor.user_id
    )
    return Message(text, blocks)


async def open_booking_modal(
    deps: Deps,
    client: AsyncWebClient,
    actor: Actor,
    trigger_id: str,
    *,
    channel: str | None,
    gpu: str | None = None,
    memory_text: str | None = None,
    start: datetime | None = None,
    duration_text: str | None = None,
    task: str | None = None,
) -> None:
    """Open the booking form, pre-filled with whatever the user already said.

    With a single GPU there is nothing to choose, so it is selected (and its 50% default shown).
    """
    statuses = await deps.service.status(actor)
    if not statuses:
        raise NotFound(Code.NO_GPUS)
    if gpu is None and len(statuses) == 1:
        gpu = statuses[0].gpu.name
    view = booking_modal(
        statuses,
        now=deps.now(),
        tz=actor.tz,
        selected_gpu=gpu,
        memory_text=memory_text,
        start=start,
        duration_text=duration_text,
        task=task,
        private_metadata=metadata(channel=channel),
    )
    await client.views_open(trigger_id=trigger_id, view=view)


async def open_edit_modal(
    deps: Deps,
    client: AsyncWebClient,
    actor: Actor,
    trigger_id: str,
    booking_id: int,
    *,
    channel: str | None,
) -> None:
    """Open the edit form; refused up front if the actor may not edit the booking.

    The metadata keeps the window the form shows, so the submission can tell what the user
    changed without reading the booking again.
    """
    booking = await deps.service.get_for_change(actor, booking_id, ChangeVerb.EDIT)
    shown = metadata(
        booking=booking.id,
        channel=channel,
        start=int(booking.start.timestamp()),
        end=int(booking.end.timestamp()),
    )
    view = edit_modal(booking, now=deps.now(), private_metadata=shown)
    await client.views_open(trigger_id=trigger_id, view=view)


def _reply_to(client: AsyncWebClient, user_id: str, meta: dict[str, Any]) -> Reply:
    """Where a submission's confirmation goes: the command's channel, else a DM (App Home)."""
    channel = meta.get("channel")
    if isinstance(channel, str) and channel:
        return EphemeralReply(client, channel, user_id)
    return DirectReply(client, user_id)


def _start(values: dict[str, Any]) -> datetime | None:
    seconds = values.get(ids.BLOCK_START)
    return None if seconds is None else datetime.fromtimestamp(int(seconds), UTC)


def _duration(values: dict[str, Any]) -> timedelta:
    text = values.get(ids.BLOCK_DURATION)
    if not text:
        raise InputError(Code.FORM_DURATION_MISSING, field="duration")
    return parse_duration(text)


def _error_block(field: str | None, view: dict[str, Any]) -> str:
    """The input block a refusal belongs under: its field, else the first input of the form."""
    inputs = [b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"]
    target = ids.FIELD_TO_BLOCK.get(field or "", field)
    if target in inputs or not inputs:
        return target or ids.BLOCK_MEMORY
    return inputs[0]


def _field_error(view: dict[str, Any], field: str | None, sentence: str) -> dict[str, Any]:
    """The ack that shows ``sentence`` under a form's input. Field errors are plain text (not
    mrkdwn): the sentence comes rendered as plain text, cut to a length a form can show."""
    return {
        "response_action": "errors",
        "errors": {_error_block(field, view): clip(sentence, MAX_FIELD_ERROR)},
    }


async def _create(deps: Deps, actor: Actor, view: dict[str, Any]) -> BookingInfo:
    values = modal_values(view)
    start = _start(values)
    if start is None:
        raise InputError(Code.FORM_START_MISSING, field="start")
    gpu = values.get(ids.BLOCK_GPU)
    if not gpu:
        raise InputError(Code.FORM_GPU_MISSING, field="gpu")
    return await deps.service.create(
        actor,
        gpu=None if gpu == ANY_GPU else gpu,
        memory=values.get(ids.BLOCK_MEMORY) or "",
        start=start,
        end=start + _duration(values),
        task=values.get(ids.BLOCK_TASK) or "",
    )


def _shown_time(meta: dict[str, Any], key: str) -> datetime:
    """A time the form was opened with (see :func:`open_edit_modal`)."""
    seconds = meta.get(key)
    if not isinstance(seconds, int):
        raise InputError(Code.FORM_LOST_BOOKING)
    return datetime.fromtimestamp(seconds, UTC)


async def _update(
    deps: Deps, actor: Actor, view: dict[str, Any], booking_id: int, meta: dict[str, Any]
) -> BookingInfo:
    """Apply the edit form; only what differs from what the form showed is sent as a change, and
    the service keeps the rest as the booking has it now (so nothing is read before the save)."""
    values = modal_values(view)
    start = _start(values)
    if start is not None and abs(start - _shown_time(meta, "start")) < PICKER_RESOLUTION:
        start = None
    end = None
    # A form without the duration input (or a forged one) leaves the end as it is.
    if ids.BLOCK_DURATION in values:
        end = (start or _shown_time(meta, "start")) + _duration(values)
        if end == _shown_time(meta, "end"):
            end = None
    change = BookingChange(
        task=values.get(ids.BLOCK_TASK),
        start=start,
        end=end,
        memory=values.get(ids.BLOCK_MEMORY),
    )
    return await deps.service.update(actor, booking_id, change)


async def _refused_in_form(
    ack: Any, view: dict[str, Any], saving: asyncio.Task[Any], tz: tzinfo, now: datetime
) -> bool:
    """Ack a finished save's refusal (or an apology) into the form; False if it saved."""
    try:
        saving.result()
    except GpubookError as error:
        await ack(**_field_error(view, error.field, error.render(FormText(tz, now))))
        return True
    except Exception:
        log.exception("saving a modal failed")
        await ack(**_field_error(view, None, APOLOGY))
        return True
    return False


async def _submit(
    ack: Any,
    deps: Deps,
    client: AsyncWebClient,
    context: Any,
    body: dict[str, Any],
    headline: str,
    save: Save,
) -> None:
    """Save a form; refusals go back into the form, success closes it and confirms by message.

    The whole submission is awaited up to ``deps.submit_deadline``, since an ack after 3 s is lost.
    A save still running then is left to finish rather than cancelled, because its commit may
    already be under way and a "try again" would book twice: the form is closed at once and the
    save's real outcome (confirmation or refusal) follows as a message.
    """
    deadline = asyncio.get_running_loop().time() + deps.submit_deadline
    view = body["view"]
    user_id = body["user"]["id"]
    meta = read_metadata(view.get("private_metadata"))
    # Bounded by lookup_timeout: past it the actor is read in UTC.
    actor = await actor_for(deps, client, context.team_id, user_id, max_wait=deps.lookup_timeout)
    saving = asyncio.create_task(save(deps, actor, view, meta))
    left = max(0.0, deadline - asyncio.get_running_loop().time())
    done, _ = await asyncio.wait({saving}, timeout=left)
    if not done:
        log.warning(
            "saving %s for %s took over %.1fs; its outcome goes by message",
            view.get("callback_id"),
            user_id,
            deps.submit_deadline,
        )
    elif await _refused_in_form(ack, view, saving, actor.tz, deps.now()):
        return
    await ack()

    async def outcome() -> Message:
        # shield: should this listener be cancelled, the save still finishes.
        booking = await asyncio.shield(saving)
        return confirmation(booking, headline, actor, deps.now())

    if await answer(_reply_to(client, user_id, meta), deps, outcome, tz=actor.tz):
        await refresh_homes(deps, client, actor, [saving.result()])


async def _save_new(
    deps: Deps, actor: Actor, view: dict[str, Any], meta: dict[str, Any]
) -> BookingInfo:
    return await _create(deps, actor, view)


async def _save_edit(
    deps: Deps, actor: Actor, view: dict[str, Any], meta: dict[str, Any]
) -> BookingInfo:
    booking_id = meta.get("booking")
    if not isinstance(booking_id, int):
        raise InputError(Code.FORM_LOST_BOOKING)
    return await _update(deps, actor, view, booking_id, meta)


async def _follow_gpu(
    deps: Deps, client: AsyncWebClient, context: Any, body: dict[str, Any]
) -> None:
    """Re-render the booking form for the newly chosen GPU (memory default: half of it)."""
    view = body["view"]
    values = modal_values(view)
    gpu = body["actions"][0].get("selected_option", {}).get("value")
    actor = await actor_for(
        deps, client, context.team_id, body["user"]["id"], max_wait=deps.lookup_timeout
    )
    duration = values.get(ids.BLOCK_DURATION)
    new_view = booking_modal(
        await deps.service.status(actor),
        now=deps.now(),
        tz=actor.tz,
        selected_gpu=None if gpu in (None, ANY_GPU) else gpu,
        start=_start(values),
        duration_text=duration,
        task=values.get(ids.BLOCK_TASK),
        private_metadata=view.get("private_metadata", ""),
    )
    try:
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
    except SlackApiError as error:
        # hash_conflict: the user changed the form again meanwhile; that newer event wins.
        if error.response.get("error") != "hash_conflict":
            raise


def duration_text(start: datetime | None, end: datetime | None, by: timedelta | None) -> str | None:
    """What to pre-fill the form's duration with, from `for 3h` or `until 17:00`."""
    if by is not None:
        return format_duration(by)
    if start is not None and end is not None and end > start:
        return format_duration(end - start)
    return None


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(ids.BOOK_MODAL)
    async def book_submitted(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        await _submit(ack, deps, client, context, body, "Booked", _save_new)

    @app.view(ids.EDIT_MODAL)
    async def edit_submitted(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        await _submit(ack, deps, client, context, body, "Updated", _save_edit)

    @app.action(ids.MODAL_GPU_SELECT)
    async def gpu_selected(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        await ack()
        try:
            await _follow_gpu(deps, client, context, body)
        except Exception:
            log.exception("could not follow the GPU select")
