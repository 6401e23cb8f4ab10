"""When the memory held on each GPU next changes, read from what is under way — not from every
future booking, which is what a status line used to cost.

Before the next booking starts, only the bookings under way can change the memory held, by
ending; and at that start it changes too, unless bookings under way end at that very instant and
hand over exactly the memory that starts. So per GPU it takes the bookings under way, the next
start (one index step) and, only where some booking ends just then, the memory starting then;
only an exact handover reads further, a few bookings at a time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.core import capacity

#: Bookings read at first after an exact handover.
_AFTER_HANDOVER = 8


async def next_changes(
    session: AsyncSession,
    current: dict[int, list[capacity.Span]],
    starts: dict[int, datetime | None],
    now: datetime,
    horizon: datetime,
) -> dict[int, datetime | None]:
    """For each GPU of ``starts`` (when its next booking starts), given its bookings under way
    at ``now`` in ``current``: the first instant in ``(now, horizon)`` at which the memory held
    on it changes (``None`` if none does)."""
    changes: dict[int, datetime | None] = {}
    handovers: dict[int, datetime] = {}
    for gpu_id, first_start in starts.items():
        held = current.get(gpu_id, [])
        until = min(first_start or horizon, horizon)
        steps = capacity.profile(held, now, until)
        if len(steps) > 1:
            changes[gpu_id] = steps[1].start
        elif until == horizon:
            changes[gpu_id] = None
        elif any(s.end == until for s in held):
            handovers[gpu_id] = until
        else:
            changes[gpu_id] = until
    starting = await queries.starting_at(session, handovers) if handovers else {}
    for gpu_id, at in handovers.items():
        held = current[gpu_id]
        if sum(starting[gpu_id]) != sum(s.mib for s in held if s.end == at):
            changes[gpu_id] = at
        else:
            changes[gpu_id] = await _after_handover(session, gpu_id, held, now, horizon)
    return changes


async def _after_handover(
    session: AsyncSession,
    gpu_id: int,
    held: list[capacity.Span],
    now: datetime,
    horizon: datetime,
) -> datetime | None:
    """The first change on one GPU whose next start only takes over what ends then: the
    following bookings, read a few at a time until the held memory changes."""
    limit = _AFTER_HANDOVER
    while True:
        upcoming = await queries.upcoming_spans(session, gpu_id, now, limit)
        # Changes are certain only before the last start read: more may start with it.
        until = min(upcoming[-1].start if len(upcoming) == limit else horizon, horizon)
        steps = capacity.profile([*held, *upcoming], now, until)
        if len(steps) > 1:
            return steps[1].start
        if until == horizon:
            return None
        limit *= 4
