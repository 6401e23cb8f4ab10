"""Status of a pool of any size: a summary of every GPU covered, and the cards shown in detail.

Reading every card in detail (when its held memory next changes, what its agent measures) is
what made a status and the App Home cost ten times as much at 200 GPUs as at 20, for lines
nobody could read in one message. Here one small row per GPU (held now, summed by the database;
its card's last measured use) gives the summary and picks the cards worth showing
(:func:`bot.core.pool.cards_to_show`); only those are read in detail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.reports import Reports
from bot.booking.usage import LiveUsage
from bot.core.actor import Actor
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.pool import SHOWN_CARDS, CardNow, PoolStatus, cards_to_show, matches, summarise
from bot.core.sentence import Quote
from bot.core.usage import needs_a_look
from bot.core.vocabulary import HOLDING_STATUSES
from storage.models import AgentDevice, Booking, Gpu


class PoolStatuses(Reports, LiveUsage):
    """``status`` and the App Home's GPUs: bounded by what they show, not by the pool."""

    async def pool_status(
        self, actor: Actor, pattern: str | None = None, limit: int = SHOWN_CARDS
    ) -> PoolStatus:
        """The GPUs in service (those whose names match ``pattern``, see
        :func:`bot.core.pool.matches`) summed up, with at most ``limit`` of them in detail:
        all of them, by name, when they are that few; else the ones that matter to ``actor``.
        """
        now, usage = self.clock(), self.config.usage
        async with self.db.read() as session:
            rows = await pool_now(session, actor.team_id, now, actor.user_id)
        cards = [
            CardNow(
                gpu_id=row.id,
                name=row.name,
                capacity_mib=row.capacity_mib,
                held_mib=held,
                mine=mine,
                problem=row.last_seen_at is not None
                and (
                    now - row.last_seen_at > usage.silent_after
                    or needs_a_look(row.used_mib, held, False, usage.tolerance_mib)
                ),
            )
            for row, held, mine in rows
            if matches(pattern, row.name)
        ]
        if pattern is not None and not cards:
            raise NotFound(Code.STATUS_NO_MATCH, pattern=Quote(pattern))
        chosen = cards if len(cards) <= limit else cards_to_show(cards, limit)
        ids = [c.gpu_id for c in chosen]
        details = {s.gpu.id: s for s in await self.status(actor, gpu_ids=ids)}
        held = {c.gpu_id: c.held_mib for c in chosen}
        live = await self.live_cards(actor, gpu_ids=ids, held=held)
        # A card retired between the two reads is left out rather than shown half.
        shown = [details[i] for i in ids if i in details]
        return PoolStatus(summarise(cards, pattern), shown, live)


async def pool_now(
    session: AsyncSession, team_id: str, now: datetime, user_id: str
) -> list[tuple[Row[Any], int, bool]]:
    """Every GPU of the workspace in service by name, as a row (id, name, capacity, and its
    bound card's ``used_mib`` and ``last_seen_at``, None when none reports), with the memory
    held on it at ``now`` and whether ``user_id`` holds some of it: what a status summary of a
    whole pool needs, one small row per GPU.

    The bookings under way are added up in the database from the same (gpu, status, start)
    range as :func:`current_spans`; the end is only looked at inside the sums, so that no plan
    searches by it.
    """
    under_way = Booking.end_at > now
    held = (
        select(
            Booking.gpu_id,
            func.sum(case((under_way, Booking.memory_mib), else_=0)).label("held"),
            func.max(case((under_way & (Booking.user_id == user_id), 1), else_=0)).label("mine"),
        )
        .where(
            Booking.gpu_id.in_(select(Gpu.id).where(Gpu.team_id == team_id)),
            Booking.status.in_(list(HOLDING_STATUSES)),
            Booking.start_at <= now,
        )
        .group_by(Booking.gpu_id)
    )
    sums = {gpu_id: (int(mib), bool(mine)) for gpu_id, mib, mine in await session.execute(held)}
    gpus = (
        select(Gpu.id, Gpu.name, Gpu.capacity_mib, AgentDevice.used_mib, AgentDevice.last_seen_at)
        .outerjoin(
            AgentDevice,
            (AgentDevice.team_id == Gpu.team_id) & (AgentDevice.uuid == Gpu.device_uuid),
        )
        .where(Gpu.team_id == team_id, Gpu.retired.is_(False))
        .order_by(Gpu.name)
    )
    return [(row, *sums.get(row.id, (0, False))) for row in await session.execute(gpus)]
