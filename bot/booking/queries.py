"""The reads every part of the service shares, as functions of an open session.

Each query selects only what its caller needs (``spans`` reads four columns, not rows) because
they run inside the capacity transactions. ``lock_gpu`` is the per-GPU capacity lock: ``SELECT …
FOR UPDATE`` on PostgreSQL; on SQLite the write transaction's ``BEGIN IMMEDIATE`` already holds
the database lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import capacity, queue
from bot.core.errors import NotFound
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.models import DEFAULT_CHANNEL, Booking, Gpu, Workspace


def bookings_of(team_id: str) -> Select[tuple[Booking]]:
    return select(Booking).where(Booking.team_id == team_id)


#: The workspace's GPUs in service by name, as rows of what weighing a request reads of each
#: (:func:`gpu_sizes`).
_GPU_SIZES = (
    select(Gpu.id, Gpu.name, Gpu.capacity_mib)
    .where(Gpu.team_id == bindparam("team"), Gpu.retired.is_(False))
    .order_by(Gpu.name)
)


async def gpu_sizes(session: AsyncSession, team_id: str) -> list[Row[tuple[int, str, int]]]:
    """The workspace's GPUs in service by name: id, name and capacity. A capacity refusal weighs
    its offers against every card: an ORM object for each of a pool of 4,000 cost ~35 ms of the
    event loop a read, and a refusal read them twice (``bench/README.md``, agent_bench)."""
    return list(await session.execute(_GPU_SIZES, {"team": team_id}))


async def gpus(session: AsyncSession, team_id: str, *, include_retired: bool = False) -> list[Gpu]:
    query = select(Gpu).where(Gpu.team_id == team_id)
    if not include_retired:
        query = query.where(Gpu.retired.is_(False))
    return list(await session.scalars(query.order_by(Gpu.name)))


_WORKSPACES = Workspace.__table__.c
_WORKSPACE_CHANNEL = select(_WORKSPACES.channel_id).where(_WORKSPACES.team_id == bindparam("team"))

#: The hot path's statements are built once, with their values as parameters: building one
#: (and its cache key) per call cost about as much as running it on SQLite.
_GPU_NAMED = select(Gpu).where(Gpu.team_id == bindparam("team"), Gpu.name == bindparam("name"))
_GPU_NAMED_LOCKED = _GPU_NAMED.with_for_update()
#: :func:`notification_channel` in SQL, beside the GPU it is for (``nullif``: an empty channel
#: counts as none there too).
_GPU_CHANNEL = func.coalesce(
    func.nullif(Gpu.channel_id, ""),
    func.nullif(
        select(_WORKSPACES.channel_id).where(_WORKSPACES.team_id == Gpu.team_id).scalar_subquery(),
        "",
    ),
    DEFAULT_CHANNEL,
)
_GPU_NAMED_LOCKED_WITH_CHANNEL = _GPU_NAMED.add_columns(_GPU_CHANNEL).with_for_update(of=Gpu)


async def gpu(session: AsyncSession, team_id: str, name: str, *, lock: bool = False) -> Gpu:
    """The GPU called ``name``; unknown or retired ones are refused, naming the known ones."""
    found = await session.scalar(
        _GPU_NAMED_LOCKED if lock else _GPU_NAMED,
        {"team": team_id, "name": name.strip().lower()},
    )
    return await _usable(session, team_id, name, found)


async def _usable(session: AsyncSession, team_id: str, name: str, found: Gpu | None) -> Gpu:
    """``found``, the GPU named ``name``, unless it is unknown or retired: then the refusal
    naming the known ones."""
    if found is None or found.retired:
        names = [Quote(g.name) for g in await gpus(session, team_id)]
        known = say(Code.KNOWN_GPUS, names=names) if names else say(Code.NO_GPUS)
        code = Code.GPU_RETIRED if found is not None else Code.GPU_UNKNOWN
        raise NotFound(code, field="gpu", gpu=Quote(name), known=known)
    return found


async def lock_gpu(session: AsyncSession, team_id: str, name: str) -> Gpu:
    """The GPU row, locked until the transaction ends: the per-GPU capacity lock."""
    return await gpu(session, team_id, name, lock=True)


async def lock_gpu_with_channel(session: AsyncSession, team_id: str, name: str) -> tuple[Gpu, str]:
    """:func:`lock_gpu`, and where the GPU's channel messages go (:func:`notification_channel`),
    read by the same statement: a booking announced on its GPU pays for no second one."""
    row = (
        await session.execute(
            _GPU_NAMED_LOCKED_WITH_CHANNEL, {"team": team_id, "name": name.strip().lower()}
        )
    ).first()
    found, channel = (None, DEFAULT_CHANNEL) if row is None else row
    return await _usable(session, team_id, name, found), channel


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


def unsearched(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column``, wrapped so that no planner searches an index by it. A window is read either
    by its ends (every booking ending after it starts: the window and all later ones) or by its
    starts (every booking starting before it ends: all earlier ones); the caller knows which
    side is short, and without statistics SQLite may pick the other."""
    return func.coalesce(column, column)


