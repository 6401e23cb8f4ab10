"""Fair share in the booking transactions: a person's limits, read and enforced under their lock.

Limits that span cards — memory held at once, GB·hours, open bookings — cannot be decided under a
GPU's lock alone: two bookings by one person on two GPUs would each pass. So each is checked
under a per-person lock row (:class:`storage.models.UserLock`; ``SELECT … FOR UPDATE`` on
PostgreSQL, while SQLite's ``BEGIN IMMEDIATE`` already serialises writers).

**Lock order**: a transaction takes the GPU locks it needs first (in GPU id order), then the one
person's lock, and takes no GPU lock after it. A person's lock is only ever waited for by a
transaction that holds no lock the holder still needs, so no cycle — no deadlock — can form.

Per-person booking rules (longest booking, extension, how far ahead) come from the same limits:
the environment's ``GPUBOOK_MAX_*`` values are ``everyone``'s defaults and ``GPUBOOK_GROUP_<NAME>``
/ ``GPUBOOK_MAX_EXTENSION_<NAME>`` a group's, under whatever admins store in the database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.base import ServiceBase
from bot.core import capacity
from bot.core import limits as fair
from bot.core.actor import Actor
from bot.core.errors import PolicyViolation
from bot.core.limits import EVERYONE, LimitName, Limits
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.sentence import Quote, Sentence, Size, User, When, Window, say
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.models import Booking, GroupLimit, GroupMember, UserLock


def env_settings(policy: Policy) -> dict[str, dict[LimitName, int]]:
    """The limits the environment sets: ``everyone``'s rules and per-group extension limits."""
    settings: dict[str, dict[LimitName, int]] = {
        EVERYONE: {
            LimitName.MAX_DURATION: _seconds(policy.max_duration),
            LimitName.MAX_ADVANCE: _seconds(policy.max_advance),
            LimitName.MAX_EXTENSION: _seconds(policy.max_extension),
        }
    }
    for group, limit in policy.group_extensions.items():
        settings.setdefault(group, {})[LimitName.MAX_EXTENSION] = _seconds(limit)
    return settings


#: Built once (read by every booking): see ``bot.booking.queries``.
_GROUP_LIMITS = GroupLimit.__table__.c
_STORED_LIMITS = select(
    _GROUP_LIMITS.group_name, _GROUP_LIMITS.limit_name, _GROUP_LIMITS.value
).where(_GROUP_LIMITS.team_id == bindparam("team"))


async def stored_settings(
    session: AsyncSession, team_id: str, policy: Policy
) -> dict[str, dict[LimitName, int]]:
    """Every group's limits: the environment's, overridden by what admins stored."""
    settings = env_settings(policy)
    rows = await session.execute(_STORED_LIMITS, {"team": team_id})
    for group, name, value in rows:
        settings.setdefault(group, {})[LimitName(name)] = value
    return settings


async def groups_of(session: AsyncSession, team_id: str, user_id: str, policy: Policy) -> set[str]:
    """The groups ``user_id`` is in: stored memberships and the environment's."""
    stored = await session.scalars(
        select(GroupMember.group_name).where(
            GroupMember.team_id == team_id, GroupMember.user_id == user_id
        )
    )
    env_group = policy.user_groups.get(user_id)
    return {EVERYONE, *stored, *([env_group] if env_group else [])}


async def lock_user(session: AsyncSession, backend: str, team_id: str, user_id: str) -> None:
    """Take ``user_id``'s lock row until the transaction ends (made on first use).

    Nothing to do on SQLite: a write transaction there holds the whole database from its
    ``BEGIN IMMEDIATE``, so the person is already locked, and the row would cost every booking
    two statements for nothing.
    """
    if backend == "sqlite":
        return
    person = {"team": team_id, "user": user_id}
    await session.execute(_MAKE_USER_LOCK, person)
    await session.execute(_TAKE_USER_LOCK, person)


