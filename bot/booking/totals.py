"""Statistics over a long window from the days in it that can no longer change.

`admin stats` over 30 days adds up every booking of those days: about 27,000 at 200 GPUs and
100,000 bookings, 90–120 ms on SQLite however the sum is written. Yet a day that is over, with
every booking touching it ended, never changes again: bookings cannot start in the past (a
minute's grace at most), and an ended or cancelled booking is never edited. So such a *settled*
UTC day is added up once (one SQL sum over it) and kept; a window is then its settled whole days
from memory plus, from the database, the piece before the first of them and the piece after the
last (today and whatever is still under way).

Pieces add up exactly: memory-time counts whole seconds with both ends cut to the second
(:class:`storage.expressions.seconds_between`) and days begin on whole seconds; a booking is
counted in the piece where it starts, or the first piece when it started before the window
(:func:`bot.booking.queries.booked_totals` with ``count_from``). The days kept belong to this
process and are immutable facts, so replicas need not agree on what they keep; at most
:data:`MAX_DAYS` are kept, the least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries

K = TypeVar("K")
DAY = timedelta(days=1)
#: Settled days kept per process (a year of one workspace and then some).
MAX_DAYS = 400
#: A day counts as settled only this long after it ends, beyond a booking's grace for a start
#: in the past, so no booking made late can still reach into it.
SETTLE_MARGIN = timedelta(hours=1)
#: A window with fewer settled days than this is summed directly: nothing to gain.
MIN_SETTLED_DAYS = 2


class SettledDays:
    """The totals of settled days, by workspace and UTC date, least recently used dropped."""

    def __init__(self, max_days: int = MAX_DAYS) -> None:
        self._days: OrderedDict[tuple[str, date], queries.Totals] = OrderedDict()
        self._max = max_days

    def __len__(self) -> int:
        return len(self._days)

    def get(self, team_id: str, day: date) -> queries.Totals | None:
        found = self._days.get((team_id, day))
        if found is not None:
            self._days.move_to_end((team_id, day))
        return found

    def put(self, team_id: str, day: date, totals: queries.Totals) -> None:
        self._days[(team_id, day)] = totals
        self._days.move_to_end((team_id, day))
        while len(self._days) > self._max:
            self._days.popitem(last=False)


async def window_totals(
    session: AsyncSession,
    settled: SettledDays,
    team_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> queries.Totals:
    """Everyone's :func:`queries.booked_totals` over ``[start, end)``, settled days from
    ``settled`` (added there the first time they are asked for)."""
    first = _midnight(start + DAY - timedelta(microseconds=1))  # the first midnight >= start
    holding = await queries.earliest_holding_start(session, team_id)
    until = min(now - SETTLE_MARGIN, holding or now)
    last = min(_midnight(end), _midnight(until))
    if last - first < MIN_SETTLED_DAYS * DAY:
        return await queries.booked_totals(session, team_id, start, end)
    pieces = []
    if start < first:
        pieces.append(await queries.booked_totals(session, team_id, start, first))
    day = first
    while day < last:
        totals = settled.get(team_id, day.date())
        if totals is None:
            totals = await queries.booked_totals(session, team_id, day, day + DAY, count_from=day)
            settled.put(team_id, day.date(), totals)
        pieces.append(totals)
        day += DAY
    if last < end:
        pieces.append(await queries.booked_totals(session, team_id, last, end, count_from=last))
    return _add(pieces)


def _midnight(at: datetime) -> datetime:
    """The UTC midnight at or before ``at``."""
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def _add(pieces: list[queries.Totals]) -> queries.Totals:
    per_gpu: dict[int, tuple[int, int]] = {}
    per_user: dict[str, tuple[int, int]] = {}
    for gpus, users in pieces:
        _merge(per_gpu, gpus)
        _merge(per_user, users)
    return per_gpu, per_user


def _merge(into: dict[K, tuple[int, int]], part: dict[K, tuple[int, int]]) -> None:
    for key, (count, held) in part.items():
        was_count, was_held = into.get(key, (0, 0))
        into[key] = (was_count + count, was_held + held)