#: Of the table, not the mapped class: a select of ORM attributes pays for the ORM's
#: statement handling per call, though it returns plain rows all the same.
_BOOKINGS = Booking.__table__.c
_SPANS = select(_BOOKINGS.gpu_id, _BOOKINGS.start_at, _BOOKINGS.end_at, _BOOKINGS.memory_mib).where(
    _BOOKINGS.gpu_id.in_(bindparam("ids", expanding=True)),
    _BOOKINGS.status.in_(list(HOLDING_STATUSES)),
    # Searched by start: the bookings holding memory that start before the window ends are
    # those under way and those of the window. By end, every later booking would be read
    # (which SQLite chose for many GPUs at once).
    unsearched(_BOOKINGS.end_at) > bindparam("start"),
    _BOOKINGS.start_at < bindparam("end"),
)


async def spans(
    session: AsyncSession,
    gpu_ids: Iterable[int],
    start: datetime,
    end: datetime,
    *,
    exclude: int | Iterable[int] | None = None,
    since: datetime | None = None,
) -> dict[int, list[capacity.Span]]:
    """Memory held on each GPU by bookings overlapping ``[start, end)``, as capacity spans
    (but for the booking or bookings ``exclude`` names); with ``since``, only those starting
    at or after it (a search reading further ahead adds what it has not read yet)."""
    ids = list(gpu_ids)
    grouped: dict[int, list[capacity.Span]] = {i: [] for i in ids}
    if not ids:
        return grouped
    query = _SPANS
    if since is not None:
        query = query.where(_BOOKINGS.start_at >= since)
    if isinstance(exclude, int):
        query = query.where(_BOOKINGS.id != exclude)
    elif exclude is not None:
        query = query.where(_BOOKINGS.id.not_in(list(exclude)))
    for gpu_id, s, e, mib in await session.execute(query, {"ids": ids, "start": start, "end": end}):
        grouped[gpu_id].append(capacity.Span(s, e, mib))
    return grouped


async def current_spans(
    session: AsyncSession, team_id: str, now: datetime, gpu_ids: Sequence[int] | None = None
) -> dict[int, list[capacity.Span]]:
    """Memory held at ``now``, per GPU of the workspace holding any (or of ``gpu_ids``): the
    bookings under way (few, whatever the history).

    Read as the holding bookings that started by ``now`` — per GPU, a range of the (gpu, status,
    start) index that holds only what is under way or overdue for the sweep — and kept if not
    over. The GPUs come from a subquery: the same SQL for any number of them.
    """
    grouped: dict[int, list[capacity.Span]] = {}
    team_gpus = select(Gpu.id).where(Gpu.team_id == team_id)
    if gpu_ids is not None:
        team_gpus = team_gpus.where(Gpu.id.in_(gpu_ids))
    query = select(Booking.gpu_id, Booking.start_at, Booking.end_at, Booking.memory_mib).where(
        Booking.gpu_id.in_(team_gpus),
        Booking.status.in_(list(HOLDING_STATUSES)),
        Booking.start_at <= now,
    )
    for gpu_id, s, e, mib in await session.execute(query):
        if e > now:
            grouped.setdefault(gpu_id, []).append(capacity.Span(s, e, mib))
    return grouped


