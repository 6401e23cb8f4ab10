"""Booking writes: create, update, extend, release and cancel.

Each runs as one transaction that first locks the GPU, then reads its holding bookings, asks the
pure capacity core, and writes — with its audit entry and notifications in the same transaction
(:mod:`bot.booking.journal`). A refusal raises before anything is written, so the transaction
rolls back and nothing changes. Changes to an existing booking are checked as if that booking
were absent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries, transitions
from bot.booking.limits import FairShare
from bot.booking.placement import Offers, Placement
from bot.booking.snapshots import booking_info
from bot.core import rules
from bot.core.actor import Actor
from bot.core.errors import InputError, InvalidState
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import AuditAction, BookingStatus, ChangeVerb, EndReason, NoticeKind
from storage.models import Booking, Gpu


@dataclass(frozen=True)
class BookingChange:
    """What ``update`` should change; ``None`` leaves a field as it is."""

    task: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    memory: int | str | None = None


_INSERT_BOOKING = insert(Booking.__table__).returning(Booking.__table__.c.id)


async def _insert_booking(session: AsyncSession, gpu: Gpu, **values: Any) -> Booking:
    """Store a new booking on ``gpu`` with one ``INSERT … RETURNING id``; the booking as a
    detached row (its ``gpu`` set) for the journal and the snapshot.

    Not through the session's unit of work: a booking is the hot path's one write, and a flush
    costs more than the statement (``create`` writes its audit and outbox rows the same way,
    with a batched :class:`~bot.booking.journal.Journal`). Column defaults (``revision``,
    ``flexible``, …) apply as they would in a flush.
    """
    booking_id = await session.scalar(_INSERT_BOOKING, {"gpu_id": gpu.id, **values})
    booking = Booking(id=booking_id, gpu_id=gpu.id, **values)
    booking.gpu = gpu
    return booking


class BookingWrites(Placement, FairShare):
    """Every change to a booking a person asks for."""

    async def create(
        self,
        actor: Actor,
        *,
        gpu: str | None,
        memory: int | str,
        start: datetime,
        end: datetime,
        task: str,
        user_id: str | None = None,
        override_limits: bool = False,
        among: Collection[str] | None = None,
        first: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> BookingInfo:
        """Book ``memory`` on ``gpu`` (``None``: the best-fitting GPU, of those named ``among``
        when given) over ``[start, end)``.

        ``user_id`` books on someone else's behalf (admins only). ``memory`` is MiB or the text
        the user typed (``20GB``, ``50%`` — a percentage of the chosen GPU).
        ``override_limits`` (admins only) books past the owner's limits, audited.
        ``first`` runs at the start of the booking's transaction: a check that must hold when
        the booking is stored, not just before (it raises to refuse, storing nothing).
        """
        now = self.clock()
        owner = user_id or actor.user_id
        if owner != actor.user_id:
            self.require_admin(actor, "book on someone else's behalf")
        self._require_override_right(actor, override_limits)
        task = self._clean_task(task)
        async with self.db.write() as session:
            if first is not None:
                await first(session)
            limits = await self.limits_for(session, actor.team_id, owner)
            policy = self.policy_for(limits)
            start, end = rules.check_window(policy, start, end, now)
            rules.check_advance(policy, start, now)
            channel = None  # where an announcement goes: read with the named GPU's lock
            if gpu is None:
                target, mib = await self.place(
                    session, actor.team_id, memory, start, end, policy, among=among
                )
            else:
                target, channel = await queries.lock_gpu_with_channel(session, actor.team_id, gpu)
                mib = rules.memory_mib(memory, target.capacity_mib)
                await self.check_fits(session, target, mib, start, end, policy=policy)
            overridden = await self.check_limits(
                session, actor, limits, owner, mib, start, end, override=override_limits
            )
            booking = await _insert_booking(
                session,
                target,
                team_id=actor.team_id,
                user_id=owner,
                task=task,
                memory_mib=mib,
                start_at=start,
                end_at=end,
                original_end_at=end,
                status=BookingStatus.ACTIVE if start <= now else BookingStatus.UPCOMING,
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
            )
            journal = self.journal(session, now, batched=True)
            details = _details(booking) | _overridden(overridden)
            journal.audit(actor.user_id, AuditAction.CREATE, booking, details)
            if self.config.announce_new:
                await journal.notify(NoticeKind.ANNOUNCED, booking, channel=channel)
            journal.tell_owner_if_not(actor.user_id, booking, "created")
            await journal.store()
            return booking_info(booking)

    async def update(
        self,
        actor: Actor,
        booking_id: int,
        change: BookingChange,
        *,
        override_limits: bool = False,
    ) -> BookingInfo:
        """Change task, start, end and/or memory, checked as if the booking itself were absent."""
        now = self.clock()
        self._require_override_right(actor, override_limits)
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.EDIT)
            self.require_holding(booking, ChangeVerb.EDIT)
            limits = await self.limits_for(session, actor.team_id, booking.user_id)
            policy = self.policy_for(limits)
            before = _details(booking)
            start = change.start if change.start is not None else booking.start_at
            end = change.end if change.end is not None else booking.end_at
            if booking.status == BookingStatus.ACTIVE and start != booking.start_at:
                raise InvalidState(Code.STARTED_CANNOT_MOVE, field="start", id=booking.id)
            if change.start is not None and change.start != booking.start_at:
                start, end = rules.check_window(policy, start, end, now)
                rules.check_advance(policy, start, now)
            else:
                rules.check_end(policy, start, end, now)
            if booking.status == BookingStatus.ACTIVE and end > booking.end_at:
                self._check_extension(actor, policy, booking, end)
            mib = (
                booking.memory_mib
                if change.memory is None
                else rules.memory_mib(change.memory, booking.gpu.capacity_mib)
            )
            # An edit keeps its GPU, and a started booking keeps its start too: offer only what
            # the edit could still change to.
            offers = Offers.THIS_GPU if booking.status == BookingStatus.UPCOMING else Offers.NOTHING
            await self.check_fits(
                session,
                booking.gpu,
                mib,
                start,
                end,
                policy=policy,
                exclude=booking.id,
                offers=offers,
            )
            overridden = await self.check_limits(
                session,
                actor,
                limits,
                booking.user_id,
                mib,
                start,
                end,
                exclude=booking.id,
                override=override_limits,
            )
            if change.task is not None:
                booking.task = self._clean_task(change.task)
            if booking.status == BookingStatus.UPCOMING:
                booking.original_end_at = end  # rescheduling before the start is not an extension
            booking.start_at, booking.end_at, booking.memory_mib = start, end, mib
            booking.updated_at = now
            journal = self.journal(session, now)
            changes = {"before": before, "after": _details(booking)} | _overridden(overridden)
            journal.audit(actor.user_id, AuditAction.UPDATE, booking, changes)
            journal.tell_owner_if_not(actor.user_id, booking, "edited")
            return booking_info(booking)

    async def extend(
        self, actor: Actor, booking_id: int, by: timedelta, *, override_limits: bool = False
    ) -> BookingInfo:
        """Push the end later by ``by``; past the start, within the extension limit. Memory must
        fit; if it does not, the refusal offers the longest extension that does."""
        now = self.clock()
        if by <= timedelta(0):
            raise InputError(Code.EXTEND_NOT_POSITIVE, field="duration")
        self._require_override_right(actor, override_limits)
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.EXTEND)
            self.require_holding(booking, ChangeVerb.EXTEND)
            limits = await self.limits_for(session, actor.team_id, booking.user_id)
            policy = self.policy_for(limits)
            new_end = booking.end_at + by
            if booking.status == BookingStatus.ACTIVE:
                self._check_extension(actor, policy, booking, new_end)
            rules.check_length(policy, booking.start_at, new_end)
            await self.check_extension_fits(session, booking, new_end)
            overridden = await self.check_limits(
                session,
                actor,
                limits,
                booking.user_id,
                booking.memory_mib,
                booking.start_at,
                new_end,
                exclude=booking.id,
                override=override_limits,
            )
            old_end = booking.end_at
            booking.end_at, booking.updated_at = new_end, now
            if booking.status == BookingStatus.UPCOMING:
                booking.original_end_at = new_end  # before the start this is rescheduling
            journal = self.journal(session, now)
            moved = {"from": old_end.isoformat(), "to": new_end.isoformat()}
            moved |= _overridden(overridden)
            journal.audit(actor.user_id, AuditAction.EXTEND, booking, moved)
            journal.tell_owner_if_not(actor.user_id, booking, "extended")
            return booking_info(booking)

    async def release(self, actor: Actor, booking_id: int) -> BookingInfo:
        """End an active booking now, freeing its memory at once."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.RELEASE)
            if booking.status == BookingStatus.UPCOMING:
                raise InvalidState(Code.NOT_STARTED_CANCEL, id=booking.id)
            self.require_holding(booking, ChangeVerb.RELEASE)
            journal = self.journal(session, now)
            await transitions.end_early(journal, actor.user_id, booking, EndReason.RELEASED)
            return booking_info(booking)

    async def cancel(self, actor: Actor, booking_id: int) -> BookingInfo:
        """Cancel a booking that has not started (an active one is released instead)."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.CANCEL)
            if booking.status == BookingStatus.ACTIVE:
                raise InvalidState(Code.STARTED_RELEASE, id=booking.id)
            self.require_holding(booking, ChangeVerb.CANCEL)
            await transitions.cancel(self.journal(session, now), actor.user_id, booking)
            return booking_info(booking)

    def _check_extension(
        self, actor: Actor, policy: Policy, booking: Booking, new_end: datetime
    ) -> None:
        limit = self.extension_limit(actor, policy)
        rules.check_extension(booking.id, limit, booking.original_end_at, booking.end_at, new_end)

    def _require_override_right(self, actor: Actor, override_limits: bool) -> None:
        if override_limits:
            self.require_admin(actor, "override limits")

    def _clean_task(self, task: str) -> str:
        return rules.clean_text(task, self.policy.max_task_chars, "task", required=True)


def _details(booking: Booking) -> dict[str, Any]:
    """A booking as the audit log records it (before/after an edit)."""
    return {
        "gpu": booking.gpu.name,
        "user": booking.user_id,
        "task": booking.task,
        "memory_mib": booking.memory_mib,
        "start": booking.start_at.isoformat(),
        "end": booking.end_at.isoformat(),
    }


def _overridden(limits: list[str]) -> dict[str, Any]:
    """The limits an admin booked past, for the audit entry (nothing when none was)."""
    return {"limits_overridden": limits} if limits else {}
