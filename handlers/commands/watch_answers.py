"""How `notify` is answered: a watch started, the asker's watches, a watch cancelled."""

from __future__ import annotations

from handlers.blocks.common import Message
from handlers.blocks.watches import watch_cancelled, watch_list, watch_started
from handlers.commands.syntax import Notify, NotifyCancel, NotifyList
from handlers.pipeline import Request


async def notify(request: Request, cmd: Notify) -> Message:
    watch = await request.deps.service.create_watch(
        request.actor,
        memory=cmd.size_text,
        duration=cmd.duration,
        pattern=cmd.pattern,
        deadline=cmd.deadline,
        task=cmd.task,
    )
    return watch_started(watch, request.actor.tz, request.now)


async def notify_list(request: Request, cmd: NotifyList) -> Message:
    watches = await request.deps.service.my_watches(request.actor)
    return watch_list(watches, request.actor.tz, request.now)


async def notify_cancel(request: Request, cmd: NotifyCancel) -> Message:
    watch = await request.deps.service.cancel_watch(request.actor, cmd.watch_id)
    return watch_cancelled(watch, request.actor.tz, request.now)
