"""`/gpubook`: every subcommand of ``handlers.command_parser``, answered ephemerally.

The listener acks at once with an empty body (so Slack never shows a timeout), then works out
who is asking, parses the text in their zone, calls the service and answers through the
``response_url``. Forms (the booking and edit modals) open with the request's ``trigger_id``,
which expires within seconds: only those commands cut the wait for the user's profile short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.units import format_duration, format_size
from handlers import command_parser as cp
from handlers.blocks.common import Message, escape
from handlers.blocks.messages import (
    audit_message,
    booking_list,
    free_message,
    gpu_edited_message,
    help_message,
    notice,
    retired_message,
    stats_message,
    status_message,
)
from handlers.calendar import calendar_reply
from handlers.context import Deps
from handlers.modals import duration_text, open_booking_modal, open_edit_modal
from handlers.pipeline import Incoming, Plan, Request, serve
from handlers.users import UTC_ZONE

COMMAND = "/gpubook"


#: Verbs whose answer reads or shows times in the user's zone: when that zone is only a UTC
#: fallback, their answers say so.
_ZONED_VERBS = frozenset({"book", "calendar"})


# --------------------------------------------------------------------------- subcommands


async def _open_modal(request: Request, cmd: cp.OpenModal) -> None:
    await open_booking_modal(
        request.deps, request.client, request.actor, request.trigger_id, channel=request.channel
    )


async def _book(request: Request, cmd: cp.Book) -> Message | None:
    """A complete `book` books at once; an incomplete one opens the form with what was given."""
    if cmd.missing:
        await open_booking_modal(
            request.deps,
            request.client,
            request.actor,
            request.trigger_id,
            channel=request.channel,
            gpu=cmd.gpu,
            memory_text=cmd.size_text,
            start=cmd.start,
            duration_text=duration_text(cmd.start, cmd.end, cmd.duration),
            task=cmd.task,
        )
        return None
    assert cmd.start is not None and cmd.size_text is not None and cmd.task is not None
    end = cmd.end if cmd.end is not None else cmd.start + (cmd.duration or timedelta(0))
    booking = await request.deps.service.create(
        request.actor, gpu=cmd.gpu, memory=cmd.size_text, start=cmd.start, end=end, task=cmd.task
    )
    return request.confirm(booking, "Booked")


async def _list(request: Request, cmd: cp.ListBookings) -> Message:
    service = request.deps.service
    bookings = await service.list_bookings(request.actor, everyone=cmd.everyone)
    blocks = booking_list(
        bookings,
        everyone=cmd.everyone,
        viewer_id=request.actor.user_id,
        now=request.now,
        is_admin=service.is_admin(request.actor),
    )
    who = "Everyone's" if cmd.everyone else "Your"
    return Message(f"{who} bookings: {len(bookings)}", blocks)


async def _cancel(request: Request, cmd: cp.Cancel) -> Message:
    booking = await request.deps.service.cancel(request.actor, cmd.booking_id)
    return request.confirm(booking, "Cancelled")


async def _release(request: Request, cmd: cp.Release) -> Message:
    booking = await request.deps.service.release(request.actor, cmd.booking_id)
    return request.confirm(booking, "Released")


async def _extend(request: Request, cmd: cp.Extend) -> Message:
    booking = await request.deps.service.extend(request.actor, cmd.booking_id, cmd.by)
    return request.confirm(booking, f"Extended by {format_duration(cmd.by)}")


async def _edit(request: Request, cmd: cp.Edit) -> None:
    await open_edit_modal(
        request.deps,
        request.client,
        request.actor,
        request.trigger_id,
        cmd.booking_id,
        channel=request.channel,
    )


async def _calendar(request: Request, cmd: cp.Calendar) -> Message:
    return await calendar_reply(request.deps, request.actor, cmd.gpu, cmd.day, cmd.week)


async def _status(request: Request, cmd: cp.Status) -> Message:
    statuses = await request.deps.service.status(request.actor)
    return Message(f"{len(statuses)} GPUs", status_message(statuses, now=request.now))


async def _free(request: Request, cmd: cp.Free) -> Message:
    duration = cmd.duration or request.deps.free_duration
    service = request.deps.service
    windows = await service.free(request.actor, cmd.size_text, duration)
    text = f"Where {format_size(windows.memory_mib)} is free for {format_duration(duration)}"
    horizon = service.policy.search_horizon
    return Message(
        text, free_message(windows, now=request.now, horizon=horizon, tz=request.actor.tz)
    )


async def _help(request: Request, cmd: cp.Help) -> Message:
    is_admin = request.deps.service.is_admin(request.actor)
    return Message("gpubook help", help_message(is_admin=is_admin))


async def _gpu_add(request: Request, cmd: cp.AdminGpuAdd) -> Message:
    gpu = await request.deps.service.add_gpu(
        request.actor, cmd.name, cmd.size_text, cmd.description or ""
    )
    text = f"Added `{gpu.name}` with {format_size(gpu.capacity_mib)}."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def _gpu_retire(request: Request, cmd: cp.AdminGpuRetire) -> Message:
    service = request.deps.service
    ended = await service.retire_gpu(request.actor, cmd.name, cancel_future=cmd.cancel_future)
    request.changed.extend(ended)
    text = f"Retired `{cmd.name}`; it takes no new bookings."
    if ended:
        text += f" {len(ended)} of its bookings ended or were cancelled."
    return Message(text, retired_message(cmd.name, ended, now=request.now))


async def _gpu_edit(request: Request, cmd: cp.AdminGpuEdit) -> Message:
    gpu = await request.deps.service.edit_gpu(
        request.actor,
        cmd.name,
        new_name=cmd.new_name,
        size=cmd.size_text,
        description=cmd.description,
    )
    text = f"Updated `{gpu.name}`: {format_size(gpu.capacity_mib)}."
    return Message(text, gpu_edited_message(gpu))


async def _channel(request: Request, cmd: cp.AdminChannel) -> Message:
    await request.deps.service.set_channel(request.actor, cmd.channel_id, gpu=cmd.gpu)
    what = f"`{escape(cmd.gpu)}`'s notifications" if cmd.gpu else "Notifications"
    text = f"{what} now go to <#{cmd.channel_id}>."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def _audit(request: Request, cmd: cp.AdminAudit) -> Message:
    entries = await request.deps.service.audit_log(request.actor, limit=cmd.limit)
    return Message(
        f"The latest {len(entries)} audit entries", audit_message(entries, now=request.now)
    )


async def _stats(request: Request, cmd: cp.AdminStats) -> Message:
    service = request.deps.service
    usage = await service.utilisation(
        request.actor, request.now - timedelta(days=cmd.days), request.now
    )
    return Message(f"Utilisation over {cmd.days} days", stats_message(usage, now=request.now))


_Handler = Callable[[Request, Any], Awaitable[Message | None]]
_HANDLERS: dict[type, _Handler] = {
    cp.OpenModal: _open_modal,
    cp.Book: _book,
    cp.ListBookings: _list,
    cp.Cancel: _cancel,
    cp.Release: _release,
    cp.Extend: _extend,
    cp.Edit: _edit,
    cp.Calendar: _calendar,
    cp.Status: _status,
    cp.Free: _free,
    cp.Help: _help,
    cp.AdminGpuAdd: _gpu_add,
    cp.AdminGpuRetire: _gpu_retire,
    cp.AdminGpuEdit: _gpu_edit,
    cp.AdminChannel: _channel,
    cp.AdminStats: _stats,
    cp.AdminAudit: _audit,
}
#: Subcommands that change bookings (or, renaming a GPU, how they read), after which the App
#: Homes of the asker and of every owner concerned are re-published.
_CHANGES = (cp.Book, cp.Cancel, cp.Release, cp.Extend, cp.AdminGpuRetire, cp.AdminGpuEdit)


def _plan(text: str, now: datetime) -> Plan:
    """Read the command once in UTC, before the user's zone is known, to decide the wait.

    Whether a command opens a form (and so must hurry for its trigger_id), the task it names and
    whether it changes bookings do not depend on the zone; the times in it do, so the verbs that
    read times are read again in the user's zone once it is known.
    """
    zoned = (text.split() or [""])[0].lower() in _ZONED_VERBS
    try:
        first: cp.Command | Exception = cp.parse_command(text, now=now, tz=UTC_ZONE)
    except Exception as error:  # a refusal or a parser bug: answered like any other failure
        first = error

    async def work(request: Request) -> Message | None:
        parsed = first
        if zoned:
            parsed = cp.parse_command(text, now=request.now, tz=request.actor.tz)
        if isinstance(parsed, Exception):
            raise parsed
        return await _HANDLERS[type(parsed)](request, parsed)

    if isinstance(first, Exception):
        return Plan(work, zoned=zoned)
    opens = _opens_modal(first)
    return Plan(
        work,
        opens_form=opens,
        zoned=zoned,
        changes=isinstance(first, _CHANGES) and not opens,
        task=first.task if isinstance(first, cp.Book) else None,
    )


def _opens_modal(parsed: cp.Command) -> bool:
    """Whether the command opens a form, so its trigger_id bounds the wait for ``users.info``."""
    if isinstance(parsed, cp.Book):
        return bool(parsed.missing)
    return isinstance(parsed, cp.OpenModal | cp.Edit)


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
        await serve(
            ack, deps, client, incoming, lambda: _plan(command.get("text") or "", deps.now())
        )