async def gpus_and_next_starts(
    session: AsyncSession, team_id: str, now: datetime, gpu_ids: Sequence[int] | None = None
) -> list[tuple[Row[Any], datetime | None]]:
    """The workspace's GPUs in service by name (rows of a GPU's columns: a status lists every
    GPU, so no ORM object is built for one), or only those of ``gpu_ids``, each with when its
    next booking after ``now`` starts: per GPU and holding status, one step down the (gpu,
    status, start) index."""

    def first(status: BookingStatus) -> ColumnElement[datetime]:
        return (
            select(Booking.start_at)
            .where(Booking.gpu_id == Gpu.id, Booking.status == status, Booking.start_at > now)
            .order_by(Booking.start_at)
            .limit(1)
            .scalar_subquery()
        )

    columns = (
        Gpu.id,
        Gpu.name,
        Gpu.capacity_mib,
        Gpu.description,
        Gpu.channel_id,
        Gpu.retired,
        Gpu.device_uuid,
    )
    query = (
        select(*columns, *(first(s) for s in HOLDING_STATUSES))
        .where(Gpu.team_id == team_id, Gpu.retired.is_(False))
        .order_by(Gpu.name)
    )
    if gpu_ids is not None:
        query = query.where(Gpu.id.in_(gpu_ids))
    width = len(columns)
    return [
        (row, min((t for t in row[width:] if t is not None), default=None))
        for row in await session.execute(query)
    ]


async def starting_at(session: AsyncSession, instants: dict[int, datetime]) -> dict[int, list[int]]:
    """The memory (MiB) of each holding booking that starts on GPU ``g`` at ``instants[g]``."""
    found: dict[int, list[int]] = {g: [] for g in instants}
    holding = Booking.status.in_(list(HOLDING_STATUSES))
    # Each GPU's terms together, so every one is a step down the (gpu, status, start) index.
    query = select(Booking.gpu_id, Booking.memory_mib).where(
        or_(
            *(
                and_(Booking.gpu_id == g, holding, Booking.start_at == t)
                for g, t in instants.items()
            )
        )
    )
    for gpu_id, mib in await session.execute(query):
        found[gpu_id].append(mib)
    return found


async def upcoming_spans(
    session: AsyncSession, gpu_id: int, now: datetime, limit: int
) -> list[capacity.Span]:
    """The first ``limit`` holding bookings on ``gpu_id`` that start after ``now``, by start."""
    query = (
        select(Booking.start_at, Booking.end_at, Booking.memory_mib)
        .where(
            Booking.gpu_id == gpu_id,
            Booking.status.in_(list(HOLDING_STATUSES)),
            Booking.start_at > now,
        )
        .order_by(Booking.start_at, Booking.id)
        .limit(limit)
    )
    return [capacity.Span(s, e, mib) for s, e, mib in await session.execute(query)]


async def notification_channel(session: AsyncSession, team_id: str, gpu_channel: str | None) -> str:
    """Where a booking's channel messages go: the GPU's channel, else the workspace's (set by an
    admin), else :data:`~storage.models.DEFAULT_CHANNEL`, the poster's default (see there)."""
    if gpu_channel:
        return gpu_channel
    workspace_channel = await session.scalar(_WORKSPACE_CHANNEL, {"team": team_id})
    return workspace_channel or DEFAULT_CHANNEL


async def placements(session: AsyncSession, team_id: str) -> list[queue.Placed]:
    """Every booking of the workspace holding memory, as the queue and watches see it."""
    rows = await session.execute(
        select(
            Booking.id,
            Booking.gpu_id,
            Booking.user_id,
            Booking.start_at,
            Booking.end_at,
            Booking.memory_mib,
        ).where(Booking.team_id == team_id, Booking.status.in_(list(HOLDING_STATUSES)))
    )
    return [queue.Placed(*row) for row in rows]
