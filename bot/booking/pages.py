"""A page of bookings, read by keyset straight into snapshots.

`list`, `list all` and the App Home read a page on every call — the Home after every change its
owner makes — so a page is one Core statement per *shape* (which filters are given), built once
and reused with bound parameters, whose rows become :class:`BookingInfo` directly. Building the
statement per call (and its cache key), and loading ORM entities with their GPU and series,
cost more Python than the database's answer for a page of twenty.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.snapshots import booking_snapshot
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus
from storage.models import Booking, BookingSeries, Gpu

#: A position in a list ordered by (start, id): the last booking of the page before.
Cursor = tuple[datetime, int]

_B = Booking.__table__.c
_G = Gpu.__table__.c
_S = BookingSeries.__table__.c
_COLUMNS = (
    _B.id,
    _G.name,
    _G.capacity_mib,
    _B.user_id,
    _B.task,
    _B.memory_mib,
    _B.start_at,
    _B.end_at,
    _B.original_end_at,
    _B.status,
    _B.end_reason,
    _B.created_by,
    _B.created_at,
    _B.series_id,
    _S.rule,
    _B.flexible,
)
_FROM = Booking.__table__.join(Gpu.__table__, _G.id == _B.gpu_id).outerjoin(
    BookingSeries.__table__, _S.id == _B.series_id
)


@functools.cache
def _statement(
    statuses: tuple[BookingStatus, ...],
    by_user: bool,
    by_gpu: bool,
    windowed: bool,
    after: bool,
    limited: bool,
) -> Select[Any]:
    """The page's statement for one shape. A limited page reads each status on its own, from an
    index on (team, [user,] status, start, id) that yields it in order from the cursor on, so
    the database touches at most ``limit`` rows per status — never the bookings of earlier
    pages, nor sorts all of them."""
    wanted: list[ColumnElement[bool]] = [_B.team_id == bindparam("team")]
    if by_user:
        wanted.append(_B.user_id == bindparam("user"))
    if by_gpu:
        wanted.append(_B.gpu_id == bindparam("gpu"))
    if windowed:
        wanted += [_B.start_at < bindparam("until"), _B.end_at > bindparam("since")]
    if after:
        cursor = tuple_(
            bindparam("after_start", type_=_B.start_at.type),
            bindparam("after_id", type_=_B.id.type),
        )
        wanted.append(tuple_(_B.start_at, _B.id) > cursor)
    order = (_B.start_at, _B.id)
    page = select(*_COLUMNS).select_from(_FROM)
    if not limited:
        return page.where(*wanted, _B.status.in_(list(statuses))).order_by(*order)
    arms = [
        select(_B.id).where(*wanted, _B.status == s).order_by(*order).limit(bindparam("limit"))
        for s in statuses
    ]
    ids = union_all(*(select(arm.subquery().c.id) for arm in arms))
    return page.where(_B.id.in_(ids)).order_by(*order).limit(bindparam("limit"))


async def booking_page(
    session: AsyncSession,
    team_id: str,
    statuses: Sequence[BookingStatus],
    *,
    user_id: str | None = None,
    gpu_id: int | None = None,
    window: tuple[datetime, datetime] | None = None,
    after: Cursor | None = None,
    limit: int | None = None,
) -> list[BookingInfo]:
    """Bookings in ``statuses`` ordered by (start, id), from just after ``after``, at most ``limit``
    (their ``series_left`` not filled in: that is the list's to count)."""
    query = _statement(
        tuple(statuses),
        user_id is not None,
        gpu_id is not None,
        window is not None,
        after is not None,
        limit is not None,
    )
    values: dict[str, Any] = {"team": team_id, "user": user_id, "gpu": gpu_id, "limit": limit}
    if window is not None:
        values["since"], values["until"] = window
    if after is not None:
        values["after_start"], values["after_id"] = after
    rows = await session.execute(query, values)
    return [booking_snapshot(r, r.name, r.capacity_mib, r.rule) for r in rows]


async def series_counts(
    session: AsyncSession, series_ids: set[int], statuses: Sequence[BookingStatus]
) -> dict[int, int]:
    """How many bookings in ``statuses`` each series has: a list shows a series once, with its
    true count, though a page holds only some of its bookings."""
    if not series_ids:
        return {}
    rows = await session.execute(
        select(Booking.series_id, func.count())
        .where(Booking.series_id.in_(series_ids), Booking.status.in_(list(statuses)))
        .group_by(Booking.series_id)
    )
    return {series_id: count for series_id, count in rows.all()}
