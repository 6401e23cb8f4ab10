"""The calendar answer, shared by `/gpubook calendar`, its navigation buttons and the App Home's
Calendar button, so all three show the same day or week the same way (and the chart draws it)."""

from __future__ import annotations

from datetime import date

from bot.booking import Actor
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.snapshots import CalendarData
from bot.core.timeparse import day_bounds
from handlers.blocks.calendar import calendar_message
from handlers.blocks.common import Message, escape, notice
from handlers.context import Deps


async def calendar_data(
    deps: Deps, actor: Actor, gpu: str | None, day: date | None, week: bool
) -> tuple[CalendarData, list[str]]:
    """A GPU's day or week in the user's zone (today by default); without a GPU, the first
    one, with the names of the others."""
    now = deps.now()
    others: list[str] = []
    if gpu is None:
        names = [g.name for g in await deps.service.list_gpus(actor)]
        if not names:
            raise NotFound(Code.NO_GPUS)
        gpu, others = names[0], names[1:]
    day = day or now.astimezone(actor.tz).date()
    start, end = day_bounds(day, actor.tz, days=7 if week else 1)
    return await deps.service.calendar(actor, gpu, start, end), others


async def calendar_reply(
    deps: Deps, actor: Actor, gpu: str | None, day: date | None, week: bool
) -> Message:
    """The calendar message; without a GPU, the first one's, naming the others."""
    cal, others = await calendar_data(deps, actor, gpu, day, week)
    now = deps.now()
    live = None
    if cal.start <= now < cal.end:  # only a calendar showing "now" shows what is measured
        live = (await deps.service.live_cards(actor, cal.gpu.name)).get(cal.gpu.name)
    blocks = calendar_message(cal, now=now, tz=actor.tz, week=week, live=live)
    if others:
        names = ", ".join(f"`{escape(n)}`" for n in others)
        blocks += notice(f"Also: {names}. Show one with `/gpubook calendar <gpu>`.")
    first = cal.start.astimezone(actor.tz).date()
    return Message(f"Calendar of {cal.gpu.name} from {first.isoformat()}", blocks)
