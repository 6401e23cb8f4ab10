"""Calendar links: issue and revoke private feed URLs, and read what a feed URL shows.

A link is a credential, so only its token's SHA-256 is stored (:mod:`bot.core.feeds`). Asking
again for the same calendar (yours, or one GPU's) issues a new link and turns the earlier one
off: the stored hash cannot be shown again, and one live link per calendar keeps "who can read
this" easy to answer. Revoking turns off all of a person's links.
"""

from __future__ import annotations

from sqlalchemy import select, update

from bot.booking import queries
from bot.booking.base import ServiceBase
from bot.booking.snapshots import booking_info
from bot.core.actor import Actor
from bot.core.feeds import FEED_PAST, Feed, FeedEntry, looks_like_token, new_token, token_digest
from storage.models import Booking, CalendarLink, Gpu


class Feeds(ServiceBase):
    """Private calendar feeds of bookings."""

    async def issue_calendar_link(self, actor: Actor, gpu: str | None = None) -> str:
        """A new token for the asker's own bookings, or (``gpu``) for everyone's on that GPU;
        the asker's earlier link for the same calendar stops working."""
        now = self.clock()
        token = new_token()
        async with self.db.write() as session:
            gpu_id = (await queries.gpu(session, actor.team_id, gpu)).id if gpu else None
            same = (
                CalendarLink.gpu_id.is_(None) if gpu_id is None else CalendarLink.gpu_id == gpu_id
            )
            await session.execute(
                update(CalendarLink)
                .where(
                    CalendarLink.team_id == actor.team_id,
                    CalendarLink.user_id == actor.user_id,
                    CalendarLink.revoked_at.is_(None),
                    same,
                )
                .values(revoked_at=now)
            )
            session.add(
                CalendarLink(
                    team_id=actor.team_id,
                    user_id=actor.user_id,
                    gpu_id=gpu_id,
                    token_sha256=token_digest(token),
                    created_at=now,
                )
            )
        return token

    async def revoke_calendar_links(self, actor: Actor) -> int:
        """Turn off every live link of the asker; how many there were."""
        now = self.clock()
        async with self.db.write() as session:
            result = await session.execute(
                update(CalendarLink)
                .where(
                    CalendarLink.team_id == actor.team_id,
                    CalendarLink.user_id == actor.user_id,
                    CalendarLink.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            return int(result.rowcount or 0)

    async def calendar_feed(self, token: str) -> Feed | None:
        """What the link with ``token`` shows (the last :data:`FEED_PAST` and everything
        ahead, cancelled bookings included), or ``None`` for a token that is not a live link."""
        if not looks_like_token(token):
            return None
        since = self.clock() - FEED_PAST
        async with self.db.read() as session:
            link = await session.scalar(
                select(CalendarLink).where(
                    CalendarLink.token_sha256 == token_digest(token),
                    CalendarLink.revoked_at.is_(None),
                )
            )
            if link is None:
                return None
            changes = [link.created_at]
            query = queries.bookings_of(link.team_id).where(Booking.end_at > since)
            if link.gpu_id is None:
                query = query.where(Booking.user_id == link.user_id)
                gpu_name = None
            else:
                query = query.where(Booking.gpu_id == link.gpu_id)
                gpu = await session.get_one(Gpu, link.gpu_id)
                gpu_name = gpu.name
                changes.append(gpu.updated_at)  # a rename renames the calendar
            found = (await session.scalars(query.order_by(Booking.start_at, Booking.id))).unique()
            entries = [FeedEntry(booking_info(b), b.revision, b.updated_at) for b in found]
        modified = max(changes + [e.modified for e in entries])
        return Feed(link.team_id, link.user_id, gpu_name, entries, modified)
