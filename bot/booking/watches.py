"""Watches: a person waiting for room, told once by DM when a window that fits opens.

`/gpubook notify 20GB for 2h on a100-* before fri` stores a watch. A *check* looks, for each open
watch of a workspace, for the earliest window of that memory and length that ends by the deadline
on a GPU it may use and that its owner may book now: the card's capacity and their max-held (the
queue's search, :func:`bot.core.queue.earliest_placement`), then their other limits at that window
(:meth:`FairShare.check_limits`), their longest booking and how far ahead they may book. When one
fits, the watch closes and its DM — with a Book button for that window — is written in the same
transaction; once no window can end by the deadline any more, it closes as expired and says so,
once.

Checks run after every change that frees memory (after the queue pass: flexible bookings, made
earlier, are served first) and in every lifecycle sweep (GB·hours age out as the week rolls on,
and the usage reconciliation releases idle bookings). A check locks the workspace's open watches
(id order), then their owners' lock rows (user order, as the queue pass does), and no GPU: nothing
can wait on it in a cycle. A second replica's check waits for the rows and then finds them closed,
so each DM is written once. The window is news, not a hold: the Book button books through the
normal path, which refuses it if someone took it meanwhile (offering the next windows, as any
refusal does).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.booking.limits import FairShare, lock_user
from bot.booking.placement import refuse_if_too_big
from bot.core import queue, rules
from bot.core.actor import Actor
from bot.core.errors import GpubookError, InvalidState, NotFound, PolicyViolation
from bot.core.limits import LimitName
from bot.core.phrases import Code
from bot.core.sentence import Quote, Span, When
from bot.core.snapshots import WatchInfo
from bot.core.vocabulary import NoticeKind, WatchEnd
from storage.models import Gpu, Watch

#: Open watches one person may have: every check looks at each, so their number is bounded.
MAX_OPEN_WATCHES = 10


class Watches(FairShare):
    """Storing, listing and cancelling watches, and the check that tells their owners."""

    async def create_watch(
        self,
        actor: Actor,
        *,
        memory: int | str,
        duration: timedelta,
        pattern: str | None = None,
        deadline: datetime | None = None,
        task: str | None = None,
    ) -> WatchInfo:
        """Wait for ``memory`` for ``duration`` on a GPU matching ``pattern``, in a window ending
        by ``deadline`` (default: as far ahead as offers look); checked at once."""
        now = self.clock()
        rules.refuse_percentage_without_gpu(memory)
        mib = rules.memory_mib(memory, None)
        clean = rules.clean_text(task or "", self.policy.max_task_chars, "task") or None
        deadline = deadline or now + self.policy.search_horizon
        if deadline - duration < now:
            raise PolicyViolation(
                Code.WATCH_DEADLINE_TOO_SOON,
                field="end",
                length=Span(duration),
                deadline=When(deadline),
            )
        async with self.db.write() as session:
            limits = await self.limits_for(session, actor.team_id, actor.user_id)
            rules.check_length(self.policy_for(limits), now, now + duration)
            gpus = [
                g
                for g in await queries.gpus(session, actor.team_id)
                if queue.matches(g.name, pattern)
            ]
            if not gpus:
                raise NotFound(
                    Code.QUEUE_NO_GPU_MATCHES, field="gpu", pattern=Quote(pattern or "*")
                )
            refuse_if_too_big(gpus, mib)
            await lock_user(session, self.db.backend, actor.team_id, actor.user_id)
            waiting = await session.scalar(
                select(func.count())
                .select_from(Watch)
                .where(
                    Watch.team_id == actor.team_id,
                    Watch.user_id == actor.user_id,
                    Watch.ended.is_(None),
                )
            )
            if (waiting or 0) >= MAX_OPEN_WATCHES:
                raise PolicyViolation(Code.WATCH_TOO_MANY, count=waiting)
            watch = Watch(
                team_id=actor.team_id,
                user_id=actor.user_id,
                memory_mib=mib,
                duration_s=int(duration.total_seconds()),
                gpu_pattern=pattern,
                deadline=deadline,
                task=clean,
                created_at=now,
            )
            session.add(watch)
            await session.flush()
            info = _info(watch)
        await self.check_watches(actor.team_id)
        return info

    async def my_watches(self, actor: Actor) -> list[WatchInfo]:
        """The actor's open watches, oldest first."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(Watch)
                .where(
                    Watch.team_id == actor.team_id,
                    Watch.user_id == actor.user_id,
                    Watch.ended.is_(None),
                )
                .order_by(Watch.id)
            )
            return [_info(row) for row in rows]

    async def cancel_watch(self, actor: Actor, watch_id: int) -> WatchInfo:
        """Stop waiting: no DM comes from it any more. The owner's (or an admin's) to cancel."""
        now = self.clock()
        async with self.db.write() as session:
            watch = await session.scalar(
                select(Watch)
                .where(Watch.id == watch_id, Watch.team_id == actor.team_id)
                .with_for_update()
            )
            if watch is None or (watch.user_id != actor.user_id and not self.is_admin(actor)):
                raise NotFound(Code.WATCH_NOT_FOUND, id=watch_id)
            if watch.ended is not None:
                raise InvalidState(Code.WATCH_CLOSED, id=watch_id)
            watch.ended, watch.ended_at = WatchEnd.CANCELLED, now
            return _info(watch)

    async def check_watches(self, team_id: str | None = None, now: datetime | None = None) -> int:
        """Tell the owner of each open watch (of ``team_id``, else of every workspace) whose
        window opened, and close those past their deadline; returns how many closed."""
        now = now or self.clock()
        # A read first: most releases find no watch waiting, and need no write transaction.
        query = select(Watch.team_id).where(Watch.ended.is_(None)).distinct()
        if team_id is not None:
            query = query.where(Watch.team_id == team_id)
        async with self.db.read() as session:
            teams = list(await session.scalars(query))
        closed = 0
        for team in sorted(teams):
            closed += await self._check_team(team, now)
        return closed

    async def _check_team(self, team_id: str, now: datetime) -> int:
        async with self.db.write() as session:
            rows = list(
                await session.scalars(
                    select(Watch)
                    .where(Watch.team_id == team_id, Watch.ended.is_(None))
                    .order_by(Watch.id)
                    .with_for_update()
                )
            )
            if not rows:
                return 0
            for owner in sorted({row.user_id for row in rows}):
                await lock_user(session, self.db.backend, team_id, owner)
            gpus = await queries.gpus(session, team_id)
            placed = await queries.placements(session, team_id)
            journal = self.journal(session, now)
            closed = 0
            for watch in rows:
                details: dict[str, Any] = {
                    "watch": watch.id,
                    "mib": watch.memory_mib,
                    "seconds": watch.duration_s,
                    "pattern": watch.gpu_pattern,
                    "deadline": watch.deadline.isoformat(),
                }
                if watch.deadline - timedelta(seconds=watch.duration_s) < now:
                    kind, ended = NoticeKind.WATCH_EXPIRED, WatchEnd.EXPIRED
                else:
                    window = await self._window(session, watch, gpus, placed, now)
                    if window is None:
                        continue
                    gpu, start = window
                    end = start + timedelta(seconds=watch.duration_s)
                    kind, ended = NoticeKind.WATCH_OPEN, WatchEnd.NOTIFIED
                    details |= {
                        "gpu": gpu.name,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "task": watch.task or f"watch #{watch.id}",
                    }
                watch.ended, watch.ended_at = ended, now
                journal.tell(kind, team_id, watch.user_id, details)
                closed += 1
            return closed

    async def _window(
        self,
        session: AsyncSession,
        watch: Watch,
        gpus: list[Gpu],
        placed: list[queue.Placed],
        now: datetime,
    ) -> tuple[Gpu, datetime] | None:
        """The earliest window the watch's owner may book now, and its GPU; ``None``: none."""
        limits = await self.limits_for(session, watch.team_id, watch.user_id)
        policy = self.policy_for(limits)
        duration = timedelta(seconds=watch.duration_s)
        start = now.replace(microsecond=0)
        try:
            rules.check_length(policy, start, start + duration)
        except GpubookError:
            return None  # their longest booking shrank since: wait, maybe until it expires
        allowed = [g for g in gpus if queue.matches(g.name, watch.gpu_pattern)]
        best = queue.earliest_placement(
            [
                queue.Card(i, g.capacity_mib, [p.span for p in placed if p.card == g.id])
                for i, g in enumerate(allowed)
            ],
            [p.span for p in placed if p.owner == watch.user_id],
            limits[LimitName.MAX_HELD].value,
            watch.memory_mib,
            duration,
            start,
            min(watch.deadline - duration, rules.latest_start(policy, now)),
        )
        if best is None:
            return None
        card, at = best
        gpu = allowed[int(card.id)]
        owner = Actor(watch.user_id, watch.team_id)
        try:
            await self.check_limits(
                session, owner, limits, watch.user_id, watch.memory_mib, at, at + duration
            )
        except PolicyViolation:
            return None
        assert isinstance(gpu, Gpu)
        return gpu, at


def _info(watch: Watch) -> WatchInfo:
    return WatchInfo(
        id=watch.id,
        user_id=watch.user_id,
        memory_mib=watch.memory_mib,
        duration=timedelta(seconds=watch.duration_s),
        pattern=watch.gpu_pattern,
        deadline=watch.deadline,
        task=watch.task,
        created_at=watch.created_at,
        ended=watch.ended,
    )
