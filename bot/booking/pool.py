"""Status of a pool of any size: a summary of every GPU covered, and the cards shown in detail.

Reading every card in detail (when its held memory next changes, what its agent measures) is
what made a status and the App Home cost ten times as much at 200 GPUs as at 20, for lines
nobody could read in one message. Here one small row per GPU (held now, summed by the database;
its card's last measured use) gives the summary and picks the cards worth showing
(:func:`bot.core.pool.cards_to_show`); only those are read in detail.
"""

from __future__ import annotations

from bot.booking import queries
from bot.booking.reports import Reports
from bot.booking.usage import LiveUsage
from bot.core.actor import Actor
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.pool import SHOWN_CARDS, CardNow, PoolStatus, cards_to_show, matches, summarise
from bot.core.sentence import Quote
from bot.core.usage import needs_a_look


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
            rows = await queries.pool_now(session, actor.team_id, now, actor.user_id)
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