#: Built once (taken by every booking on PostgreSQL): see ``bot.booking.queries``.
_USER_LOCKS = UserLock.__table__.c
_MAKE_USER_LOCK = (
    pg_insert(UserLock.__table__)
    .values(team_id=bindparam("team"), user_id=bindparam("user"))
    .on_conflict_do_nothing()
)
_TAKE_USER_LOCK = (
    select(_USER_LOCKS.user_id)
    .where(_USER_LOCKS.team_id == bindparam("team"), _USER_LOCKS.user_id == bindparam("user"))
    .with_for_update()
)


#: The limits checked against everything the owner holds (the others bound one booking).
SPANNING_LIMITS = (LimitName.MAX_OPEN, LimitName.MAX_HELD, LimitName.MAX_GBH)


class FairShare(ServiceBase):
    """Reading a person's limits and checking a booking against them."""

    async def limits_for(self, session: AsyncSession, team_id: str, user_id: str) -> Limits:
        settings = await stored_settings(session, team_id, self.policy)
        if set(settings) <= {EVERYONE}:  # no group sets anything: membership changes nothing
            return fair.effective({EVERYONE}, settings)
        return fair.effective(await groups_of(session, team_id, user_id, self.policy), settings)

    def policy_for(self, limits: Limits) -> Policy:
        """The booking rules with the person's longest booking, extension and advance."""
        policy = self.policy
        return replace(
            policy,
            max_duration=limits.duration(LimitName.MAX_DURATION, policy.max_duration),
            max_advance=limits.duration(LimitName.MAX_ADVANCE, policy.max_advance),
            max_extension=limits.duration(LimitName.MAX_EXTENSION, policy.max_extension),
        )

    def extension_limit(self, actor: Actor, policy: Policy) -> timedelta:
        """How far past its original end a booking may grow: admins up to the longest booking."""
        return policy.max_duration if self.is_admin(actor) else policy.max_extension

    async def check_limits(
        self,
        session: AsyncSession,
        actor: Actor,
        limits: Limits,
        owner: str,
        mib: int,
        start: datetime,
        end: datetime,
        *,
        exclude: int | None = None,
        override: bool = False,
        pending: Sequence[capacity.Span] = (),
        rewritten: Collection[int] = (),
    ) -> list[str]:
        """Refuse a booking of ``owner`` holding ``mib`` over ``[start, end)`` that breaks a
        limit spanning cards (``exclude``: the booking being changed, counted as absent;
        ``pending``: bookings of the owner this transaction will write, counted as held — a
        series' occurrences accepted so far; ``rewritten``: other bookings this transaction
        changes, counted as absent because their new form is in ``pending`` or checked next —
        the rest of a series being edited).

        With ``override`` (admins only, checked by the caller) nothing is refused; the names of
        the limits that would have refused are returned for the audit entry.
        """
        team_id = actor.team_id
        await lock_user(session, self.db.backend, team_id, owner)
        if all(limits[name].value is None for name in SPANNING_LIMITS):
            return []  # nothing to count the owner's bookings against: they are not read
        now = self.clock()
        query = select(
            Booking.id, Booking.start_at, Booking.end_at, Booking.memory_mib, Booking.status
        )
        rows = await session.execute(
            query.where(
                Booking.team_id == team_id,
                Booking.user_id == owner,
                Booking.status != BookingStatus.CANCELLED,
                Booking.end_at > now - fair.GBH_WINDOW,
            )
        )
        rows = list(rows)
        absent = {exclude, *rewritten}
        counted = [
            (capacity.Span(s, e, m), status) for i, s, e, m, status in rows if i not in absent
        ]
        counted += [(span, BookingStatus.UPCOMING) for span in pending]
        holding = [span for span, status in counted if status in HOLDING_STATUSES]
        was = next((capacity.Span(s, e, m) for i, s, e, m, _ in rows if i == exclude), None)
        new = capacity.Span(start, end, mib)
        # A change is refused only for what it adds: one that holds no more memory at no new
        # instant (or uses no more GB·h) passes, even when a limit was lowered since.
        holds_more = was is None or not (was.start <= start and end <= was.end and mib <= was.mib)
        uses_more = was is None or fair.gbh_used([new], now) > fair.gbh_used([was], now)
        refusals = [
            refusal
            for refusal in (
                self._open(limits, owner, len(holding), holding, exclude),
                self._held(limits, owner, holding, mib, start, end) if holds_more else None,
                self._gbh(limits, owner, [span for span, _ in counted], mib, start, end, now)
                if uses_more
                else None,
            )
            if refusal is not None
        ]
        if refusals and not override:
            raise refusals[0]
        return [str(refusal.limit_name) for refusal in refusals]

    def _open(
        self,
        limits: Limits,
        owner: str,
        count: int,
        holding: list[capacity.Span],
        exclude: int | None,
    ) -> _Refusal | None:
        limit = limits[LimitName.MAX_OPEN]
        if exclude is not None or limit.value is None or count < limit.value:
            return None
        then = say(Code.LIMIT_FREES_AT, when=When(min(span.end for span in holding)))
        return _Refusal(
            LimitName.MAX_OPEN,
            Code.OVER_MAX_OPEN,
            limit.group,
            then,
            owner=User(owner),
            count=count,
            limit=limit.value,
        )

    def _held(
        self,
        limits: Limits,
        owner: str,
        holding: list[capacity.Span],
        mib: int,
        start: datetime,
        end: datetime,
    ) -> _Refusal | None:
        limit = limits[LimitName.MAX_HELD].value
        if limit is None:
            return None
        peak = capacity.peak(holding, start, end)
        if peak.mib + mib <= limit:
            return None
        until = self.search_until_for(start)
        at = capacity.earliest_fit(holding, limit, mib, end - start, start, until)
        then = say(Code.LIMIT_FITS_FROM, when=When(at)) if at else say(Code.LIMIT_NEVER_FITS)
        return _Refusal(
            LimitName.MAX_HELD,
            Code.OVER_MAX_HELD,
            limits[LimitName.MAX_HELD].group,
            then,
            owner=User(owner),
            total=Size(peak.mib + mib),
            held=Size(peak.mib),
            peak=Window(peak.start, peak.end),
            asked=Size(mib),
            limit=Size(limit),
        )

    def _gbh(
        self,
        limits: Limits,
        owner: str,
        counted: list[capacity.Span],
        mib: int,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> _Refusal | None:
        limit = limits[LimitName.MAX_GBH].value
        if limit is None:
            return None
        used = fair.gbh_used(counted, now)
        need = fair.gbh_used([capacity.Span(start, end, mib)], now)
        if used + need <= limit:
            return None
        at = fair.gbh_fits_at(counted, limit, need, now)
        then = say(Code.LIMIT_FITS_FROM, when=When(at)) if at else say(Code.LIMIT_NEVER_FITS)
        return _Refusal(
            LimitName.MAX_GBH,
            Code.OVER_MAX_GBH,
            limits[LimitName.MAX_GBH].group,
            then,
            owner=User(owner),
            total=fair.format_gbh(used + need),
            used=fair.format_gbh(used),
            asked=fair.format_gbh(need),
            limit=fair.format_gbh(limit),
        )

    def search_until_for(self, start: datetime) -> datetime:
        """How far ahead a limit's "fits from" looks (as far as capacity offers do)."""
        return start + self.policy.search_horizon


class _Refusal(PolicyViolation):
    """A limit broken: the refusal, and which limit (for the audit when overridden)."""

    def __init__(
        self, name: LimitName, code: Code, group: str | None, then: Sentence, **data: object
    ) -> None:
        origin = say(Code.LIMIT_FROM_GROUP, group=Quote(group)) if group else None
        also = (then, origin) if origin and group != EVERYONE else (then,)
        super().__init__(code, field="memory", also=also, **data)
        self.limit_name = name


def _seconds(length: timedelta) -> int:
    return int(length.total_seconds())
