"""How each everyday subcommand is answered: the handlers the verb registry points at.

Each takes the request and its parsed command and returns the answer (``None`` when it opened a
form instead); the pipeline sends it, turns refusals into refusal blocks and refreshes Homes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.formats import count_of, format_duration, format_size
from bot.core.limits import standing_sentences
from handlers.blocks.bookings import MAX_LIST_CARDS, booking_list
from handlers.blocks.common import Message, notice
from handlers.blocks.modals import ANY_GPU
from handlers.blocks.reports import free_message, status_message
from handlers.calendar import calendar_reply
from handlers.commands.syntax import (
    Book,
    BookFlexible,
    BookSeries,
    Calendar,
    Cancel,
    Edit,
    Extend,
    Free,
    ListBookings,
    OpenModal,
    Release,
    ShowLimits,
    Status,
)
from handlers.modals import duration_text, open_booking_modal, open_edit_modal
from handlers.pipeline import BOOKED, Request, confirm_series, with_notes
from handlers.wording import mrkdwn


async def open_form(request: Request, cmd: OpenModal) -> None:
    await open_booking_modal(
        request.deps, request.client, request.actor, request.trigger_id, channel=request.channel
    )


async def book(request: Request, cmd: Book | BookSeries | BookFlexible) -> Message | None:
    """A complete `book` books at once; an incomplete one opens the form with what was given."""
    if isinstance(cmd, BookSeries):
        result = await request.deps.service.create_series(
            request.actor, gpu=cmd.gpu, memory=cmd.size_text, rule=cmd.rule, task=cmd.task
        )
        return confirm_series(request, result, BOOKED)
    if isinstance(cmd, BookFlexible):
        queued = await request.deps.service.create_flexible(
            request.actor,
            memory=cmd.size_text,
            duration=cmd.duration,
            task=cmd.task,
            pattern=cmd.pattern,
            not_before=cmd.not_before,
            deadline=cmd.deadline,
        )
        return request.confirm(queued, BOOKED)
    if cmd.missing:
        await open_booking_modal(
            request.deps,
            request.client,
            request.actor,
            request.trigger_id,
            channel=request.channel,
            gpu=ANY_GPU if cmd.any_gpu else cmd.gpu,
            memory_text=cmd.size_text,
            start=cmd.start,
            duration_text=duration_text(cmd.start, cmd.end, cmd.duration),
            task=cmd.task,
            missing=cmd.missing,
        )
        return None
    assert cmd.start is not None and cmd.size_text is not None and cmd.task is not None
    end = cmd.end if cmd.end is not None else cmd.start + (cmd.duration or timedelta(0))
    booking = await request.deps.service.create(
        request.actor,
        gpu=cmd.gpu,
        memory=cmd.size_text,
        start=cmd.start,
        end=end,
        task=cmd.task,
        override_limits=cmd.override_limits,
    )
    return with_notes(request, request.confirm(booking, BOOKED), cmd.notes)


async def list_bookings(request: Request, cmd: ListBookings) -> Message:
    return await list_page(request, everyone=cmd.everyone)


async def list_page(
    request: Request,
    *,
    everyone: bool,
    after: tuple[datetime, int] | None = None,
    shown: int = 0,
) -> Message:
    """One page of a list: the bookings after the cursor ``after`` (from the start without),
    ``shown`` having come before. One booking more than a page is read, to know if more follow."""
    service = request.deps.service
    bookings = await service.list_bookings(
        request.actor, everyone=everyone, after=after, limit=MAX_LIST_CARDS + 1
    )
    blocks = booking_list(
        bookings,
        everyone=everyone,
        viewer_id=request.actor.user_id,
        now=request.now,
        is_admin=service.is_admin(request.actor),
        tz=request.actor.tz,
        shown=shown,
    )
    who = "Everyone's" if everyone else "Your"
    page = bookings[:MAX_LIST_CARDS]
    return Message(
        f"{who} bookings" + (f" {shown + 1}–{shown + len(page)}" if page else ""), blocks
    )


async def cancel(request: Request, cmd: Cancel) -> Message:
    if cmd.series:
        ended = await request.deps.service.cancel_series(request.actor, cmd.booking_id)
        request.changed.extend(ended)
        return request.confirm(
            ended[0], f"Ended {count_of(len(ended), 'occurrence')} of the series from"
        )
    booking = await request.deps.service.cancel(request.actor, cmd.booking_id)
    return request.confirm(booking, "Cancelled")


async def release(request: Request, cmd: Release) -> Message:
    booking = await request.deps.service.release(request.actor, cmd.booking_id)
    return request.confirm(booking, "Released")


async def extend(request: Request, cmd: Extend) -> Message:
    booking = await request.deps.service.extend(request.actor, cmd.booking_id, cmd.by)
    return request.confirm(booking, f"Extended by {format_duration(cmd.by)}")


async def edit(request: Request, cmd: Edit) -> None:
    await open_edit_modal(
        request.deps,
        request.client,
        request.actor,
        request.trigger_id,
        cmd.booking_id,
        channel=request.channel,
        series=cmd.series,
    )


async def calendar(request: Request, cmd: Calendar) -> Message:
    return await calendar_reply(request.deps, request.actor, cmd.gpu, cmd.day, cmd.week)


async def status(request: Request, cmd: Status) -> Message:
    service = request.deps.service
    async with service.one_read():  # one read transaction for the summary and the details
        pool = await service.pool_status(request.actor, cmd.pattern)
    blocks = status_message(pool.shown, now=request.now, tz=request.actor.tz, pool=pool)
    return Message(count_of(pool.summary.gpus, "GPU"), blocks)


async def free(request: Request, cmd: Free) -> Message:
    duration = cmd.duration or request.deps.free_duration
    windows = await request.deps.service.free(request.actor, cmd.size_text, duration)
    text = f"Where {format_size(windows.memory_mib)} is free for {format_duration(duration)}"
    return Message(text, free_message(windows, now=request.now, tz=request.actor.tz))


async def limits(request: Request, cmd: ShowLimits) -> Message:
    """Where the asker stands against their limits."""
    standing = await request.deps.service.standing(request.actor)
    text = mrkdwn(standing_sentences(standing), request.actor.tz, request.now)
    return Message(text, notice(text, emoji=":balance_scale:"))
