"""Statistics over a long window from the days in it that can no longer change.

`admin stats` over 30 days adds up every booking of those days: about 27,000 at 200 GPUs and
100,000 bookings, 90–120 ms on SQLite however the sum is written. Yet a day that is over, with
every booking touching it ended, never changes again: bookings cannot start in the past (a
minute's grace at most), and an ended or cancelled booking is never edited. So the *settled* UTC
days of a workspace are read once (one pass over the statistics' covering index, split into days
here) and their totals kept, with the longest booking that touches them. A window is then its
settled whole days from memory, plus two pieces summed by the database: from the window's start
to the first midnight (empty when it starts at one, but still where the bookings that began
before the window are counted), and from the last settled midnight to the window's end. Every booking
reaching into those pieces from before touches a settled day, so it is no longer than the
longest kept: each piece reads only the bookings starting from that far back, through the
(workspace, status, start) index, instead of every booking ending after the piece starts.

Pieces add up exactly: memory-time counts whole seconds with both ends cut to the second
(:class:`storage.expressions.seconds_between`, :func:`held_seconds` here) and days begin on whole
seconds; a booking is counted in the piece where it starts, or in the first piece when it started
before the window (:func:`bot.booking.sums.booked_totals` with ``count_from``). What is kept
is immutable fact, so replicas need not agree on it; the days of at most :data:`MAX_TEAMS`
workspaces are kept, the least recently used dropped first, each at most :data:`MAX_DAYS` back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import sums

K = TypeVar("K")
DAY = timedelta(days=1)
#: Settled days kept per workspace (a year and then some), the oldest dropped first.
MAX_DAYS = 400
#: Workspaces whose settled days are kept.
MAX_TEAMS = 64
#: A day counts as settled only this long after it ends (or the policy's grace for a start in
#: the past, if longer), so no booking made late can still reach into it.
SETTLE_MARGIN = timedelta(hours=1)
#: A window with fewer settled days than this is summed directly: nothing to gain.
MIN_SETTLED_DAYS = 2


@dataclass
class Settled:
    """One workspace's settled days ``[first, last)``: per day the MiB·seconds held in it and
    the bookings starting in it (per GPU and per user), and the longest booking touching them."""

    first: datetime
    last: datetime
    days: dict[datetime, sums.Totals] = field(default_factory=dict)
    longest: timedelta = timedelta(0)


class SettledDays:
    """The settled days of the workspaces asked about lately."""

    def __init__(self, max_teams: int = MAX_TEAMS, max_days: int = MAX_DAYS) -> None:
        self._teams: OrderedDict[str, Settled] = OrderedDict()
        self._max_teams, self.max_days = max_teams, max_days

    def __len__(self) -> int:
        """How many days are kept, over every workspace."""
        return sum(len(s.days) for s in self._teams.values())

    async def cover(
        self, session: AsyncSession, team_id: str, first: datetime, last: datetime
    ) -> Settled:
        """The workspace's settled days, reading those of ``[first, last)`` not kept yet (every
        day must be settled): only the stretches before and after what is kept are read. The
        window's days are always among those returned (it spans at most ``max_days``)."""
        kept = self._teams.pop(team_id, None)
        if kept is None or last < kept.first or first > kept.last:
            kept = Settled(first, first)  # nothing kept touches the window: start afresh
        if first < kept.first:
            await _read(session, team_id, kept, first, kept.first)
            kept.first = first
        if last > kept.last:
            await _read(session, team_id, kept, kept.last, last)
            kept.last = last
        if kept.last - kept.first > self.max_days * DAY:
            # Past the bound: drop the oldest days, unless the window needs them (days kept for
            # a later window, then one reaching further back): then keep just the window's.
            oldest = kept.last - self.max_days * DAY
            if oldest > first:
                oldest, kept.last = first, last
            kept.days = {day: t for day, t in kept.days.items() if oldest <= day < kept.last}
            kept.first = oldest
        self._teams[team_id] = kept
        while len(self._teams) > self._max_teams:
            self._teams.popitem(last=False)
        return kept


async def window_totals(
    session: AsyncSession,
    settled: SettledDays,
    team_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
    grace: timedelta,
) -> sums.Totals:
    """Everyone's :func:`sums.booked_totals` over ``[start, end)``, its settled days from
    ``settled`` (read there the first time they are asked for); ``grace`` is how far in the
    past a booking may still start."""
    first = midnight(start + DAY - timedelta(microseconds=1))  # the first midnight >= start
    holding = await sums.earliest_holding_start(session, team_id)
    until = min(now - max(SETTLE_MARGIN, grace), holding or now)
    last = min(midnight(end), midnight(until))
    if not MIN_SETTLED_DAYS * DAY <= last - first < settled.max_days * DAY:
        return await sums.booked_totals(session, team_id, start, end)
    # From the start's own day: a booking reaching into the window from before touches it.
    kept = await settled.cover(session, team_id, midnight(start), last)
    pieces = [kept.days[first + n * DAY] for n in range((last - first) // DAY)]
    # The piece before the first midnight, read even when empty (a window starting at a
    # midnight): the bookings that started before the window are counted there, and nowhere else
    # (the kept days count a booking only in the day it starts); it adds no memory-time then.
    back = start - kept.longest
    pieces.append(await sums.booked_totals(session, team_id, start, first, starting_from=back))
    if last < end:
        back = last - kept.longest
        pieces.append(
            await sums.booked_totals(
                session, team_id, last, end, count_from=last, starting_from=back
            )
        )
    return _add(pieces)


def midnight(at: datetime) -> datetime:
    """The UTC midnight at or before ``at``."""
    return datetime.combine(at.astimezone(UTC).date(), time(), UTC)


def held_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``, each cut to its second, as the database counts."""
    return (end.replace(microsecond=0) - start.replace(microsecond=0)) // timedelta(seconds=1)


async def _read(
    session: AsyncSession, team_id: str, kept: Settled, first: datetime, last: datetime
) -> None:
    """Add the days ``[first, last)`` to ``kept``: one read of the bookings touching them,
    each split into its days."""
    days: dict[datetime, sums.Totals] = {
        first + n * DAY: ({}, {}) for n in range((last - first) // DAY)
    }
    for gpu_id, user_id, start, end, mib in await sums.held_rows(session, team_id, first, last):
        kept.longest = max(kept.longest, end - start)
        day = max(midnight(start), first)
        while day < last and day < end:
            counted = 1 if day <= start else 0  # counted in the day it starts
            held = mib * held_seconds(max(start, day), min(end, day + DAY))
            per_gpu, per_user = days[day]
            _add_one(per_gpu, gpu_id, counted, held)
            _add_one(per_user, user_id, counted, held)
            day += DAY
    kept.days.update(days)


def _add(pieces: list[sums.Totals]) -> sums.Totals:
    per_gpu: dict[int, tuple[int, int]] = {}
    per_user: dict[str, tuple[int, int]] = {}
    for gpus, users in pieces:
        _merge(per_gpu, gpus)
        _merge(per_user, users)
    return per_gpu, per_user


def _merge(into: dict[K, tuple[int, int]], part: dict[K, tuple[int, int]]) -> None:
    for key, (count, held) in part.items():
        _add_one(into, key, count, held)


def _add_one(into: dict[K, tuple[int, int]], key: K, count: int, held: int) -> None:
    was_count, was_held = into.get(key, (0, 0))
    into[key] = (was_count + count, was_held + held)
