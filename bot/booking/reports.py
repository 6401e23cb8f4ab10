"""Reads for people: one booking, lists, a GPU's calendar, status, free windows, usage, audit.

None of these take a lock: they read one consistent snapshot (a deferred transaction) and
return plain snapshots (:mod:`bot.core.snapshots`), never rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.booking import pages, queries, search, sums
from bot.booking.limits import FairShare
from bot.booking.measured import measured_totals
from bot.booking.placement import refuse_if_too_big
from bot.booking.snapshots import audit_info, booking_info, gpu_info
from bot.booking.status import next_changes
from bot.booking.totals import DAY, Days, settled_days_of, window_totals
from bot.booking.usage import links_of
from bot.core import capacity, rules
from bot.core.actor import Actor
from bot.core.errors import InputError, NotFound
from bot.core.phrases import Code
from bot.core.snapshots import (
    AuditInfo,
    BookingInfo,
    CalendarData,
    FreeWindows,
    GpuInfo,
    GpuStatus,
    Slot,
    Usage,
    Utilisation,
)
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus, ChangeVerb
from storage.models import AuditEntry, Gpu


class Reports(FairShare):
    """What the commands that only look (list, calendar, status, free, stats) read (``free``
    under the asker's own booking rules, so its windows book as offered)."""

    async def get(self, actor: Actor, booking_id: int) -> BookingInfo:
        async with self.db.read() as session:
            return booking_info(await queries.booking(session, actor.team_id, booking_id))

    async def get_for_change(self, actor: Actor, booking_id: int, verb: ChangeVerb) -> BookingInfo:
        """The booking, after checking ``actor`` may ``verb`` it and that it still holds memory,
        so an interface never opens a form for a change the service would refuse."""
        async with self.db.read() as session:
            booking = await queries.booking(session, actor.team_id, booking_id)
            self.require_owner(actor, booking, verb)
            self.require_holding(booking, verb)
            return booking_info(booking)

    async def list_bookings(
        self,
        actor: Actor,
        *,
        everyone: bool = False,
        statuses: Sequence[BookingStatus] = HOLDING_STATUSES,
        gpu: str | None = None,
        window: tuple[datetime, datetime] | None = None,
        after: pages.Cursor | None = None,
        limit: int | None = None,
    ) -> list[BookingInfo]:
        """Bookings ordered by (start, id): the caller's own unless ``everyone``.

        A page at a time with ``limit``, and ``after`` the (start, id) of the last booking of the
        page before: each page costs what it shows, however long the list.
        """
        async with self.db.read() as session:
            gpu_id = None if gpu is None else (await queries.gpu(session, actor.team_id, gpu)).id
            found = await pages.booking_page(
                session,
                actor.team_id,
                statuses,
                user_id=None if everyone else actor.user_id,
                gpu_id=gpu_id,
                window=window,
                after=after,
                limit=limit,
            )
            left = await pages.series_counts(
                session, {b.series_id for b in found if b.series_id is not None}, statuses
            )
            return [
                replace(b, series_left=left[b.series_id]) if b.series_id in left else b
                for b in found
            ]

    async def calendar(
        self, actor: Actor, gpu: str, start: datetime, end: datetime
    ) -> CalendarData:
        """Everyone's bookings on ``gpu`` in ``[start, end)`` and the memory held over it."""
        if end <= start:
            raise InputError(Code.WINDOW_EMPTY, what="calendar")
        async with self.db.read() as session:
            target = await queries.gpu(session, actor.team_id, gpu)
            found = await queries.holding(session, target.id, start, end, include_finished=True)
            infos = [booking_info(b) for b in found]
            info = gpu_info(target)
        spans = [
            capacity.Span(b.start, b.end, b.memory_mib)
            for b in infos
            if b.status != BookingStatus.CANCELLED
        ]
        return CalendarData(info, start, end, infos, capacity.profile(spans, start, end))

    async def status(self, actor: Actor, gpu_ids: Sequence[int] | None = None) -> list[GpuStatus]:
        """Every GPU now (or those of ``gpu_ids``), by name: held, free, and when the held
        memory next changes (see :mod:`bot.booking.status`: read from what is under way, not
        every future booking)."""
        now = self.clock()
        horizon = now + self.policy.search_horizon
        async with self.db.read() as session:
            gpus = await queries.gpus_and_next_starts(session, actor.team_id, now, gpu_ids)
            current = await queries.current_spans(session, actor.team_id, now, gpu_ids)
            starts = {gpu.id: start for gpu, start in gpus}
            changes = await next_changes(session, current, starts, now, horizon)
        result = []
        for gpu, _ in gpus:
            held = current.get(gpu.id, [])
            used = sum(s.mib for s in held)
            free = gpu.capacity_mib - used
            result.append(GpuStatus(gpu_info(gpu), used, free, changes[gpu.id], len(held)))
        return result

    async def free(
        self,
        actor: Actor,
        memory: int | str,
        duration: timedelta,
        *,
        gpu: str | None = None,
        not_before: datetime | None = None,
    ) -> FreeWindows:
        """The earliest window for ``memory`` over ``duration``, per GPU and overall.

        Every window offered books as given by the asker: a length no booking of theirs may
        have is refused with the sentence ``book`` gives, no window starts later than they may
        book, and a request bigger than every GPU is told so rather than searched for.
        """
        if gpu is None:
            rules.refuse_percentage_without_gpu(memory)
        now = self.clock()
        start = max(not_before or now, now)
        if duration <= timedelta(0):
            raise InputError(Code.FREE_NOT_POSITIVE, field="duration")
        async with self.db.read() as session:
            policy = self.policy_for(await self.limits_for(session, actor.team_id, actor.user_id))
            rules.check_length(policy, start, start + duration)
            until = rules.search_until(policy, start, now)
            every = await queries.gpus(session, actor.team_id)
            target = await queries.gpu(session, actor.team_id, gpu) if gpu else None
            if not every:
                raise NotFound(Code.NO_GPUS)
            gpus = [target] if target else every
            mib_by_gpu = {g.id: rules.memory_mib(memory, g.capacity_mib) for g in gpus}
            asked = next(iter(mib_by_gpu.values()))  # one size: a % is only of one named GPU
            refuse_if_too_big(every, asked, target)
            asks = [search.Ask(g.id, g.capacity_mib, mib_by_gpu[g.id]) for g in gpus]
            found = await search.earliest_windows(session, asks, duration, start, until)
        per_gpu: list[tuple[GpuInfo, Slot | None]] = []
        for g in gpus:
            at = found[g.id]
            slot = Slot(g.name, at.start, at.start + duration, mib_by_gpu[g.id]) if at else None
            per_gpu.append((gpu_info(g), slot))
        # Soonest first; then the tightest fit (as placement does), so big cards stay free for
        # big requests.
        soonest = search.soonest(found, [g.id for g in gpus])
        best = None if soonest is None else next(s for g, s in per_gpu if g.id == soonest[0])
        return FreeWindows(asked, duration, per_gpu, best, until)

    async def keep_settled_days(self, days: int = 30) -> None:
        """Start reading, in the background, the settled days of the last ``days`` of every
        workspace with GPUs, so that the first statistics after a start need not sum the window
        directly (``gpubook serve`` calls this as it starts)."""
        now = self.clock()
        async with self.db.read() as session:
            teams = list(await session.scalars(select(Gpu.team_id).distinct()))
            wanted = {
                team: await settled_days_of(
                    session, team, now - days * DAY, now, now, self.policy.past_grace
                )
                for team in teams
            }
        for team, settled in wanted.items():
            if settled is not None:
                self.settled_days.fill_later(self.db, team, settled)

    async def utilisation(self, actor: Actor, start: datetime, end: datetime) -> Utilisation:
        """GB·hours booked against GB·hours available, per GPU and per user, over ``[start, end)``,
        and beside them the GB·hours host agents measured in the same window.

        Cancelled bookings count for nothing; released ones count up to their release. Admins
        only: it shows everyone's use (a user sees their own with ``my_usage``). The database
        adds it up (one row per GPU, user and login); booked days that can no longer change are
        added up once and kept (:mod:`bot.booking.totals`; read in the background the first
        time, the window summed directly meanwhile), so a long window costs what is still
        under way (:mod:`bot.booking.measured` for the measured side). Logins count for whoever
        they are linked to now.
        """
        self.require_admin(actor, "see utilisation statistics")
        _require_window(start, end)
        to_read: list[Days] = []  # settled days not kept yet: read after answering
        async with self.db.read(snapshot=True) as session:  # measured: totals + samples agree
            gpus = await queries.gpus(session, actor.team_id, include_retired=True)
            per_gpu, per_user = await window_totals(
                session,
                self.settled_days,
                actor.team_id,
                start,
                end,
                self.clock(),
                self.policy.past_grace,
                not_kept=to_read.append,
            )
            measured = await measured_totals(session, actor.team_id, start, end)
            links = await links_of(session, actor.team_id)
        for days in to_read:
            self.settled_days.fill_later(self.db, actor.team_id, days)
        seconds = int((end - start).total_seconds())
        available = {g.id: g.capacity_mib * seconds for g in gpus if not g.retired}
        gpu_usage = [
            Usage(
                g.name,
                per_gpu.get(g.id, (0, 0))[1],
                available.get(g.id),
                per_gpu.get(g.id, (0, 0))[0],
                measured.per_gpu.get(g.id),
            )
            for g in gpus
            if not g.retired or g.id in per_gpu
        ]
        by_user: dict[str, int] = {}
        unlinked: list[Usage] = []
        for login, mib_s in sorted(measured.per_login.items()):
            if login in links:
                by_user[links[login]] = by_user.get(links[login], 0) + mib_s
            elif mib_s:
                unlinked.append(Usage(login, 0, None, 0, mib_s))
        user_usage = sorted(
            (
                Usage(u, held, None, count, by_user.get(u, 0) if u in links.values() else None)
                for u, (count, held) in per_user.items()
            ),
            key=lambda u: -u.booked_mib_s,
        ) + [
            Usage(u, 0, None, 0, mib_s)
            for u, mib_s in by_user.items()
            if u not in per_user and mib_s
        ]
        shown = [u.measured_mib_s for u in gpu_usage if u.measured_mib_s is not None]
        total = Usage(
            "total",
            sum(u.booked_mib_s for u in gpu_usage),
            sum(available.values()),
            sum(u.bookings for u in gpu_usage),
            sum(shown) if shown else None,
        )
        return Utilisation(start, end, gpu_usage, user_usage, total, unlinked)

    async def my_usage(self, actor: Actor, start: datetime, end: datetime) -> Usage:
        """The caller's own booked memory-time over ``[start, end)`` (for their dashboard)."""
        _require_window(start, end)
        async with self.db.read() as session:
            _, per_user = await sums.booked_totals(
                session, actor.team_id, start, end, actor.user_id
            )
        count, held = per_user.get(actor.user_id, (0, 0))
        return Usage(actor.user_id, held, None, count)

    async def audit_log(self, actor: Actor, limit: int = 50) -> list[AuditInfo]:
        """The latest audit entries, newest first (admins only)."""
        self.require_admin(actor, "read the audit log")
        async with self.db.read() as session:
            query = (
                select(AuditEntry)
                .where(AuditEntry.team_id == actor.team_id)
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            )
            return [audit_info(entry) for entry in await session.scalars(query)]


def _require_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InputError(Code.WINDOW_EMPTY, what="statistics")
