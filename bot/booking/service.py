"""The booking service: every rule and every transaction, used by Slack, the console and the CLI.

Each operation that can change capacity runs as one transaction that first locks the GPU
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the write
lock), then reads the GPU's holding bookings, asks the pure capacity core, and writes. A refusal
raises before anything is written, so the transaction rolls back and nothing changes. Changes to
an existing booking are checked as if that booking were absent.

Every change also writes an audit entry and, where the team should hear about it, a row in the
notification outbox — in the same transaction, so a change and its message commit together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import capacity
from bot.core.clock import Clock, system_clock
from bot.core.errors import (
    CapacityError,
    InputError,
    InvalidState,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    SuggestedSlot,
)
from bot.core.policy import Policy
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
from bot.core.timefmt import format_time, format_window, zone_label
from bot.core.timeparse import parse_day, parse_when
from bot.core.units import format_duration, format_size, parse_size
from storage.db import Database
from storage.models import (
    HOLDING_STATUSES,
    AuditEntry,
    Booking,
    BookingStatus,
    Gpu,
    Notification,
    Workspace,
)

DEFAULT_TEAM = "T_LOCAL"
_GPU_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
#: Words the command grammar gives a meaning of its own.
RESERVED_GPU_NAMES = frozenset(
    {"any", "all", "week", "day", "for", "until", "by", "at", "in", "now", "today", "tomorrow"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
#: What every interface says when a workspace has no GPU to book.
NO_GPUS = "There are no GPUs yet; an admin adds one with `/gpubook admin gpu add NAME SIZE`."
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Actor:
    """Who is asking: a Slack user in a workspace, with their time zone for the sentences."""

    user_id: str
    team_id: str = DEFAULT_TEAM
    is_workspace_admin: bool = False
    tz: tzinfo = UTC


@dataclass(frozen=True)
class ServiceConfig:
    policy: Policy = field(default_factory=Policy)
    #: Slack user ids with admin rights, besides workspace admins.
    admins: frozenset[str] = frozenset()
    #: Channel for notifications when neither the GPU nor the workspace names one.
    default_channel: str | None = None
    #: Whether new bookings are announced in the channel.
    announce_new: bool = True


@dataclass(frozen=True)
class BookingChange:
    """What ``update`` should change; ``None`` leaves a field as it is."""

    task: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    memory: int | str | None = None


class BookingService:
    def __init__(
        self, db: Database, config: ServiceConfig | None = None, clock: Clock = system_clock
    ):
        self.db = db
        self.config = config or ServiceConfig()
        self.clock = clock

    @property
    def policy(self) -> Policy:
        return self.config.policy

    def is_admin(self, actor: Actor) -> bool:
        return actor.is_workspace_admin or actor.user_id in self.config.admins

    # ------------------------------------------------------------------ bookings: writes

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
    ) -> BookingInfo:
        """Book ``memory`` on ``gpu`` (``None``: the best-fitting GPU) over ``[start, end)``.

        ``user_id`` books on someone else's behalf (admins only). ``memory`` is MiB or the text
        the user typed (``20GB``, ``50%`` — a percentage of the chosen GPU).
        """
        now = self.clock()
        owner = user_id or actor.user_id
        if owner != actor.user_id:
            self._require_admin(actor, "book on someone else's behalf")
        task = self._clean_task(task)
        start, end = self._check_window(start, end, now, actor.tz)
        self._check_advance(start, now)
        async with self.db.write() as session:
            if gpu is None:
                target, mib = await self._place(session, actor, memory, start, end, now)
            else:
                target = await self._lock_gpu(session, actor.team_id, gpu)
                mib = self._memory(memory, target.capacity_mib)
                await self._check_fits(session, actor, target, mib, start, end, now)
            booking = Booking(
                team_id=actor.team_id,
                gpu_id=target.id,
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
            booking.gpu = target
            session.add(booking)
            await session.flush()
            self._audit(session, actor, "create", booking, now, self._booking_details(booking))
            if self.config.announce_new:
                await self._notify(session, "announced", booking, now)
            if owner != actor.user_id:
                self._dm_owner(
                    session, "changed", booking, now, {"action": "created", "by": actor.user_id}
                )
            return BookingInfo.of(booking)

    async def update(self, actor: Actor, booking_id: int, change: BookingChange) -> BookingInfo:
        """Change task, start, end and/or memory, checked as if the booking itself were absent."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self._locked_booking(session, actor, booking_id, "edit")
            self._require_holding(booking, "edit")
            before = self._booking_details(booking)
            start = change.start if change.start is not None else booking.start_at
            end = change.end if change.end is not None else booking.end_at
            if booking.status == BookingStatus.ACTIVE and start != booking.start_at:
                raise InvalidState(
                    f"Booking #{booking.id} has already started, so its start can't move; "
                    "change its end or memory instead.",
                    field="start",
                )
            if change.start is not None and change.start != booking.start_at:
                start, end = self._check_window(start, end, now, actor.tz)
                self._check_advance(start, now)
            else:
                self._check_end(start, end, now)
            if booking.status == BookingStatus.ACTIVE and end > booking.end_at:
                self._check_extension(actor, booking, end)
            mib = (
                booking.memory_mib
                if change.memory is None
                else self._memory(change.memory, booking.gpu.capacity_mib)
            )
            await self._check_fits(
                session, actor, booking.gpu, mib, start, end, now, exclude=booking.id
            )
            if change.task is not None:
                booking.task = self._clean_task(change.task)
            if booking.status == BookingStatus.UPCOMING:
                booking.original_end_at = end  # rescheduling before the start is not an extension
            booking.start_at, booking.end_at, booking.memory_mib = start, end, mib
            booking.updated_at = now
            after = self._booking_details(booking)
            self._audit(session, actor, "update", booking, now, {"before": before, "after": after})
            self._dm_if_admin_change(session, actor, booking, now, "edited")
            return BookingInfo.of(booking)

    async def extend(self, actor: Actor, booking_id: int, by: timedelta) -> BookingInfo:
        """Push the end later by ``by``; past the start, within the extension limit. Memory must fit."""
        now = self.clock()
        if by <= timedelta(0):
            raise InputError("Extend by a positive duration, like `1h` or `30m`.", field="duration")
        async with self.db.write() as session:
            booking = await self._locked_booking(session, actor, booking_id, "extend")
            self._require_holding(booking, "extend")
            new_end = booking.end_at + by
            if booking.status == BookingStatus.ACTIVE:
                self._check_extension(actor, booking, new_end)
            self._check_length(booking.start_at, new_end)
            await self._check_fits(
                session,
                actor,
                booking.gpu,
                booking.memory_mib,
                booking.end_at,
                new_end,
                now,
                exclude=booking.id,
            )
            old_end = booking.end_at
            booking.end_at, booking.updated_at = new_end, now
            if booking.status == BookingStatus.UPCOMING:
                booking.original_end_at = new_end  # before the start this is rescheduling
            self._audit(
                session,
                actor,
                "extend",
                booking,
                now,
                {"from": old_end.isoformat(), "to": new_end.isoformat()},
            )
            self._dm_if_admin_change(session, actor, booking, now, "extended")
            return BookingInfo.of(booking)

    async def release(self, actor: Actor, booking_id: int) -> BookingInfo:
        """End an active booking now, freeing its memory at once."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self._locked_booking(session, actor, booking_id, "release")
            if booking.status == BookingStatus.UPCOMING:
                raise InvalidState(
                    f"Booking #{booking.id} hasn't started yet; cancel it instead "
                    f"(`/gpubook cancel {booking.id}`)."
                )
            self._require_holding(booking, "release")
            await self._end_early(session, actor, booking, now, "released")
            return BookingInfo.of(booking)

    async def cancel(self, actor: Actor, booking_id: int) -> BookingInfo:
        """Cancel a booking that has not started (an active one is released instead)."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self._locked_booking(session, actor, booking_id, "cancel")
            if booking.status == BookingStatus.ACTIVE:
                raise InvalidState(
                    f"Booking #{booking.id} has already started; release it instead "
                    f"(`/gpubook release {booking.id}`) to free its memory now."
                )
            self._require_holding(booking, "cancel")
            await self._cancel(session, actor, booking, now)
            return BookingInfo.of(booking)

    def _check_extension(self, actor: Actor, booking: Booking, new_end: datetime) -> None:
        """An active booking's end may move past its original end only within the group limit.

        The limit is on the total, so repeated small extensions cannot add up past it.
        """
        limit = self.policy.extension_limit(booking.user_id, is_admin=self.is_admin(actor))
        if new_end - booking.original_end_at <= limit:
            return
        left = max(limit - (booking.end_at - booking.original_end_at), timedelta(0))
        raise PolicyViolation(
            f"Booking #{booking.id} can be extended by at most {format_duration(limit)} in total "
            f"beyond its original end; {format_duration(left) if left else 'nothing'} is left. "
            "Book a new window for the rest.",
            field="duration",
        )

    async def _end_early(
        self, session: AsyncSession, actor: Actor, booking: Booking, now: datetime, reason: str
    ) -> None:
        """End a running booking now: its memory is free from this instant, and everyone hears."""
        planned_end = booking.end_at
        # Never past the planned end: an overrun the lifecycle sweep hasn't ended yet held
        # nothing after it.
        booking.end_at = min(max(now, booking.start_at), planned_end)
        booking.status, booking.end_reason, booking.updated_at = (
            BookingStatus.COMPLETED,
            reason,
            now,
        )
        details = {"planned_end": planned_end.isoformat(), "reason": reason}
        self._audit(session, actor, "release", booking, now, details)
        await self._notify(session, "released", booking, now, details)
        self._dm_if_admin_change(session, actor, booking, now, "released", reason=reason)

    async def _cancel(
        self,
        session: AsyncSession,
        actor: Actor,
        booking: Booking,
        now: datetime,
        reason: str | None = None,
    ) -> None:
        booking.status, booking.cancelled_at, booking.updated_at = BookingStatus.CANCELLED, now, now
        details = {"reason": reason} if reason else {}
        self._audit(session, actor, "cancel", booking, now, details)
        await self._notify(session, "cancelled", booking, now, details)
        self._dm_if_admin_change(session, actor, booking, now, "cancelled", reason=reason)

    # ------------------------------------------------------------------ bookings: reads

    async def get(self, actor: Actor, booking_id: int) -> BookingInfo:
        async with self.db.read() as session:
            return BookingInfo.of(await self._booking(session, actor.team_id, booking_id))

    async def get_for_change(self, actor: Actor, booking_id: int, verb: str) -> BookingInfo:
        """The booking, after checking ``actor`` may ``verb`` it and that it still holds memory,
        so an interface never opens a form for a change the service would refuse."""
        async with self.db.read() as session:
            booking = await self._booking(session, actor.team_id, booking_id)
            self._require_owner(actor, booking, verb)
            self._require_holding(booking, verb)
            return BookingInfo.of(booking)

    async def list_bookings(
        self,
        actor: Actor,
        *,
        everyone: bool = False,
        statuses: Sequence[BookingStatus] = HOLDING_STATUSES,
        gpu: str | None = None,
        window: tuple[datetime, datetime] | None = None,
        limit: int | None = None,
    ) -> list[BookingInfo]:
        """Bookings ordered by start: the caller's own unless ``everyone``."""
        query = self._bookings_query(actor.team_id).where(Booking.status.in_(list(statuses)))
        if not everyone:
            query = query.where(Booking.user_id == actor.user_id)
        async with self.db.read() as session:
            if gpu is not None:
                query = query.where(
                    Booking.gpu_id == (await self._gpu(session, actor.team_id, gpu)).id
                )
            if window is not None:
                query = query.where(Booking.start_at < window[1], Booking.end_at > window[0])
            query = query.order_by(Booking.start_at, Booking.id)
            if limit is not None:
                query = query.limit(limit)
            return [BookingInfo.of(b) for b in (await session.scalars(query)).unique()]

    async def calendar(
        self, actor: Actor, gpu: str, start: datetime, end: datetime
    ) -> CalendarData:
        """Everyone's bookings on ``gpu`` in ``[start, end)`` and the memory held over it."""
        if end <= start:
            raise InputError("The calendar window must end after it starts.")
        async with self.db.read() as session:
            target = await self._gpu(session, actor.team_id, gpu)
            bookings = await self._holding(session, target.id, start, end, include_finished=True)
        infos = [BookingInfo.of(b) for b in bookings]
        spans = [
            capacity.Span(b.start, b.end, b.memory_mib)
            for b in infos
            if b.status != BookingStatus.CANCELLED
        ]
        return CalendarData(
            GpuInfo.of(target), start, end, infos, capacity.profile(spans, start, end)
        )

    async def status(self, actor: Actor) -> list[GpuStatus]:
        """Every GPU now: held, free, and when the held memory next changes."""
        now = self.clock()
        async with self.db.read() as session:
            gpus = await self._gpus(session, actor.team_id)
            horizon = now + self.policy.search_horizon
            spans_by_gpu = await self._spans(session, [g.id for g in gpus], now, horizon)
        result = []
        for gpu in gpus:
            spans = spans_by_gpu[gpu.id]
            steps = capacity.profile(spans, now, horizon)
            used = steps[0].used_mib
            next_change = steps[1].start if len(steps) > 1 else None
            active = sum(1 for s in spans if s.start <= now < s.end)
            result.append(
                GpuStatus(GpuInfo.of(gpu), used, gpu.capacity_mib - used, next_change, active)
            )
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
        """The earliest window for ``memory`` over ``duration``, per GPU and overall."""
        if gpu is None:
            self._refuse_percentage_without_gpu(memory)
        now = self.clock()
        start = max(not_before or now, now)
        if duration <= timedelta(0):
            raise InputError("Give a positive duration, like `2h`.", field="duration")
        async with self.db.read() as session:
            gpus = (
                [await self._gpu(session, actor.team_id, gpu)]
                if gpu
                else await self._gpus(session, actor.team_id)
            )
            if not gpus:
                raise NotFound(NO_GPUS)
            mib_by_gpu = {g.id: self._memory(memory, g.capacity_mib) for g in gpus}
            horizon = start + self.policy.search_horizon
            spans_by_gpu = await self._spans(
                session, [g.id for g in gpus], start, horizon + duration
            )
        per_gpu: list[tuple[GpuInfo, Slot | None]] = []
        ranked: list[tuple[tuple[datetime, int], Slot]] = []
        for g in gpus:
            mib, spans = mib_by_gpu[g.id], spans_by_gpu[g.id]
            at = capacity.earliest_fit(spans, g.capacity_mib, mib, duration, start, horizon)
            slot = Slot(g.name, at, at + duration, mib) if at else None
            per_gpu.append((GpuInfo.of(g), slot))
            if slot is not None:
                # Soonest first; then the tightest fit (as placement does), so big cards stay
                # free for big requests.
                spare = g.capacity_mib - capacity.peak(spans, slot.start, slot.end).mib - mib
                ranked.append(((slot.start, spare), slot))
        best = min(ranked, key=lambda r: r[0])[1] if ranked else None
        return FreeWindows(next(iter(mib_by_gpu.values())), duration, per_gpu, best)

    async def utilisation(self, actor: Actor, start: datetime, end: datetime) -> Utilisation:
        """GB·hours booked against GB·hours available, per GPU and per user, over ``[start, end)``.

        Cancelled bookings count for nothing; released ones count up to their release. Admins
        only: it shows everyone's use (a user sees their own with ``my_usage``).
        """
        self._require_admin(actor, "see utilisation statistics")
        async with self.db.read() as session:
            gpus = await self._gpus(session, actor.team_id, include_retired=True)
            bookings = await self._booked_in(session, actor.team_id, start, end)
        seconds = int((end - start).total_seconds())
        per_gpu: dict[int, list[int]] = {g.id: [0, 0] for g in gpus}
        per_user: dict[str, list[int]] = {}
        for b in bookings:
            held = _held_mib_s(b, start, end)
            per_gpu[b.gpu_id][0] += held
            per_gpu[b.gpu_id][1] += 1
            user = per_user.setdefault(b.user_id, [0, 0])
            user[0] += held
            user[1] += 1
        available = {g.id: g.capacity_mib * seconds for g in gpus if not g.retired}
        gpu_usage = [
            Usage(g.name, per_gpu[g.id][0], available.get(g.id), per_gpu[g.id][1])
            for g in gpus
            if not g.retired or per_gpu[g.id][1]
        ]
        user_usage = sorted(
            (Usage(u, v[0], None, v[1]) for u, v in per_user.items()), key=lambda u: -u.booked_mib_s
        )
        total = Usage(
            "total",
            sum(u.booked_mib_s for u in gpu_usage),
            sum(available.values()),
            sum(u.bookings for u in gpu_usage),
        )
        return Utilisation(start, end, gpu_usage, user_usage, total)

    async def my_usage(self, actor: Actor, start: datetime, end: datetime) -> Usage:
        """The caller's own booked memory-time over ``[start, end)`` (for their dashboard)."""
        async with self.db.read() as session:
            bookings = await self._booked_in(session, actor.team_id, start, end, actor.user_id)
        return Usage(
            actor.user_id, sum(_held_mib_s(b, start, end) for b in bookings), None, len(bookings)
        )

    async def _booked_in(
        self,
        session: AsyncSession,
        team_id: str,
        start: datetime,
        end: datetime,
        user_id: str | None = None,
    ) -> list[Booking]:
        """Bookings that held (or will hold) memory in ``[start, end)``: all but cancelled ones."""
        if end <= start:
            raise InputError("The statistics window must end after it starts.")
        query = self._bookings_query(team_id).where(
            Booking.status != BookingStatus.CANCELLED,
            Booking.start_at < end,
            Booking.end_at > start,
        )
        if user_id is not None:
            query = query.where(Booking.user_id == user_id)
        return list((await session.scalars(query)).unique())

    async def audit_log(self, actor: Actor, limit: int = 50) -> list[AuditInfo]:
        """The latest audit entries, newest first (admins only)."""
        self._require_admin(actor, "read the audit log")
        async with self.db.read() as session:
            query = (
                select(AuditEntry)
                .where(AuditEntry.team_id == actor.team_id)
                .order_by(AuditEntry.id.desc())
                .limit(limit)
            )
            return [AuditInfo.of(entry) for entry in await session.scalars(query)]

    # ------------------------------------------------------------------ GPUs

    async def home_team(self, configured: str | None) -> str:
        """The workspace a tool outside Slack (CLI, console) acts in.

        ``configured`` wins. Otherwise the one workspace this database holds GPUs for — so
        `gpubook gpu add` next to a bot serving one Slack workspace lands where Slack sees it —
        or the local default on an empty database. Several workspaces are ambiguous: refused.
        """
        if configured:
            return configured
        async with self.db.read() as session:
            teams = sorted(set(await session.scalars(select(Gpu.team_id).distinct())))
        if len(teams) > 1:
            raise InputError(
                f"This database holds several workspaces ({', '.join(teams)}); "
                "set GPUBOOK_TEAM to the one to act in."
            )
        return teams[0] if teams else DEFAULT_TEAM

    async def list_gpus(self, actor: Actor, *, include_retired: bool = False) -> list[GpuInfo]:
        async with self.db.read() as session:
            return [
                GpuInfo.of(g)
                for g in await self._gpus(session, actor.team_id, include_retired=include_retired)
            ]

    async def add_gpu(
        self, actor: Actor, name: str, size: int | str, description: str = ""
    ) -> GpuInfo:
        self._require_admin(actor, "add GPUs")
        now = self.clock()
        name = validate_gpu_name(name)
        mib = parse_size(size) if isinstance(size, str) else size
        if mib <= 0:
            raise InputError("A GPU's memory must be positive, like `24GB`.", field="memory")
        async with self.db.write() as session:
            existing = await session.scalar(
                select(Gpu).where(Gpu.team_id == actor.team_id, Gpu.name == name)
            )
            if existing is not None:
                hint = " (it is retired; pick another name)" if existing.retired else ""
                raise InputError(f"A GPU named `{name}` already exists{hint}.", field="gpu")
            gpu = Gpu(
                team_id=actor.team_id,
                name=name,
                capacity_mib=mib,
                description=self._clean_text(description, 500, "description"),
                created_at=now,
                updated_at=now,
            )
            session.add(gpu)
            try:
                await session.flush()
            except IntegrityError as exc:  # another admin added the same name a moment ago
                raise InputError(f"A GPU named `{name}` already exists.", field="gpu") from exc
            self._audit(
                session, actor, "gpu_add", None, now, {"name": name, "capacity_mib": mib}, gpu=gpu
            )
            return GpuInfo.of(gpu)

    async def edit_gpu(
        self,
        actor: Actor,
        name: str,
        *,
        new_name: str | None = None,
        size: int | str | None = None,
        description: str | None = None,
        channel_id: str | None = None,
    ) -> GpuInfo:
        """Rename, resize, describe or route a GPU; shrinking below booked memory is refused."""
        self._require_admin(actor, "edit GPUs")
        now = self.clock()
        async with self.db.write() as session:
            gpu = await self._lock_gpu(session, actor.team_id, name)
            details: dict[str, Any] = {}
            if new_name is not None and new_name != gpu.name:
                new_name = validate_gpu_name(new_name)
                clash = await session.scalar(
                    select(Gpu.id).where(Gpu.team_id == actor.team_id, Gpu.name == new_name)
                )
                if clash is not None:
                    raise InputError(f"A GPU named `{new_name}` already exists.", field="gpu")
                details["name"] = [gpu.name, new_name]
                gpu.name = new_name
            if size is not None:
                mib = parse_size(size) if isinstance(size, str) else size
                future = (await self._spans(session, [gpu.id], now, _FOREVER))[gpu.id]
                held = capacity.peak(
                    future, now, max([s.end for s in future] + [now + _SECOND])
                ).mib
                if mib < held:
                    raise PolicyViolation(
                        f"`{gpu.name}` has bookings holding up to {format_size(held)} at once; "
                        f"it can't shrink to {format_size(mib)}. Cancel or move them first."
                    )
                details["capacity_mib"] = [gpu.capacity_mib, mib]
                gpu.capacity_mib = mib
            if description is not None:
                gpu.description = self._clean_text(description, 500, "description")
                details["description"] = gpu.description
            if channel_id is not None:
                gpu.channel_id = channel_id or None
                details["channel_id"] = gpu.channel_id
            gpu.updated_at = now
            self._audit(session, actor, "gpu_edit", None, now, details, gpu=gpu)
            return GpuInfo.of(gpu)

    async def retire_gpu(
        self, actor: Actor, name: str, *, cancel_future: bool = False
    ) -> list[BookingInfo]:
        """Retire a GPU. With future bookings it is refused unless ``cancel_future``: then they
        are cancelled (and their owners told) and returned."""
        self._require_admin(actor, "retire GPUs")
        now = self.clock()
        async with self.db.write() as session:
            gpu = await self._lock_gpu(session, actor.team_id, name)
            pending = await self._holding(session, gpu.id, now, _FOREVER)
            if pending and not cancel_future:
                raise PolicyViolation(
                    f"`{gpu.name}` still has {len(pending)} upcoming or active booking(s). "
                    "Wait until they end, or retire it with the cancel-future option "
                    f"(`/gpubook admin gpu retire {gpu.name} cancel-future`, or `--cancel-future` "
                    "on the command line): running bookings end now, later ones are cancelled, "
                    "and their owners are told.",
                    field="gpu",
                )
            for booking in pending:
                if booking.status == BookingStatus.ACTIVE:
                    await self._end_early(session, actor, booking, now, "retired")
                else:
                    await self._cancel(session, actor, booking, now, reason="retired")
            gpu.retired, gpu.updated_at = True, now
            self._audit(
                session,
                actor,
                "gpu_retire",
                None,
                now,
                {"cancelled": [b.id for b in pending]},
                gpu=gpu,
            )
            return [BookingInfo.of(b) for b in pending]

    async def set_channel(self, actor: Actor, channel_id: str, *, gpu: str | None = None) -> None:
        """Route notifications of one GPU, or of the whole workspace, to ``channel_id``."""
        self._require_admin(actor, "set the notification channel")
        if gpu is not None:
            await self.edit_gpu(actor, gpu, channel_id=channel_id)
            return
        now = self.clock()
        async with self.db.write() as session:
            workspace = await session.get(Workspace, actor.team_id, with_for_update=True)
            if workspace is None:
                session.add(Workspace(team_id=actor.team_id, channel_id=channel_id, updated_at=now))
            else:
                workspace.channel_id, workspace.updated_at = channel_id, now
            self._audit(session, actor, "set_channel", None, now, {"channel_id": channel_id})

    # ------------------------------------------------------------------ rules

    def _require_admin(self, actor: Actor, what: str) -> None:
        if not self.is_admin(actor):
            raise PermissionDenied(
                f"Only gpubook admins can {what}. Ask one of your workspace admins."
            )

    def _require_owner(self, actor: Actor, booking: Booking, verb: str) -> None:
        if booking.user_id != actor.user_id and not self.is_admin(actor):
            raise PermissionDenied(
                f"Booking #{booking.id} belongs to <@{booking.user_id}>; only they or an admin can "
                f"{verb} it. Ask them, or see your own with `/gpubook list`."
            )

    @staticmethod
    def _require_holding(booking: Booking, verb: str) -> None:
        if booking.status not in HOLDING_STATUSES:
            raise InvalidState(
                f"Booking #{booking.id} is {booking.status.value}, so it can't be {_PAST[verb]}. "
                "Make a new booking instead."
            )

    def _clean_task(self, task: str) -> str:
        return self._clean_text(task, self.policy.max_task_chars, "task", required=True)

    @staticmethod
    def _clean_text(text: str, limit: int, what: str, *, required: bool = False) -> str:
        text = _CONTROL.sub(" ", text or "").strip()
        text = re.sub(r" {2,}", " ", text)
        if required and not text:
            raise InputError(f"Give the {what} a name, like `fine-tune llama`.", field=what)
        if len(text) > limit:
            raise InputError(
                f"The {what} is {len(text):,} characters long; keep it to {limit} or fewer.",
                field=what,
            )
        return text

    def _check_window(
        self, start: datetime, end: datetime, now: datetime, tz: tzinfo
    ) -> tuple[datetime, datetime]:
        """Validate a new window; a start less than a minute ago counts as now.

        "Now" is cut to the whole second, so a booking made "now" has an end that survives a
        round trip through a form showing its duration in whole seconds.
        """
        _require_aware(start, end)
        if start < now - self.policy.past_grace:
            raise InputError(
                f"That start is in the past ({format_time(start, tz, now)} "
                f"{zone_label(tz, start)}); pick a time from now on, or `now`.",
                field="start",
            )
        if start < now:
            start = now.replace(microsecond=0)
        self._check_end(start, end, now)
        return start, end

    def _check_end(self, start: datetime, end: datetime, now: datetime) -> None:
        _require_aware(start, end)
        if end <= start:
            raise InputError(
                "The end must be after the start; give a later end or a duration like `2h`.",
                field="end",
            )
        if end <= now:
            raise InputError("That end is already past; give an end later than now.", field="end")
        self._check_length(start, end)

    def _check_length(self, start: datetime, end: datetime) -> None:
        length = end - start
        if length < self.policy.min_duration:
            raise PolicyViolation(
                f"Bookings last at least {format_duration(self.policy.min_duration)}; "
                f"this one is {format_duration(length)}. Book a longer window.",
                field="duration",
            )
        if length > self.policy.max_duration:
            raise PolicyViolation(
                f"Bookings last at most {format_duration(self.policy.max_duration)}; this one is "
                f"{format_duration(length)}. Split it into shorter bookings or ask an admin.",
                field="duration",
            )

    def _check_advance(self, start: datetime, now: datetime) -> None:
        if start - now > self.policy.max_advance:
            raise PolicyViolation(
                f"Bookings can start at most {format_duration(self.policy.max_advance)} ahead; "
                "pick an earlier start.",
                field="start",
            )

    @staticmethod
    def _refuse_percentage_without_gpu(memory: int | str) -> None:
        """Half of *which* card? Across several GPUs a percentage is a different size on each."""
        if isinstance(memory, str) and memory.strip().endswith("%"):
            raise InputError(
                "A percentage needs a specific GPU; across GPUs, give the memory like `20GB`.",
                field="memory",
            )

    @staticmethod
    def _memory(memory: int | str, capacity_mib: int | None) -> int:
        """MiB from an int or the text typed (a percentage is of ``capacity_mib``)."""
        mib = parse_size(memory, capacity_mib=capacity_mib) if isinstance(memory, str) else memory
        if mib <= 0:
            raise InputError("Ask for a positive amount of memory, like `8GB`.", field="memory")
        return mib

    async def _check_fits(
        self,
        session: AsyncSession,
        actor: Actor,
        gpu: Gpu,
        mib: int,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        exclude: int | None = None,
    ) -> None:
        """Raise CapacityError (with the numbers and suggestions) unless ``mib`` fits on ``gpu``."""
        spans = (await self._spans(session, [gpu.id], start, end, exclude=exclude))[gpu.id]
        peak = capacity.peak(spans, start, end)
        if peak.mib + mib <= gpu.capacity_mib:
            return
        duration = end - start
        latest = start + self.policy.search_horizon
        spans = (await self._spans(session, [gpu.id], start, latest + duration, exclude=exclude))[
            gpu.id
        ]
        at = capacity.earliest_fit(spans, gpu.capacity_mib, mib, duration, start, latest)
        same = None if at is None else SuggestedSlot(gpu.name, at, at + duration, mib)
        other = await self._alternative(session, actor.team_id, gpu.id, mib, start, duration, same)
        raise CapacityError(
            self._capacity_message(actor, gpu, mib, start, end, peak, same, other, now),
            gpu_name=gpu.name,
            capacity_mib=gpu.capacity_mib,
            peak_mib=peak.mib,
            requested_mib=mib,
            suggestion=same,
            alternative=other,
        )

    async def _alternative(
        self,
        session: AsyncSession,
        team_id: str,
        gpu_id: int | None,
        mib: int,
        start: datetime,
        duration: timedelta,
        beat: SuggestedSlot | None,
    ) -> SuggestedSlot | None:
        """The soonest window on another GPU, if it is sooner than ``beat``."""
        others = [g for g in await self._gpus(session, team_id) if g.id != gpu_id]
        if not others:
            return None
        latest = start + self.policy.search_horizon
        spans = await self._spans(session, [g.id for g in others], start, latest + duration)
        loads = [capacity.GpuLoad(g, g.capacity_mib, spans[g.id]) for g in others]
        placement = capacity.best_placement(loads, mib, duration, start, latest)
        if placement is None or (beat is not None and placement.start >= beat.start):
            return None
        return SuggestedSlot(placement.key.name, placement.start, placement.end, mib)

    async def _place(
        self,
        session: AsyncSession,
        actor: Actor,
        memory: int | str,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> tuple[Gpu, int]:
        """Pick the best-fitting GPU for the window, deciding under the lock of every candidate.

        The candidates (GPUs where the request fits by an unlocked read) are locked together in
        id order — the order every other multi-GPU lock takes — so two placements, or a
        placement and the lifecycle sweep, can wait for each other but never deadlock. The
        choice is then made again from what the locked rows say.
        """
        self._refuse_percentage_without_gpu(memory)
        mib = self._memory(memory, None)
        gpus = await self._gpus(session, actor.team_id)
        if not gpus:
            raise NotFound(NO_GPUS)
        seen = await self._spans(session, [g.id for g in gpus], start, end)
        candidates = sorted(
            (g.id for g in gpus if capacity.fits(seen[g.id], g.capacity_mib, mib, start, end)),
        )
        if candidates:
            await session.execute(
                select(Gpu.id).where(Gpu.id.in_(candidates)).order_by(Gpu.id).with_for_update()
            )
            locked = [g for g in gpus if g.id in candidates]
            spans = await self._spans(session, candidates, start, end)
            loads = [capacity.GpuLoad(g, g.capacity_mib, spans[g.id]) for g in locked]
            placement = capacity.best_placement(loads, mib, end - start, start, start)
            if placement is not None:
                return placement.key, mib
        soonest = await self._alternative(
            session, actor.team_id, None, mib, start, end - start, None
        )
        when = (
            f" The soonest window is on `{soonest.gpu_name}`, "
            f"{format_window(soonest.start, soonest.end, actor.tz, now)} {zone_label(actor.tz, soonest.start)}."
            if soonest
            else " Nothing fits within the next "
            f"{format_duration(self.policy.search_horizon)}; ask for less memory or a shorter window."
        )
        raise CapacityError(
            f"No GPU has {format_size(mib)} free for "
            f"{format_window(start, end, actor.tz, now)} {zone_label(actor.tz, start)}.{when}",
            gpu_name="any",
            capacity_mib=0,
            peak_mib=0,
            requested_mib=mib,
            suggestion=soonest,
        )

    def _capacity_message(
        self,
        actor: Actor,
        gpu: Gpu,
        mib: int,
        start: datetime,
        end: datetime,
        peak: capacity.Peak,
        same: SuggestedSlot | None,
        other: SuggestedSlot | None,
        now: datetime,
    ) -> str:
        tz = actor.tz
        zone = zone_label(tz, start)
        if mib > gpu.capacity_mib:
            text = (
                f"`{gpu.name}` has {format_size(gpu.capacity_mib)} in all; you asked for "
                f"{format_size(mib)}. Ask for at most {format_size(gpu.capacity_mib)}"
                + (" or use a bigger GPU." if other else ".")
            )
        else:
            free = gpu.capacity_mib - peak.mib
            text = (
                f"Not enough memory on `{gpu.name}` for {format_window(start, end, tz, now)} {zone}: "
                f"{format_size(peak.mib)} of {format_size(gpu.capacity_mib)} already held at the peak "
                f"({format_window(peak.start, peak.end, tz, now)}), {format_size(free)} free, "
                f"{format_size(mib)} asked."
            )
        if same is not None:
            text += f" Earliest fit on `{gpu.name}`: {format_window(same.start, same.end, tz, now)} {zone}."
        if other is not None:
            lead = "Sooner on" if same is not None else "It fits on"
            text += f" {lead} `{other.gpu_name}`: {format_window(other.start, other.end, tz, now)} {zone}."
        if same is None and other is None:
            text += f" Nothing fits in the next {format_duration(self.policy.search_horizon)}."
        return text

    # ------------------------------------------------------------------ queries

    @staticmethod
    def _bookings_query(team_id: str) -> Select[tuple[Booking]]:
        return select(Booking).where(Booking.team_id == team_id)

    async def _gpus(
        self, session: AsyncSession, team_id: str, *, include_retired: bool = False
    ) -> list[Gpu]:
        query = select(Gpu).where(Gpu.team_id == team_id)
        if not include_retired:
            query = query.where(Gpu.retired.is_(False))
        return list(await session.scalars(query.order_by(Gpu.name)))

    async def _gpu(
        self, session: AsyncSession, team_id: str, name: str, *, lock: bool = False
    ) -> Gpu:
        query = select(Gpu).where(Gpu.team_id == team_id, Gpu.name == name.strip().lower())
        if lock:
            query = query.with_for_update()
        gpu = await session.scalar(query)
        if gpu is None or gpu.retired:
            names = [g.name for g in await self._gpus(session, team_id)]
            known = (
                f" Known GPUs: {', '.join(f'`{n}`' for n in names)}."
                if names
                else " There are no GPUs yet."
            )
            state = "is retired" if gpu is not None else "doesn't exist"
            raise NotFound(f"GPU `{name}` {state}.{known} See `/gpubook status`.", field="gpu")
        return gpu

    async def _lock_gpu(self, session: AsyncSession, team_id: str, name: str) -> Gpu:
        """The GPU row, locked until the transaction ends: the per-GPU capacity lock."""
        return await self._gpu(session, team_id, name, lock=True)

    async def _booking(self, session: AsyncSession, team_id: str, booking_id: int) -> Booking:
        booking = await session.scalar(
            self._bookings_query(team_id).where(Booking.id == booking_id)
        )
        if booking is None:
            raise NotFound(f"There is no booking #{booking_id}. See yours with `/gpubook list`.")
        return booking

    async def _locked_booking(
        self, session: AsyncSession, actor: Actor, booking_id: int, verb: str
    ) -> Booking:
        """The booking with its GPU locked, after checking the actor may ``verb`` it."""
        booking = await self._booking(session, actor.team_id, booking_id)
        self._require_owner(actor, booking, verb)
        await session.execute(select(Gpu.id).where(Gpu.id == booking.gpu_id).with_for_update())
        await session.refresh(booking)
        return booking

    async def _holding(
        self,
        session: AsyncSession,
        gpu_id: int,
        start: datetime,
        end: datetime,
        *,
        exclude: int | None = None,
        include_finished: bool = False,
    ) -> list[Booking]:
        """Bookings on ``gpu_id`` overlapping ``[start, end)`` that hold memory (or held it)."""
        statuses = list(HOLDING_STATUSES) + ([BookingStatus.COMPLETED] if include_finished else [])
        query = select(Booking).where(
            Booking.gpu_id == gpu_id,
            Booking.status.in_(statuses),
            Booking.end_at > start,
            Booking.start_at < end,
        )
        if exclude is not None:
            query = query.where(Booking.id != exclude)
        return list((await session.scalars(query.order_by(Booking.start_at))).unique())

    async def _spans(
        self,
        session: AsyncSession,
        gpu_ids: Iterable[int],
        start: datetime,
        end: datetime,
        *,
        exclude: int | None = None,
    ) -> dict[int, list[capacity.Span]]:
        """Memory held on each GPU by bookings overlapping ``[start, end)``, as capacity spans.

        Selects three columns rather than whole rows: this query runs inside every capacity check.
        """
        ids = list(gpu_ids)
        grouped: dict[int, list[capacity.Span]] = {i: [] for i in ids}
        if not ids:
            return grouped
        query = select(Booking.gpu_id, Booking.start_at, Booking.end_at, Booking.memory_mib).where(
            Booking.gpu_id.in_(ids),
            Booking.status.in_(list(HOLDING_STATUSES)),
            Booking.end_at > start,
            Booking.start_at < end,
        )
        if exclude is not None:
            query = query.where(Booking.id != exclude)
        for gpu_id, s, e, mib in await session.execute(query):
            grouped[gpu_id].append(capacity.Span(s, e, mib))
        return grouped

    async def _channel(
        self, session: AsyncSession, team_id: str, gpu_channel: str | None
    ) -> str | None:
        return await notification_channel(
            session, team_id, gpu_channel, self.config.default_channel
        )

    # ------------------------------------------------------------------ audit and outbox

    @staticmethod
    def _booking_details(booking: Booking) -> dict[str, Any]:
        return {
            "gpu": booking.gpu.name,
            "user": booking.user_id,
            "task": booking.task,
            "memory_mib": booking.memory_mib,
            "start": booking.start_at.isoformat(),
            "end": booking.end_at.isoformat(),
        }

    @staticmethod
    def _audit(
        session: AsyncSession,
        actor: Actor,
        action: str,
        booking: Booking | None,
        now: datetime,
        details: dict[str, Any],
        *,
        gpu: Gpu | None = None,
    ) -> None:
        session.add(audit_row(actor.team_id, actor.user_id, action, now, details, booking, gpu))

    async def _notify(
        self,
        session: AsyncSession,
        kind: str,
        booking: Booking,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Queue a channel message about ``booking`` (skipped when no channel is configured)."""
        channel = await self._channel(session, booking.team_id, booking.gpu.channel_id)
        if channel:
            session.add(outbox_row(kind, booking, channel, now, details))

    @staticmethod
    def _dm_owner(
        session: AsyncSession, kind: str, booking: Booking, now: datetime, details: dict[str, Any]
    ) -> None:
        session.add(outbox_row(kind, booking, booking.user_id, now, details))

    def _dm_if_admin_change(
        self,
        session: AsyncSession,
        actor: Actor,
        booking: Booking,
        now: datetime,
        action: str,
        *,
        reason: str | None = None,
    ) -> None:
        """Tell the owner when someone else (an admin) changed their booking."""
        if actor.user_id != booking.user_id:
            details = {"action": action, "by": actor.user_id}
            if reason:
                details["reason"] = reason
            self._dm_owner(session, "changed", booking, now, details)


_PAST = {"edit": "edited", "extend": "extended", "release": "released", "cancel": "cancelled"}


async def notification_channel(
    session: AsyncSession, team_id: str, gpu_channel: str | None, default_channel: str | None
) -> str | None:
    """Where a booking's channel messages go: the GPU's channel, else the workspace's (set by an
    admin), else the configured default; ``None`` means nobody is told.

    Module-level so the lifecycle sweep routes its messages exactly like the service does."""
    if gpu_channel:
        return gpu_channel
    workspace_channel = await session.scalar(
        select(Workspace.channel_id).where(Workspace.team_id == team_id)
    )
    return workspace_channel or default_channel


def outbox_row(
    kind: str, booking: Booking, channel: str, now: datetime, details: dict[str, Any] | None
) -> Notification:
    """A notification owed for ``booking``, due now (the lifecycle sweep writes these too)."""
    return Notification(
        team_id=booking.team_id,
        kind=kind,
        booking_id=booking.id,
        channel=channel,
        details=details or {},
        created_at=now,
        due_at=now,
    )


def audit_row(
    team_id: str,
    actor: str,
    action: str,
    now: datetime,
    details: dict[str, Any],
    booking: Booking | None = None,
    gpu: Gpu | None = None,
) -> AuditEntry:
    """One audit entry: who did what to which booking or GPU, when (the service and the
    lifecycle sweep both record through here)."""
    return AuditEntry(
        team_id=team_id,
        at=now,
        actor=actor,
        action=action,
        booking_id=booking.id if booking else None,
        gpu_id=gpu.id if gpu else (booking.gpu_id if booking else None),
        details=details,
    )


def _held_mib_s(booking: Booking, start: datetime, end: datetime) -> int:
    """MiB·seconds ``booking`` held inside ``[start, end)``: exact integers, no float GB·h."""
    overlap = min(booking.end_at, end) - max(booking.start_at, start)
    return booking.memory_mib * int(overlap.total_seconds())


def _require_aware(*values: datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the service works in aware UTC")


def validate_gpu_name(name: str) -> str:
    """A new GPU's name, normalised: short, plain, and never a word the commands read as
    something else (``any``, a size, a day or a time), or `/gpubook book` and `calendar` would
    misread it. Every interface adds GPUs through the service, so the rule lives here once."""
    name = name.strip().lower()
    if not _GPU_NAME.match(name) or _reads_as_other_word(name):
        raise InputError(
            f"`{name}` can't be a GPU name: use lower-case letters, digits, `.`, `_` and `-` "
            "(up to 32), like `a100-3`, and not a word the commands use, such as `any`, "
            "`week`, a size, a day or a time.",
            field="gpu",
        )
    return name


def _reads_as_other_word(name: str) -> bool:
    """Whether ``name`` would be read as a size, a day or a time where a GPU name may stand."""
    if name in RESERVED_GPU_NAMES:
        return True
    now = datetime(2026, 1, 1, tzinfo=UTC)  # any date: only whether the word parses matters
    readers = (
        lambda: parse_size(name, capacity_mib=1024),
        lambda: parse_day(name, now=now, tz=UTC),
        lambda: parse_when(name, now=now, tz=UTC),
    )
    for read in readers:
        try:
            read()
        except (InputError, ValueError):
            continue
        return True
    return False
