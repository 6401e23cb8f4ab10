"""`/gpubook`: every subcommand of ``handlers.command_parser``, answered ephemerally.

The listener acks at once with an empty body (so Slack never shows a timeout), then works out
who is asking, parses the text in their zone, calls the service and answers through the
``response_url``. Forms (the booking and edit modals) open with the request's ``trigger_id``,
which expires within seconds: only those commands cut the wait for the user's profile short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.snapshots import BookingInfo
from bot.core.timeparse import day_bounds
from bot.core.units import format_duration, format_size
from handlers import command_parser as cp
from handlers.blocks.common import Message, escape
from handlers.blocks.messages import (
    audit_message,
    booking_list,
    calendar_message,
    free_message,
    gpu_edited_message,
    help_message,
    notice,
    retired_message,
    stats_message,
    status_message,
)
from handlers.context import Deps, actor_and_profile, answer, reply_for, zone_reply
from handlers.home import refresh_homes
from handlers.modals import (
    confirmation,
    duration_text,
    open_booking_modal,
    open_edit_modal,
)
from handlers.users import UTC_ZONE

COMMAND = "/gpubook"


#: Verbs whose answer reads or shows times in the user's zone: when that zone is only a UTC
#: fallback, their answers say so.
_ZONED_VERBS = frozenset({"book", "calendar"})


@dataclass(frozen=True)
class Turn:
    """One request: who asked, where, what they need to answer it, and the bookings it changed
    (whose owners' App Homes are refreshed with the asker's)."""

    deps: Deps
    actor: Actor
    client: AsyncWebClient
    channel: str | None
    trigger_id: str
    now: datetime
    changed: list[BookingInfo] = field(default_factory=list)

    def confirm(self, booking: BookingInfo, headline: str) -> Message:
        """Record a change to ``booking`` and confirm it with its card."""
        self.changed.append(booking)
        return confirmation(booking, headline, self.actor, self.now)


# --------------------------------------------------------------------------- shared with buttons


async def calendar_reply(
    deps: Deps, actor: Actor, gpu: str | None, day: date | None, week: bool
) -> Message:
    """A GPU's day or week in the user's zone; without a GPU, the first one, naming the others."""
    now = deps.now()
    others: list[str] = []
    if gpu is None:
        names = [g.name for g in await deps.service.list_gpus(actor)]
        if not names:
            raise NotFound(Code.NO_GPUS)
        gpu, others = names[0], names[1:]
    day = day or now.astimezone(actor.tz).date()
    start, end = day_bounds(day, actor.tz, days=7 if week else 1)
    cal = await deps.service.calendar(actor, gpu, start, end)
    blocks = calendar_message(cal, now=now, tz=actor.tz, week=week)
    if others:
        names = ", ".join(f"`{escape(n)}`" for n in others)
        blocks += notice(f"Also: {names}. Show one with `/gpubook calendar <gpu>`.")
    return Message(f"Calendar of {cal.gpu.name} from {day.isoformat()}", blocks)


# --------------------------------------------------------------------------- subcommands


async def _open_modal(turn: Turn, cmd: cp.OpenModal) -> None:
    await open_booking_modal(
        turn.deps, turn.client, turn.actor, turn.trigger_id, channel=turn.channel
    )


async def _book(turn: Turn, cmd: cp.Book) -> Message | None:
    """A complete `book` books at once; an incomplete one opens the form with what was given."""
    if cmd.missing:
        await open_booking_modal(
            turn.deps,
            turn.client,
            turn.actor,
            turn.trigger_id,
            channel=turn.channel,
            gpu=cmd.gpu,
            memory_text=cmd.size_text,
            start=cmd.start,
            duration_text=duration_text(cmd.start, cmd.end, cmd.duration),
            task=cmd.task,
        )
        return None
    assert cmd.start is not None and cmd.size_text is not None and cmd.task is not None
    end = cmd.end if cmd.end is not None else cmd.start + (cmd.duration or timedelta(0))
    booking = await turn.deps.service.create(
        turn.actor, gpu=cmd.gpu, memory=cmd.size_text, start=cmd.start, end=end, task=cmd.task
    )
    return turn.confirm(booking, "Booked")


async def _list(turn: Turn, cmd: cp.ListBookings) -> Message:
    service = turn.deps.service
    bookings = await service.list_bookings(turn.actor, everyone=cmd.everyone)
    blocks = booking_list(
        bookings,
        everyone=cmd.everyone,
        viewer_id=turn.actor.user_id,
        now=turn.now,
        is_admin=service.is_admin(turn.actor),
    )
    who = "Everyone's" if cmd.everyone else "Your"
    return Message(f"{who} bookings: {len(bookings)}", blocks)


async def _cancel(turn: Turn, cmd: cp.Cancel) -> Message:
    booking = await turn.deps.service.cancel(turn.actor, cmd.booking_id)
    return turn.confirm(booking, "Cancelled")


async def _release(turn: Turn, cmd: cp.Release) -> Message:
    booking = await turn.deps.service.release(turn.actor, cmd.booking_id)
    return turn.confirm(booking, "Released")


async def _extend(turn: Turn, cmd: cp.Extend) -> Message:
    booking = await turn.deps.service.extend(turn.actor, cmd.booking_id, cmd.by)
    return turn.confirm(booking, f"Extended by {format_duration(cmd.by)}")


async def _edit(turn: Turn, cmd: cp.Edit) -> None:
    await open_edit_modal(
        turn.deps, turn.client, turn.actor, turn.trigger_id, cmd.booking_id, channel=turn.channel
    )


async def _calendar(turn: Turn, cmd: cp.Calendar) -> Message:
    return await calendar_reply(turn.deps, turn.actor, cmd.gpu, cmd.day, cmd.week)


async def _status(turn: Turn, cmd: cp.Status) -> Message:
    statuses = await turn.deps.service.status(turn.actor)
    return Message(f"{len(statuses)} GPUs", status_message(statuses, now=turn.now))


async def _free(turn: Turn, cmd: cp.Free) -> Message:
    duration = cmd.duration or turn.deps.free_duration
    service = turn.deps.service
    windows = await service.free(turn.actor, cmd.size_text, duration)
    text = f"Where {format_size(windows.memory_mib)} is free for {format_duration(duration)}"
    horizon = service.policy.search_horizon
    return Message(text, free_message(windows, now=turn.now, horizon=horizon, tz=turn.actor.tz))


async def _help(turn: Turn, cmd: cp.Help) -> Message:
    is_admin = turn.deps.service.is_admin(turn.actor)
    return Message("gpubook help", help_message(is_admin=is_admin))


async def _gpu_add(turn: Turn, cmd: cp.AdminGpuAdd) -> Message:
    gpu = await turn.deps.service.add_gpu(
        turn.actor, cmd.name, cmd.size_text, cmd.description or ""
    )
    text = f"Added `{gpu.name}` with {format_size(gpu.capacity_mib)}."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def _gpu_retire(turn: Turn, cmd: cp.AdminGpuRetire) -> Message:
    service = turn.deps.service
    ended = await service.retire_gpu(turn.actor, cmd.name, cancel_future=cmd.cancel_future)
    turn.changed.extend(ended)
    text = f"Retired `{cmd.name}`; it takes no new bookings."
    if ended:
        text += f" {len(ended)} of its bookings ended or were cancelled."
    return Message(text, retired_message(cmd.name, ended, now=turn.now))


async def _gpu_edit(turn: Turn, cmd: cp.AdminGpuEdit) -> Message:
    gpu = await turn.deps.service.edit_gpu(
        turn.actor,
        cmd.name,
        new_name=cmd.new_name,
        size=cmd.size_text,
        description=cmd.description,
    )
    text = f"Updated `{gpu.name}`: {format_size(gpu.capacity_mib)}."
    return Message(text, gpu_edited_message(gpu))


async def _channel(turn: Turn, cmd: cp.AdminChannel) -> Message:
    await turn.deps.service.set_channel(turn.actor, cmd.channel_id, gpu=cmd.gpu)
    what = f"`{escape(cmd.gpu)}`'s notifications" if cmd.gpu else "Notifications"
    text = f"{what} now go to <#{cmd.channel_id}>."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def _audit(turn: Turn, cmd: cp.AdminAudit) -> Message:
    entries = await turn.deps.service.audit_log(turn.actor, limit=cmd.limit)
    return Message(f"The latest {len(entries)} audit entries", audit_message(entries, now=turn.now))


async def _stats(turn: Turn, cmd: cp.AdminStats) -> Message:
    service = turn.deps.service
    usage = await service.utilisation(turn.actor, turn.now - timedelta(days=cmd.days), turn.now)
    return Message(f"Utilisation over {cmd.days} days", stats_message(usage, now=turn.now))


_Handler = Callable[[Turn, Any], Awaitable[Message | None]]
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


def _raising(error: Exception) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        raise error

    return work


async def run_command(
    deps: Deps,
    client: AsyncWebClient,
    respond: AsyncRespond | None,
    team_id: str | None,
    command: dict[str, Any],
) -> None:
    """Everything after the ack: parse in the user's zone, dispatch, answer, refresh the Homes."""
    user_id, channel = command["user_id"], command.get("channel_id")
    text = command.get("text") or ""
    wait = deps.lookup_timeout if _opens_modal(text, deps.now()) else deps.reply_lookup_timeout
    actor, profile = await actor_and_profile(deps, client, team_id, user_id, max_wait=wait)
    reply = reply_for(client, user_id, respond, channel)
    if (text.split() or [""])[0].lower() in _ZONED_VERBS:
        reply = zone_reply(reply, profile)
    now = deps.now()
    try:
        parsed = cp.parse_command(text, now=now, tz=actor.tz)
    except Exception as error:  # a refusal or a parser bug: answered like any other failure
        await answer(reply, deps, _raising(error), tz=actor.tz)
        return
    turn = Turn(deps, actor, client, channel, command.get("trigger_id", ""), now)
    handler = _HANDLERS[type(parsed)]
    task = parsed.task if isinstance(parsed, cp.Book) else None
    ok = await answer(reply, deps, lambda: handler(turn, parsed), task=task, tz=actor.tz)
    if ok and isinstance(parsed, _CHANGES) and not getattr(parsed, "missing", ()):
        await refresh_homes(deps, client, actor, turn.changed)


def _opens_modal(text: str, now: datetime) -> bool:
    """Whether the command opens a form, so its trigger_id bounds the wait for ``users.info``.

    Read in UTC before the zone is known: whether `book` lacks parts does not depend on the zone.
    Text that does not parse is answered by message, so it is not a form.
    """
    try:
        parsed = cp.parse_command(text, now=now, tz=UTC_ZONE)
    except Exception:  # the real parse, in the user's zone, reports it
        return False
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
        await ack()
        await run_command(deps, client, respond, context.team_id, command)
