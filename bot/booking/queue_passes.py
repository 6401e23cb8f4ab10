"""Every change that frees memory, followed by a queue pass and the watches' check.

Memory frees when a booking ends or is cancelled early (alone or a series' rest), shrinks or
shortens (an edit, a series' edit), when a card is added or grows, and — for whoever is held back
by their max-held — when a group or its limits change, or a retired card's bookings end. Each
such write here is the part's own, then :meth:`~bot.booking.queue.Queue.after_freeing` (the queue
pass, then the watches' check), each in its own transaction after the change committed, so a pass
never delays or undoes the change. (An idle booking the usage sweep ends runs the same: see
:mod:`bot.lifecycle.usage_sweep`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.booking.groups import GroupAdmin
from bot.booking.queue import Queue
from bot.booking.series import SeriesResult, SeriesWrites
from bot.booking.writes import BookingChange
from bot.core.actor import Actor
from bot.core.limits import GroupInfo, LimitName
from bot.core.snapshots import BookingInfo, GpuInfo


class QueuePasses(Queue, SeriesWrites, GroupAdmin):
    """The writes that free memory, each followed by a queue pass and the watches' check."""

    async def release(self, actor: Actor, booking_id: int) -> BookingInfo:
        info = await super().release(actor, booking_id)
        await self.after_freeing(actor.team_id)
        return info

    async def cancel(self, actor: Actor, booking_id: int) -> BookingInfo:
        info = await super().cancel(actor, booking_id)
        await self.after_freeing(actor.team_id)
        return info

    async def update(
        self,
        actor: Actor,
        booking_id: int,
        change: BookingChange,
        *,
        override_limits: bool = False,
    ) -> BookingInfo:
        info = await super().update(actor, booking_id, change, override_limits=override_limits)
        await self.after_freeing(actor.team_id)
        return info

    async def cancel_series(self, actor: Actor, booking_id: int) -> list[BookingInfo]:
        infos = await super().cancel_series(actor, booking_id)
        await self.after_freeing(actor.team_id)
        return infos

    async def update_series(
        self,
        actor: Actor,
        booking_id: int,
        *,
        task: str | None = None,
        memory: int | str | None = None,
        length: timedelta | None = None,
    ) -> SeriesResult:
        result = await super().update_series(
            actor, booking_id, task=task, memory=memory, length=length
        )
        await self.after_freeing(actor.team_id)
        return result

    # A group change can raise someone's max-held, letting a booking held back by it move up.

    async def add_to_group(self, actor: Actor, group: str, user_ids: Sequence[str]) -> GroupInfo:
        info = await super().add_to_group(actor, group, user_ids)
        await self.after_freeing(actor.team_id)
        return info

    async def remove_from_group(
        self, actor: Actor, group: str, user_ids: Sequence[str] = ()
    ) -> GroupInfo:
        info = await super().remove_from_group(actor, group, user_ids)
        await self.after_freeing(actor.team_id)
        return info

    async def set_limit(
        self, actor: Actor, group: str, name: LimitName, value: int | None
    ) -> GroupInfo:
        info = await super().set_limit(actor, group, name, value)
        await self.after_freeing(actor.team_id)
        return info

    async def add_gpu(
        self, actor: Actor, name: str, size: int | str, description: str = ""
    ) -> GpuInfo:
        info = await super().add_gpu(actor, name, size, description)
        await self.after_freeing(actor.team_id)
        return info

    async def edit_gpu(self, actor: Actor, name: str, **changes: Any) -> GpuInfo:
        """Any edit of :meth:`GpuAdmin.edit_gpu`, then a queue pass (a bigger card frees room)."""
        info = await super().edit_gpu(actor, name, **changes)
        await self.after_freeing(actor.team_id)
        return info

    async def retire_gpu(
        self, actor: Actor, name: str, *, cancel_future: bool = False
    ) -> list[BookingInfo]:
        ended = await super().retire_gpu(actor, name, cancel_future=cancel_future)
        await self.after_freeing(actor.team_id)
        return ended
