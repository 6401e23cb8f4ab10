"""The booking and edit modals: opening them, following the GPU select, and their submissions.

Opening happens right after ``ack()`` with the request's ``trigger_id``, which Slack expires within
seconds, so the only work before ``views.open`` is one quick database read and a cached (or
deadline-bounded) ``users.info``. Submissions take the pipeline's form path
(:func:`handlers.pipeline.submit`): a refusal is shown under the input it concerns, as the ack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor, BookingChange
from bot.core.errors import InputError, InvalidState, NotFound
from bot.core.formats import format_duration
from bot.core.phrases import Code
from bot.core.recurrence import EVERY_DAY, WEEKDAYS, Recurrence
from bot.core.snapshots import BookingInfo, GpuStatus, SeriesResult
from bot.core.units import parse_duration
from bot.core.vocabulary import ChangeVerb
from handlers import ids
from handlers.ack import after_ack
from handlers.blocks.common import clip
from handlers.blocks.modals import (
    ANY_GPU,
    Repeat,
    booking_modal,
    default_memory,
    edit_modal,
    modal_values,
)
from handlers.booking_form import BookingForm
from handlers.context import Deps, actor_for, metadata, read_metadata
from handlers.pipeline import BOOKED, Incoming, Request, Save, submit

#: The date-time picker has minute resolution: a start within this of the booking's is unchanged.
PICKER_RESOLUTION = timedelta(minutes=1)
#: Longest field error sent back into a form (the sentences are short; a quoted input may not be).
MAX_FIELD_ERROR = 500


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
    missing: Sequence[str] = (),
) -> None:
    """Open the booking form, pre-filled with whatever the user already said.

    ``missing`` names what a `book` lacked (``Book.missing``): the form says so at its top, and
    that it does not know ``gpu`` if it names no GPU. With a single GPU there is nothing to
    choose, so it is selected (and its 50% default shown).
    """
    statuses = await deps.service.status(actor)
    if not statuses:
        raise NotFound(Code.NO_GPUS)
    if gpu is None and len(statuses) == 1:
        gpu = statuses[0].gpu.name
        missing = [m for m in missing if m != "gpu"]
    form = BookingForm.opened(channel, missing, gpu, (s.gpu.name for s in statuses))
    view = _booking_view(
        deps,
        actor,
        statuses,
        form,
        gpu=gpu,
        memory_text=memory_text,
        start=start,
        duration_text=duration_text,
        task=task,
    )
    await client.views_open(trigger_id=trigger_id, view=view)


def _booking_view(
    deps: Deps,
    actor: Actor,
    statuses: list[GpuStatus],
    form: BookingForm,
    *,
    gpu: str | None,
    memory_text: str | None,
    start: datetime | None,
    duration_text: str | None,
    task: str | None,
) -> View:
    """The booking form as opened or re-rendered; its metadata names the memory default it shows."""
    default = None if memory_text is not None else default_memory(statuses, gpu)
    return booking_modal(
        statuses,
        now=deps.now(),
        tz=actor.tz,
        selected_gpu=gpu,
        memory_text=memory_text,
        start=start,
        duration_text=duration_text,
        task=task,
        notes=form.notes(),
        private_metadata=form.dump(default),
    )


async def open_edit_modal(
    deps: Deps,
    client: AsyncWebClient,
    actor: Actor,
    trigger_id: str,
    booking_id: int,
    *,
    channel: str | None,
    series: bool = False,
) -> None:
    """Open the edit form (``series``: for the rest of the booking's series); refused up front if
    the actor may not edit the booking.

    The metadata keeps the window the form shows, so the submission can tell what the user
    changed without reading the booking again.
    """
    booking = await deps.service.get_for_change(actor, booking_id, ChangeVerb.EDIT)
    if series and booking.series_id is None:
        raise InvalidState(Code.NOT_A_SERIES, id=booking.id, verb=str(ChangeVerb.EDIT))
    shown = metadata(
        booking=booking.id,
        channel=channel,
        start=int(booking.start.timestamp()),
        end=int(booking.end.timestamp()),
        series=series or None,
    )
    view = edit_modal(booking, now=deps.now(), private_metadata=shown, series=series)
    await client.views_open(trigger_id=trigger_id, view=view)


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


async def _create(deps: Deps, actor: Actor, view: dict[str, Any]) -> BookingInfo | SeriesResult:
    values = modal_values(view)
    start = _start(values)
    if start is None:
        raise InputError(Code.FORM_START_MISSING, field="start")
    chosen = values.get(ids.BLOCK_GPU)
    if not chosen:
        raise InputError(Code.FORM_GPU_MISSING, field="gpu")
    gpu = None if chosen == ANY_GPU else chosen
    memory, task = values.get(ids.BLOCK_MEMORY) or "", values.get(ids.BLOCK_TASK) or ""
    repeat = values.get(ids.BLOCK_REPEAT) or Repeat.NONE
    if ids.FLEXIBLE_VALUE in (values.get(ids.BLOCK_FLEXIBLE) or ()):
        if repeat != Repeat.NONE:
            raise InputError(Code.FORM_FLEXIBLE_SERIES, field=ids.BLOCK_FLEXIBLE)
        # The queue's path: the start is the earliest wanted; a GPU name matches only itself.
        return await deps.service.create_flexible(
            actor,
            memory=memory,
            duration=_duration(values),
            task=task,
            pattern=gpu,
            not_before=start,
        )
    if repeat != Repeat.NONE:
        rule = _rule(values, repeat, start, _duration(values), actor.tz)
        return await deps.service.create_series(actor, gpu=gpu, memory=memory, rule=rule, task=task)
    end = start + _duration(values)
    return await deps.service.create(actor, gpu=gpu, memory=memory, start=start, end=end, task=task)


_REPEAT_DAYS = {Repeat.DAILY: EVERY_DAY, Repeat.WEEKDAYS: WEEKDAYS}


def _rule(
    values: dict[str, Any], repeat: str, start: datetime, length: timedelta, tz: tzinfo
) -> Recurrence:
    """The form's repeat section as a rule: from the start's day and time of day in the asker's
    zone, on the chosen days (weekly without days: the start's weekday), until the day picked."""
    local = start.astimezone(tz)
    try:
        chosen = frozenset(int(d) for d in values.get(ids.BLOCK_REPEAT_DAYS) or ())
        until = values.get(ids.BLOCK_REPEAT_UNTIL)
        last_day = None if until is None else date.fromisoformat(str(until))
    except ValueError:
        raise InputError(Code.BROKEN_BUTTON) from None
    if last_day is None:
        raise InputError(Code.SERIES_END_MISSING, field=ids.BLOCK_REPEAT_UNTIL)
    days = _REPEAT_DAYS.get(repeat) or chosen or frozenset({local.weekday()})
    if not days <= EVERY_DAY:
        raise InputError(Code.BROKEN_BUTTON)
    if last_day < local.date():
        raise InputError(
            Code.SERIES_END_BEFORE_START,
            field=ids.BLOCK_REPEAT_UNTIL,
            last=last_day.isoformat(),
            first=local.date().isoformat(),
        )
    return Recurrence(
        days,
        local.time().replace(tzinfo=None),
        getattr(tz, "key", None) or "UTC",
        local.date(),
        length=length,
        last_day=last_day,
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


def _incoming(context: Any, body: dict[str, Any]) -> Incoming:
    """A submission confirms in the channel of the command that opened its form, else by DM."""
    channel = read_metadata(body["view"].get("private_metadata")).get("channel")
    return Incoming(
        context.team_id,
        body["user"]["id"],
        channel if isinstance(channel, str) and channel else None,
        body,
    )


async def _save_new(request: Request) -> BookingInfo | SeriesResult:
    return await _create(request.deps, request.actor, request.body["view"])


async def _save_edit(request: Request) -> BookingInfo | SeriesResult:
    view = request.body["view"]
    meta = read_metadata(view.get("private_metadata"))
    booking_id = meta.get("booking")
    if not isinstance(booking_id, int):
        raise InputError(Code.FORM_LOST_BOOKING)
    if meta.get("series") is True:
        return await _update_series(request.deps, request.actor, view, booking_id, meta)
    return await _update(request.deps, request.actor, view, booking_id, meta)


async def _update_series(
    deps: Deps, actor: Actor, view: dict[str, Any], booking_id: int, meta: dict[str, Any]
) -> SeriesResult:
    """The edit form for the rest of a series: each occurrence keeps its start; a duration
    changed from the one shown becomes every occurrence's."""
    values = modal_values(view)
    length = _duration(values)
    if length == _shown_time(meta, "end") - _shown_time(meta, "start"):
        length = None
    return await deps.service.update_series(
        actor,
        booking_id,
        task=values.get(ids.BLOCK_TASK),
        memory=values.get(ids.BLOCK_MEMORY),
        length=length,
    )


async def _follow_gpu(
    deps: Deps, client: AsyncWebClient, context: Any, body: dict[str, Any]
) -> None:
    """Re-render the booking form for the newly chosen GPU.

    Everything the form shows is kept — pre-filled or typed — except a memory that is still the
    old GPU's default: that becomes the new GPU's (half of it).
    """
    view = body["view"]
    values = modal_values(view)
    form = BookingForm.load(view.get("private_metadata"))
    gpu = body["actions"][0].get("selected_option", {}).get("value")
    actor = await actor_for(
        deps, client, context.team_id, body["user"]["id"], max_wait=deps.lookup_timeout
    )
    new_view = _booking_view(
        deps,
        actor,
        await deps.service.status(actor),
        form,
        gpu=None if gpu in (None, ANY_GPU) else gpu,
        memory_text=form.kept_memory(values.get(ids.BLOCK_MEMORY)),
        start=_start(values),
        duration_text=values.get(ids.BLOCK_DURATION),
        task=values.get(ids.BLOCK_TASK),
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
    def on_submit(headline: str, save: Save) -> Callable[..., Awaitable[None]]:
        async def submitted(
            ack: Any, body: dict[str, Any], client: AsyncWebClient, context: Any
        ) -> None:
            view = body["view"]
            await submit(
                ack,
                deps,
                client,
                _incoming(context, body),
                save,
                headline=headline,
                form_error=lambda field, sentence: _field_error(view, field, sentence),
            )

        return submitted

    app.view(ids.BOOK_MODAL)(on_submit(BOOKED, _save_new))
    app.view(ids.EDIT_MODAL)(on_submit("Updated", _save_edit))

    @app.action(ids.MODAL_GPU_SELECT)
    async def gpu_selected(
        ack: Any, body: dict[str, Any], client: AsyncWebClient, context: Any
    ) -> None:
        await ack()

        after_ack(_follow_gpu(deps, client, context, body), "following the GPU select")
