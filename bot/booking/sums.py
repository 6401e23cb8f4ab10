"""The statistics' SQL: memory-time and bookings over a window, added up by the database.

Apart from :mod:`bot.booking.queries` because only statistics read this way: over a window of
every workspace's bookings, rather than one card's or one page's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import CompoundSelect, Row, bindparam, case, func, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.queries import unsearched
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus
from storage.expressions import earlier, later, seconds_between
from storage.models import Booking
from storage.types import UTCDateTime

#: Bookings and MiB·seconds, per GPU id and per user id.
Totals = tuple[dict[int, tuple[int, int]], dict[str, tuple[int, int]]]


async def booked_totals(
    session: AsyncSession,
    team_id: str,
    start: datetime,
    end: datetime,
    user_id: str | None = None,
    *,
    count_from: datetime | None = None,
    starting_from: datetime | None = None,
) -> Totals:
    """Per GPU and per user: how many bookings held memory in ``[start, end)`` (all but cancelled
    ones) and the MiB·seconds they held inside it — summed by the database, not from rows.

    Each booking counts the whole seconds of its overlap, its ends cut to the second
    (:class:`~storage.expressions.seconds_between`), so a window's sums are those of its pieces.
    With ``count_from``, only the bookings starting then or later are counted (all still add
    their memory-time): a window added up piece by piece counts each booking once, in the
    piece where it starts, or the first piece when it started before the window.
    ``starting_from`` says no booking that matters starts earlier (the window's bookings are
    known to be shorter than that): the search then runs over the starts, from there to the
    window's end (``ix_bookings_team_start``), rather than over every end after the start.
    The bookings are added up once per (GPU, user), and those sums once more per GPU and per
    user, so what comes back is a row per GPU and per user, however many pairs there are.
    """
    query = _totals_query(user_id is not None, count_from is not None, starting_from is not None)
    params = {
        "team_id": team_id,
        "start": start,
        "end": end,
        "user_id": user_id,
        "count_from": count_from,
        "starting_from": starting_from,
    }
    per_gpu: dict[int, tuple[int, int]] = {}
    per_user: dict[str, tuple[int, int]] = {}
    for gpu_id, user, count, held in await session.execute(query, params):
        if user is None:
            per_gpu[gpu_id] = (int(count), int(held))
        else:
            per_user[user] = (int(count), int(held))
    return per_gpu, per_user


@cache
def _totals_query(by_user: bool, counting_from: bool, starting: bool) -> CompoundSelect:
    """The statement of :func:`booked_totals` for one combination of its options, its values as
    bound parameters: built once, since building it costs more than the database's answer over
    a week (the App Home reads a week's sum on every rebuild)."""
    team_id, user_id = bindparam("team_id"), bindparam("user_id")
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    count_from = bindparam("count_from", type_=UTCDateTime())
    starting_from = bindparam("starting_from", type_=UTCDateTime())
    overlap = seconds_between(later(Booking.start_at, start), earlier(Booking.end_at, end))
    counted = (
        func.sum(case((Booking.start_at >= count_from, 1), else_=0))
        if counting_from
        else func.count()
    )
    pairs = select(
        Booking.gpu_id,
        Booking.user_id,
        counted.label("bookings"),
        func.sum(Booking.memory_mib * overlap).label("held"),
    )
    if starting:
        pairs = pairs.where(
            Booking.end_at > start, Booking.start_at >= starting_from, Booking.start_at < end
        )
    else:
        pairs = pairs.where(Booking.end_at > start, unsearched(Booking.start_at) < end)
    pairs = pairs.where(Booking.team_id == team_id, Booking.status != BookingStatus.CANCELLED)
    if by_user:
        pairs = pairs.where(Booking.user_id == user_id)
    sums = pairs.group_by(Booking.gpu_id, Booking.user_id).cte("pairs")
    tally = (func.sum(sums.c.bookings), func.sum(sums.c.held))
    return union_all(
        select(sums.c.gpu_id, null().label("user_id"), *tally).group_by(sums.c.gpu_id),
        select(null(), sums.c.user_id, *tally).group_by(sums.c.user_id),
    )


async def held_rows(
    session: AsyncSession, team_id: str, start: datetime, end: datetime, batch: int
) -> AsyncIterator[Sequence[Row[tuple[int, str, datetime, datetime, int]]]]:
    """(GPU, user, start, end, MiB) of every booking that held memory in ``[start, end)``,
    from the statistics' covering index, ``batch`` rows at a time: tens of thousands of rows
    decoded at once would hold the event loop for a second."""
    result = await session.stream(
        select(
            Booking.gpu_id, Booking.user_id, Booking.start_at, Booking.end_at, Booking.memory_mib
        ).where(
            Booking.team_id == team_id,
            Booking.status != BookingStatus.CANCELLED,
            unsearched(Booking.start_at) < end,
            Booking.end_at > start,
        )
    )
    async for rows in result.partitions(batch):
        yield rows


async def earliest_holding_start(session: AsyncSession, team_id: str) -> datetime | None:
    """When the earliest booking still holding memory (upcoming or active) starts: everything
    before it has ended for good. One index step per status."""
    firsts = union_all(
        *(
            select(func.min(Booking.start_at).label("first")).where(
                Booking.team_id == team_id, Booking.status == status
            )
            for status in HOLDING_STATUSES
        )
    ).subquery()
    return await session.scalar(select(func.min(firsts.c.first)))
