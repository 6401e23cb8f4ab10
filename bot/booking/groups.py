"""Groups and their limits, as admins manage them, and where a person stands against theirs.

Stored per workspace (:class:`storage.models.GroupMember`, :class:`storage.models.GroupLimit`);
every change is audited. How groups combine into a person's limits is :mod:`bot.core.limits`;
how they are enforced is :mod:`bot.booking.limits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.limits import FairShare, env_settings, stored_settings
from bot.core import capacity
from bot.core import limits as fair
from bot.core.actor import Actor
from bot.core.errors import InputError, NotFound
from bot.core.limits import EVERYONE, GroupInfo, LimitName, Standing
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.vocabulary import HOLDING_STATUSES, AuditAction, BookingStatus
from storage.models import Booking, GroupLimit, GroupMember


class GroupAdmin(FairShare):
    """Admins' changes to groups and limits; everyone's view of their own limits."""

    async def add_to_group(self, actor: Actor, group: str, user_ids: Sequence[str]) -> GroupInfo:
        """Put ``user_ids`` in ``group`` (made on first use); members already in it stay."""
        self.require_admin(actor, "change groups")
        group = _member_group(group)
        now = self.clock()
        async with self.db.write() as session:
            present = set(await self._members(session, actor.team_id, group))
            added = [u for u in dict.fromkeys(user_ids) if u not in present]
            for user_id in added:
                session.add(
                    GroupMember(
                        team_id=actor.team_id,
                        group_name=group,
                        user_id=user_id,
                        added_by=actor.user_id,
                        added_at=now,
                    )
                )
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.GROUP_ADD,
                None,
                {"group": group, "users": added},
                team_id=actor.team_id,
            )
        return await self._group(actor.team_id, group)

    async def remove_from_group(
        self, actor: Actor, group: str, user_ids: Sequence[str] = ()
    ) -> GroupInfo:
        """Take ``user_ids`` out of ``group``; naming no one removes the group and its limits."""
        self.require_admin(actor, "change groups")
        group = _member_group(group)
        now = self.clock()
        async with self.db.write() as session:
            if not await self._exists(session, actor.team_id, group):
                raise NotFound(Code.GROUP_UNKNOWN, field="group", group=Quote(group))
            members = delete(GroupMember).where(
                GroupMember.team_id == actor.team_id, GroupMember.group_name == group
            )
            if user_ids:
                members = members.where(GroupMember.user_id.in_(list(user_ids)))
            else:
                await session.execute(
                    delete(GroupLimit).where(
                        GroupLimit.team_id == actor.team_id, GroupLimit.group_name == group
                    )
                )
            await session.execute(members)
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.GROUP_REMOVE,
                None,
                {"group": group, "users": list(user_ids) or "all"},
                team_id=actor.team_id,
            )
        return await self._group(actor.team_id, group)

    async def set_limit(
        self, actor: Actor, group: str, name: LimitName, value: int | None
    ) -> GroupInfo:
        """Set (``None``: clear) one of ``group``'s limits."""
        self.require_admin(actor, "set limits")
        group = fair.validate_group(group)
        now = self.clock()
        async with self.db.write() as session:
            row = await session.scalar(
                select(GroupLimit)
                .where(
                    GroupLimit.team_id == actor.team_id,
                    GroupLimit.group_name == group,
                    GroupLimit.limit_name == name,
                )
                .with_for_update()
            )
            if value is None and row is not None:
                await session.delete(row)
            elif value is not None and row is None:
                session.add(
                    GroupLimit(
                        team_id=actor.team_id,
                        group_name=group,
                        limit_name=name,
                        value=value,
                        updated_by=actor.user_id,
                        updated_at=now,
                    )
                )
            elif row is not None and value is not None:
                row.value, row.updated_by, row.updated_at = value, actor.user_id, now
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.LIMIT_SET,
                None,
                {"group": group, "limit": str(name), "value": value},
                team_id=actor.team_id,
            )
        return await self._group(actor.team_id, group)

    async def groups(self, actor: Actor) -> list[GroupInfo]:
        """Every group with its members and limits, ``everyone`` first."""
        self.require_admin(actor, "see groups")
        async with self.db.read() as session:
            settings = await stored_settings(session, actor.team_id, self.policy)
            members: dict[str, list[str]] = {}
            rows = await session.execute(
                select(GroupMember.group_name, GroupMember.user_id)
                .where(GroupMember.team_id == actor.team_id)
                .order_by(GroupMember.group_name, GroupMember.user_id)
            )
            for group, user_id in rows:
                members.setdefault(group, []).append(user_id)
        for user_id, group in sorted(self.policy.user_groups.items()):
            members.setdefault(group, []).append(user_id)
        names = sorted(set(settings) | set(members), key=lambda g: (g != EVERYONE, g))
        return [GroupInfo(g, tuple(members.get(g, ())), settings.get(g, {})) for g in names]

    async def standing(self, actor: Actor, user_id: str | None = None) -> Standing:
        """Where ``user_id`` (default: the asker; others: admins only) stands against limits."""
        owner = user_id or actor.user_id
        if owner != actor.user_id:
            self.require_admin(actor, "see someone else's limits")
        now = self.clock()
        async with self.db.read() as session:
            limits = await self.limits_for(session, actor.team_id, owner)
            rows = await session.execute(
                select(Booking.start_at, Booking.end_at, Booking.memory_mib, Booking.status).where(
                    Booking.team_id == actor.team_id,
                    Booking.user_id == owner,
                    Booking.status != BookingStatus.CANCELLED,
                    Booking.end_at > now - fair.GBH_WINDOW,
                )
            )
            counted = [(capacity.Span(s, e, m), status) for s, e, m, status in rows]
        holding = [span for span, status in counted if status in HOLDING_STATUSES]
        ahead = max((span.end for span in holding), default=now + timedelta(seconds=1))
        counted_spans = [span for span, _ in counted]
        return Standing(
            user_id=owner,
            now=now,
            limits=limits,
            held_now_mib=sum(s.mib for s in holding if s.start <= now < s.end),
            held_peak_mib=capacity.peak(holding, now, max(ahead, now + timedelta(seconds=1))).mib,
            gbh_used=fair.gbh_used(counted_spans, now),
            gbh_ages_from=fair.gbh_ages_from(counted_spans, now),
            open_count=len(holding),
        )

    async def _group(self, team_id: str, group: str) -> GroupInfo:
        async with self.db.read() as session:
            settings = await stored_settings(session, team_id, self.policy)
            members = await self._members(session, team_id, group)
        env_members = [u for u, g in sorted(self.policy.user_groups.items()) if g == group]
        return GroupInfo(group, (*members, *env_members), settings.get(group, {}))

    @staticmethod
    async def _members(session: AsyncSession, team_id: str, group: str) -> list[str]:
        return list(
            await session.scalars(
                select(GroupMember.user_id)
                .where(GroupMember.team_id == team_id, GroupMember.group_name == group)
                .order_by(GroupMember.user_id)
            )
        )

    async def _exists(self, session: AsyncSession, team_id: str, group: str) -> bool:
        if group in env_settings(self.policy) or await self._members(session, team_id, group):
            return True
        found = await session.scalar(
            select(GroupLimit.id).where(
                GroupLimit.team_id == team_id, GroupLimit.group_name == group
            )
        )
        return found is not None


def _member_group(group: str) -> str:
    """A group people can be put in: any valid name but ``everyone``, which holds them all."""
    group = fair.validate_group(group)
    if group == EVERYONE:
        raise InputError(Code.GROUP_EVERYONE_MEMBERS, field="group")
    return group
