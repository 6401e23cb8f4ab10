"""Live usage for people: Unix logins linked to Slack users, and each GPU's measured use.

A login belongs to one Slack user: linking one that someone else holds is refused (an admin may
move it), and every change is audited. Measured use comes from each bound card's latest report
(:class:`storage.models.AgentDevice`); a card that has not reported for the silence threshold is
shown as such rather than with stale numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import bound_cards, queries
from bot.booking.base import ServiceBase
from bot.core.actor import Actor
from bot.core.agent_report import UNKNOWN_USER, valid_login
from bot.core.errors import InputError, NotFound, PermissionDenied
from bot.core.phrases import Code
from bot.core.sentence import Quote, User
from bot.core.usage import LiveCard, LoginLink, UsageEpisodeInfo, needs_a_look
from bot.core.vocabulary import AuditAction, FindingKind
from storage.models import Gpu, UnixLogin, UsageEpisode

#: "Held now" is what bookings hold over the next microsecond.
_INSTANT = timedelta(microseconds=1)


async def links_of(session: AsyncSession, team_id: str) -> dict[str, str]:
    """Every linked login of the workspace and its Slack user."""
    rows = await session.execute(
        select(UnixLogin.login, UnixLogin.user_id).where(UnixLogin.team_id == team_id)
    )
    return dict(rows.tuples().all())


class LiveUsage(ServiceBase):
    """Links between logins and people; measured use per GPU."""

    async def link_login(self, actor: Actor, login: str, user_id: str | None = None) -> LoginLink:
        """Link ``login`` to ``user_id`` (default: the actor). Only admins link for others or
        take a login someone else holds."""
        owner = user_id or actor.user_id
        if owner != actor.user_id:
            self.require_admin(actor, "link logins for someone else")
        login = _checked(login)
        now = self.clock()
        async with self.db.write() as session:
            row = await session.get(UnixLogin, (actor.team_id, login), with_for_update=True)
            previous = row.user_id if row is not None else None
            if previous == owner:
                return LoginLink(login, owner)
            if previous is not None and not self.is_admin(actor):
                raise PermissionDenied(
                    Code.LOGIN_TAKEN, field="login", login=Quote(login), owner=User(previous)
                )
            if row is None:
                session.add(
                    UnixLogin(
                        team_id=actor.team_id,
                        login=login,
                        user_id=owner,
                        created_by=actor.user_id,
                        created_at=now,
                    )
                )
            else:
                row.user_id, row.created_by, row.created_at = owner, actor.user_id, now
            details = {"login": login, "user": owner, "previous": previous}
            self.journal(session, now).audit(
                actor.user_id, AuditAction.LINK_SET, None, details, team_id=actor.team_id
            )
        return LoginLink(login, owner)

    async def unlink_login(self, actor: Actor, login: str) -> LoginLink:
        """Clear the link of ``login``: its owner or an admin."""
        login = _checked(login)
        now = self.clock()
        async with self.db.write() as session:
            row = await session.get(UnixLogin, (actor.team_id, login), with_for_update=True)
            if row is None:
                raise NotFound(Code.LOGIN_NOT_LINKED, field="login", login=Quote(login))
            if row.user_id != actor.user_id:
                self.require_admin(actor, "unlink someone else's login")
            link = LoginLink(login, row.user_id)
            await session.delete(row)
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.LINK_CLEAR,
                None,
                {"login": login, "user": link.user_id},
                team_id=actor.team_id,
            )
        return link

    async def settle_usage_episode(self, actor: Actor, episode_id: int) -> UsageEpisodeInfo:
        """Dismiss an over-use or keep an idle booking: nothing more is said or done about it
        until it clears. Only the person it is about (or an admin) may."""
        now = self.clock()
        async with self.db.write() as session:
            episode = await session.get(UsageEpisode, episode_id, with_for_update=True)
            if episode is None or episode.team_id != actor.team_id:
                raise NotFound(Code.USAGE_EPISODE_GONE)
            owner = str(episode.details.get("user", ""))
            if owner != actor.user_id:
                self.require_admin(actor, "answer for someone else")
            episode.settled_at = episode.settled_at or now
            subject = int(episode.subject) if episode.subject.isdigit() else None
            return UsageEpisodeInfo(episode.id, FindingKind(episode.kind), owner, subject)

    async def logins_of(self, actor: Actor, user_id: str | None = None) -> list[str]:
        async with self.db.read() as session:
            query = select(UnixLogin.login).where(
                UnixLogin.team_id == actor.team_id,
                UnixLogin.user_id == (user_id or actor.user_id),
            )
            return sorted(await session.scalars(query))

    async def live_cards(
        self,
        actor: Actor,
        gpu: str | None = None,
        gpu_ids: Sequence[int] | None = None,
        held: Mapping[int, int] | None = None,
    ) -> dict[str, LiveCard]:
        """Each bound GPU's measured use (or only ``gpu``'s, or those of ``gpu_ids``), by GPU
        name (GPUs no card reports for are absent); against the memory held now, read here
        unless the caller has it already (``held``, by GPU id)."""
        now = self.clock()
        usage = self.config.usage
        query = bound_cards.bound_cards(actor.team_id)
        if gpu is not None:
            query = query.where(Gpu.name == gpu)
        if gpu_ids is not None:
            query = query.where(Gpu.id.in_(gpu_ids))
        async with self.db.read() as session:
            rows = list(await session.execute(query))
            if held is None:
                held = await _held_now(session, [gpu.id for gpu, _ in rows], now)
            links = await links_of(session, actor.team_id)
        cards = {}
        for gpu, device in rows:
            silent = now - device.last_seen_at > usage.silent_after
            unlinked = tuple(sorted(u for u in device.users if u not in links))
            cards[gpu.name] = LiveCard(
                gpu_name=gpu.name,
                held_mib=held[gpu.id],
                capacity_mib=gpu.capacity_mib,
                used_mib=device.used_mib,
                reported_at=device.last_seen_at,
                silent=silent,
                over=needs_a_look(device.used_mib, held[gpu.id], silent, usage.tolerance_mib),
                unlinked=unlinked,
            )
        return cards


async def _held_now(session: AsyncSession, gpu_ids: list[int], now: datetime) -> dict[int, int]:
    spans = await queries.spans(session, gpu_ids, now, now + _INSTANT)
    return {gpu: sum(s.mib for s in found) for gpu, found in spans.items()}


def _checked(login: str) -> str:
    login = login.strip()
    if login == UNKNOWN_USER or not valid_login(login):
        raise InputError(Code.LOGIN_INVALID, field="login", login=Quote(login))
    return login
