"""The reads every part of the service shares, as functions of an open session.

Each query selects only what its caller needs (``spans`` reads four columns, not rows) because
they run inside the capacity transactions. ``lock_gpu`` is the per-GPU capacity lock: ``SELECT …
FOR UPDATE`` on PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE`` already holds
the database lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import capacity
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.models import DEFAULT_CHANNEL, Booking, Gpu, Workspace


def bookings_of(team_id: str) -> Select[tuple[Booking]]:
    return select(Booking).where(Booking.team_id == team_id)


async def gpus(session: AsyncSession, team_id: str, *, include_retired: bool = False) -> list[Gpu]:
    query = select(Gpu).where(Gpu.team_id == team_id)
    if not include_retired:
        query = query.where(Gpu.retired.is_(False))
    return list(await session.scalars(query.order_by(Gpu.name)))


async def gpu(session: AsyncSession, team_id: str, name: str, *, lock: bool = False) -> Gpu:
    """The GPU called ``name``; unknown or retired ones are refused, naming the known ones."""
    query = select(Gpu).where(Gpu.team_id == team_id, Gpu.name == name.strip().lower())
    if lock:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None or found.retired:
        names = [Quote(g.name) for g in await gpus(session, team_id)]
        known = say(Code.KNOWN_GPUS, names=names) if names else say(Code.NO_GPUS)
        code = Code.GPU_RETIRED if found is not None else Code.GPU_UNKNOWN
        raise NotFound(code, field="gpu", gpu=Quote(name), known=known)
    return found


async def lock_gpu(session: AsyncSession, team_id: str, name: str) -> Gpu:
    """The GPU row, locked until the transaction ends: the per-GPU capacity lock."""
    return await gpu(session, team_id, name, lock=True)


async def lock_gpu_ids(session: AsyncSession, gpu_ids: Iterable[int]) -> None:
    """Lock several GPUs in id order — the order every multi-GPU lock takes, so none deadlock."""
    ids = sorted(set(gpu_ids))
    if ids:
        await session.execute(
            select(Gpu.id).where(Gpu.id.in_(ids)).order_by(Gpu.id).with_for_update()
        )


async def booking(session: AsyncSession, team_id: str, booking_id: int) -> Booking:
    found = await session.scalar(bookings_of(team_id).where(Booking.id == booking_id))
    if found is None:
        raise NotFound(Code.BOOKING_UNKNOWN, id=booking_id)
    return found


async def holding(
    session: AsyncSession,
    gpu_id: int,
    start: datetime,
    end: datetime,
    *,
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
    return list((await session.scalars(query.order_by(Booking.start_at))).unique())


async def spans(
    session: AsyncSession,
    gpu_ids: Iterable[int],
    start: datetime,
    end: datetime,
    *,
    exclude: int | Iterable[int] | None = None,
) -> dict[int, list[capacity.Span]]:
    """Memory held on each GPU by bookings overlapping ``[start, end)``, as capacity spans
    (but for the booking or bookings ``exclude`` names)."""
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
    if isinstance(exclude, int):
        query = query.where(Booking.id != exclude)
    elif exclude is not None:
        query = query.where(Booking.id.not_in(list(exclude)))
    for gpu_id, s, e, mib in await session.execute(query):
        grouped[gpu_id].append(capacity.Span(s, e, mib))
    return grouped


async def booked_in(
    session: AsyncSession,
    team_id: str,
    start: datetime,
    end: datetime,
    user_id: str | None = None,
) -> list[Booking]:
    """Bookings that held (or will hold) memory in ``[start, end)``: all but cancelled ones."""
    query = bookings_of(team_id).where(
        Booking.status != BookingStatus.CANCELLED,
        Booking.start_at < end,
        Booking.end_at > start,
    )
    if user_id is not None:
        query = query.where(Booking.user_id == user_id)
    return list((await session.scalars(query)).unique())


async def notification_channel(session: AsyncSession, team_id: str, gpu_channel: str | None) -> str:
    """Where a booking's channel messages go: the GPU's channel, else the workspace's (set by an
    admin), else :data:`~storage.models.DEFAULT_CHANNEL`, the poster's default (see there)."""
    if gpu_channel:
        return gpu_channel
    workspace_channel = await session.scalar(
        select(Workspace.channel_id).where(Workspace.team_id == team_id)
    )
    return workspace_channel or DEFAULT_CHANNEL
