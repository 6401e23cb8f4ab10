"""The queue in the service: flexible bookings made at the earliest fit, moved earlier when memory
frees, pinned by their owners.

A flexible booking is placed like `any` but at the earliest start that fits on a GPU it may use
(a name pattern such as ``a100-*``), never before its ``not before`` and ending by its deadline —
sooner where queued flexible bookings in the way can be shifted to another card at no later
start (:func:`bot.core.queue.place`; their owners are told). After every change that frees
memory (:mod:`bot.booking.queue_passes` lists them) one *queue pass* re-places the flexible
bookings that have not started, in the order they were made, with the pure
:func:`bot.core.queue.advance`, by the same rule.

A pass is one transaction that locks every GPU of the workspace (id order), then the owners of
the waiting bookings (user id order) — the lock order of :mod:`bot.booking.limits`, extended to
several people only here, where no GPU lock follows. Two replicas' passes therefore run one
after the other, and the second finds nothing left to move: every move, its audit entry and the
owner's DM commit together, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.booking.gpus import GpuAdmin
from bot.booking.journal import SYSTEM_ACTOR, Journal
from bot.booking.limits import lock_user
from bot.booking.placement import refuse_if_too_big
from bot.booking.snapshots import booking_info
from bot.booking.watches import Watches
from bot.booking.writes import BookingWrites
from bot.core import queue, rules
from bot.core.actor import Actor
from bot.core.errors import CapacityError, InvalidState, NotFound
from bot.core.limits import LimitName
from bot.core.phrases import Code
from bot.core.queue import matches
from bot.core.sentence import Quote, Size, When
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import AuditAction, BookingStatus, ChangeVerb, NoticeKind
from storage.models import Booking, Gpu

#: Where the queue passes of the running request put the bookings they moved (``None``: nobody
#: asked). A pass runs inside a person's release or cancel, and the interface that served it
#: refreshes what the moved bookings' owners see (their App Home) along with the asker's; the
#: service returns the released booking, so the moves travel beside it, scoped to the request.
_moved: ContextVar[list[BookingInfo] | None] = ContextVar("gpubook_moved", default=None)


@contextmanager
def collect_moves(into: list[BookingInfo]) -> Iterator[list[BookingInfo]]:
    """Append to ``into`` every booking a queue pass moves while the block runs (in this task
    and the tasks it starts)."""
    token = _moved.set(into)
    try:
        yield into
    finally:
        _moved.reset(token)


def _waiting(team_id: str, now: datetime) -> Select[tuple[Booking]]:
    """The flexible bookings not started, in the order they were made (the line); read afresh
    (``populate_existing``), as a pass must see them once the locks are held."""
    return (
        queries.bookings_of(team_id)
        .where(
            Booking.flexible.is_(True),
            Booking.status == BookingStatus.UPCOMING,
            Booking.start_at > now,
        )
        .order_by(Booking.id)
        .execution_options(populate_existing=True)
    )


def _report_moves(moved: list[BookingInfo]) -> None:
    """Hand the bookings moved to whoever collects them for this request (:func:`collect_moves`)."""
    collector = _moved.get()
    if collector is not None:
        collector.extend(moved)


class Queue(BookingWrites, GpuAdmin, Watches):
    """Flexible bookings, and the queue pass then the watches' check (run after every change that
    frees memory by :class:`bot.booking.queue_passes.QueuePasses`)."""

    async def create_flexible(
        self,
        actor: Actor,
        *,
        memory: int | str,
        duration: timedelta,
        task: str,
        pattern: str | None = None,
        not_before: datetime | None = None,
        deadline: datetime | None = None,
    ) -> BookingInfo:
        """Book ``memory`` for ``duration`` at the earliest fit on a GPU matching ``pattern``,
        from ``not_before`` (default now), ending by ``deadline``; it moves earlier later."""
        now = self.clock()
        task = self._clean_task(task)
        rules.refuse_percentage_without_gpu(memory)
        mib = rules.memory_mib(memory, None)
        earliest = max(now.replace(microsecond=0), not_before or now)
        async with self.db.write() as session:
            limits = await self.limits_for(session, actor.team_id, actor.user_id)
            policy = self.policy_for(limits)
            rules.check_length(policy, earliest, earliest + duration)
            team_gpus = await queries.gpus(session, actor.team_id)
            gpus = [g for g in team_gpus if matches(g.name, pattern)]
            if not gpus:
                raise NotFound(
                    Code.QUEUE_NO_GPU_MATCHES, field="gpu", pattern=Quote(pattern or "*")
                )
            refuse_if_too_big(gpus, mib)
            latest = self.search_until(earliest, policy)
            if deadline is not None:
                latest = min(latest, deadline - duration)
            # Every GPU: a booking shifted aside may go to any card it may use.
            await queries.lock_gpu_ids(session, [g.id for g in team_gpus])
            rows, waiting, max_held = await self._line(
                session, actor.team_id, team_gpus, now, also=actor.user_id
            )
            max_held[actor.user_id] = limits[LimitName.MAX_HELD].value
            found = queue.place(
                {g.id: g.capacity_mib for g in team_gpus},
                await queries.placements(session, actor.team_id),
                waiting,
                max_held,
                now,
                queue.Ask(
                    actor.user_id, mib, duration, tuple(g.id for g in gpus), earliest, latest
                ),
            )
            if found is None:
                raise CapacityError(
                    Code.QUEUE_NOTHING_FITS,
                    gpu_name="any",
                    capacity_mib=0,
                    peak_mib=0,
                    requested_mib=mib,
                    suggestion=None,
                    asked=Size(mib),
                    until=When(latest + duration),
                )
            target, start = next(g for g in gpus if g.id == found.card), found.start
            rules.check_advance(policy, start, now)
            await self.check_limits(
                session, actor, limits, actor.user_id, mib, start, start + duration
            )
            booking = Booking(
                team_id=actor.team_id,
                gpu_id=target.id,
                user_id=actor.user_id,
                task=task,
                memory_mib=mib,
                start_at=start,
                end_at=start + duration,
                original_end_at=start + duration,
                status=BookingStatus.ACTIVE if start <= now else BookingStatus.UPCOMING,
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
                flexible=start > now,
                gpu_pattern=pattern,
                not_before=not_before,
            )
            booking.gpu = target
            session.add(booking)
            await session.flush()
            journal = self.journal(session, now)
            details = {
                "gpu": target.name,
                "memory_mib": mib,
                "start": start.isoformat(),
                "end": booking.end_at.isoformat(),
                "flexible": True,
                "pattern": pattern,
            }
            journal.audit(actor.user_id, AuditAction.CREATE, booking, details)
            if self.config.announce_new:
                await journal.notify(NoticeKind.ANNOUNCED, booking)
            shifted = self._apply_moves(journal, found.shifted, rows, team_gpus, now)
            info = booking_info(booking)
        _report_moves(shifted)
        return info

    async def pin(self, actor: Actor, booking_id: int) -> BookingInfo:
        """Stop a flexible booking from moving: it stays where it is, like any fixed booking."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.EDIT)
            self.require_holding(booking, ChangeVerb.EDIT)
            if not booking.flexible:
                raise InvalidState(Code.QUEUE_NOT_FLEXIBLE, id=booking.id)
            booking.flexible, booking.updated_at = False, now
            self.journal(session, now).audit(actor.user_id, AuditAction.PIN, booking, {})
            return booking_info(booking)

    async def advance_queue(self, team_id: str) -> list[int]:
        """One queue pass: move every waiting flexible booking to its earliest fit, if earlier.
        Returns the ids of the bookings moved."""
        now = self.clock()
        async with self.db.write() as session:
            if await session.scalar(_waiting(team_id, now).limit(1)) is None:
                return []  # nobody waits: no lock taken
            gpus = await queries.gpus(session, team_id)
            await queries.lock_gpu_ids(session, [g.id for g in gpus])
            rows, waiting, max_held = await self._line(session, team_id, gpus, now)
            placed = await queries.placements(session, team_id)
            capacities = {g.id: g.capacity_mib for g in gpus}
            moves = queue.advance(capacities, placed, waiting, max_held, now)
            moved = self._apply_moves(self.journal(session, now), moves, rows, gpus, now)
        _report_moves(moved)
        return [info.id for info in moved]

    async def _line(
        self,
        session: AsyncSession,
        team_id: str,
        gpus: Sequence[Gpu],
        now: datetime,
        *,
        also: str | None = None,
    ) -> tuple[list[Booking], list[queue.Waiting], dict[str, int | None]]:
        """The waiting flexible bookings in line order (read with every GPU locked, so as they
        are), as the queue sees them, and each owner's max-held; their owners and ``also`` (the
        person booking) locked, in user id order."""
        rows = list(await session.scalars(_waiting(team_id, now)))
        owners = {row.user_id for row in rows}
        for owner in sorted(owners | ({also} if also else set())):
            await lock_user(session, self.db.backend, team_id, owner)
        max_held = {
            owner: (await self.limits_for(session, team_id, owner))[LimitName.MAX_HELD].value
            for owner in sorted(owners)
        }
        waiting = [
            queue.Waiting(
                queue.Placed(r.id, r.gpu_id, r.user_id, r.start_at, r.end_at, r.memory_mib),
                tuple(g.id for g in gpus if matches(g.name, r.gpu_pattern)),
                r.not_before or r.created_at,
            )
            for r in rows
        ]
        return rows, waiting, max_held

    def _apply_moves(
        self,
        journal: Journal,
        moves: Sequence[queue.Move],
        rows: Sequence[Booking],
        gpus: Sequence[Gpu],
        now: datetime,
    ) -> list[BookingInfo]:
        """Write each move to its booking, audited, and DM its owner."""
        by_id, names = {row.id: row for row in rows}, {g.id: g for g in gpus}
        for move in moves:
            booking = by_id[move.id]
            before = {"gpu": booking.gpu.name, "start": booking.start_at.isoformat()}
            booking.gpu = names[move.card]
            booking.start_at, booking.end_at = move.start, move.end
            booking.original_end_at, booking.updated_at = move.end, now
            after = {"gpu": booking.gpu.name, "start": move.start.isoformat()}
            journal.audit(
                SYSTEM_ACTOR, AuditAction.MOVE, booking, {"before": before, "after": after}
            )
            journal.tell_owner(
                NoticeKind.MOVED, booking, {"was_gpu": before["gpu"], "was_start": before["start"]}
            )
        return [booking_info(by_id[move.id]) for move in moves]

    async def after_freeing(self, team_id: str) -> None:
        """After a change that may have freed memory: move flexible bookings up first (they were
        made before anyone waiting now was told), then tell the watches what is left."""
        await self.advance_queue(team_id)
        await self.check_watches(team_id)
