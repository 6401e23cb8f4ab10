"""Who is looking at their App Home: the rebuild after a change is only for them.

A Home is rebuilt whenever Slack says it was opened, so a Home nobody opened lately would show
its rebuild to nobody; skipping it makes a booking cost what the booking needs, not a whole
dashboard. The open time is stored, not kept in memory, because with several replicas the
open and the later change may reach different ones.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.booking.base import ServiceBase
from bot.core.actor import Actor
from storage.models import HomeView


class HomeViews(ServiceBase):
    """Records App Home opens and tells whether a Home may still be on someone's screen."""

    async def home_opened(self, actor: Actor) -> None:
        """Note that ``actor`` opened their App Home now."""
        insert = pg_insert if self.db.backend == "postgresql" else sqlite_insert
        now = self.clock()
        async with self.db.write() as session:
            await session.execute(
                insert(HomeView)
                .values(team_id=actor.team_id, user_id=actor.user_id, opened_at=now)
                .on_conflict_do_update(
                    index_elements=[HomeView.team_id, HomeView.user_id], set_={"opened_at": now}
                )
            )

    async def homes_in_view(
        self, homes: Collection[tuple[str, str]], within: timedelta
    ) -> set[tuple[str, str]]:
        """Those of ``homes`` (team id, user id) opened less than ``within`` ago: one query
        however many are asked about."""
        if not homes:
            return set()
        async with self.db.read() as session:
            rows = await session.execute(
                select(HomeView.team_id, HomeView.user_id).where(
                    HomeView.user_id.in_(sorted({user for _, user in homes})),
                    HomeView.opened_at > self.clock() - within,
                )
            )
        return {(team, user) for team, user in rows} & set(homes)
