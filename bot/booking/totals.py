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

Reading the days takes seconds at 200 GPUs and 100,000 bookings, so nobody waits for it: a
window whose days are not kept yet is summed directly by the database (one bounded aggregate, as
:func:`sums.booked_totals` always could) while the days are read in the background
(:meth:`SettledDays.fill_later`); ``gpubook serve`` starts that for the last 30 days of every
workspace as it starts. The Python side of a read yields to the event loop every
:data:`_ROWS_PER_TURN` bookings read, so requests are answered meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import sums
from storage.db import Database

log = logging.getLogger(__name__)

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
#: Bookings read and split into days between two turns of the event loop.
_ROWS_PER_TURN = 1_000
#: The days ``[first, last)`` a window's totals would be read from (see :func:`window_totals`).
Days = tuple[datetime, datetime]


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
        #: Reads of days under way in the background, one per workspace at most.
        self._filling: dict[str, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        """How many days are kept, over every workspace."""
        return sum(len(s.days) for s in self._teams.values())

    def keeps(self, team_id: str, days: Days) -> bool:
        """Whether every one of ``days`` of the workspace is kept (none need reading)."""
        kept = self._teams.get(team_id)
        return kept is not None and kept.first <= days[0] and days[1] <= kept.last

    def fill_later(self, db: Database, team_id: str, days: Days) -> None:
        """Read ``days`` of the workspace in the background, in a read transaction of its own,
        unless a read of its days is under way already. A failure is logged: the days are read
        again the next time they are asked for."""
        if team_id in self._filling:
            return

        async def fill() -> None:
            try:
                async with db.read() as session:
                    await self.cover(session, team_id, *days)
            except Exception:
                log.exception("could not read the settled days of %s", team_id)

        task = asyncio.create_task(fill())
        self._filling[team_id] = task
        # Forgotten when done, not in the coroutine: a task cancelled before its first step
        # never runs its body, and ``drain`` would wait for it for ever.
        task.add_done_callback(lambda done: self._forget(team_id, done))

    def _forget(self, team_id: str, task: asyncio.Task[None]) -> None:
        if self._filling.get(team_id) is task:
            del self._filling[team_id]

    async def drain(self) -> None:
        """Wait for the background reads under way."""
        while self._filling:
            await asyncio.gather(*self._filling.values(), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the background reads under way (the process is stopping)."""
        for task in self._filling.values():
            task.cancel()
        await self.drain()

    async def cover(
        self, session: AsyncSession, team_id: str, first: datetime, last: datetime
    ) -> Settled:
        """The workspace's settled days, reading those of ``[first, last)`` not kept yet (every
        day must be settled): only the stretches before and after what is kept are read. The
        window's days are always among those returned (it spans at most ``max_days``).

        What is kept stays in place while more days are read (a background read must not hide
        the days already kept): the days read are added, and the stretch widened, only once
        read, so meanwhile :meth:`keeps` answers for the stretch as it was."""
        kept = self._teams.get(team_id)
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
        self._teams.move_to_end(team_id)
        while len(self._teams) > self._max_teams:
            self._teams.popitem(last=False)
        return kept


async def settled_days_of(
    session: AsyncSession,
    team_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
    grace: timedelta,
    max_days: int = MAX_DAYS,
) -> Days | None:
    """The settled days a window ``[start, end)`` is added up from — from the start's own day,
    as a booking reaching into the window from before touches it — or None when it has too few
    (or too many) to be worth keeping; ``grace`` is how far in the past a booking may still
    start."""
    first = midnight(start + DAY - timedelta(microseconds=1))  # the first midnight >= start
    holding = await sums.earliest_holding_start(session, team_id)
    until = min(now - max(SETTLE_MARGIN, grace), holding or now)
    last = min(midnight(end), midnight(until))
    if not MIN_SETTLED_DAYS * DAY <= last - first < max_days * DAY:
        return None
    return midnight(start), last


async def window_totals(
    session: AsyncSession,
    settled: SettledDays,
    team_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
    grace: timedelta,
    *,
    not_kept: Callable[[Days], None] | None = None,
) -> sums.Totals:
    """Everyone's :func:`sums.booked_totals` over ``[start, end)``, its settled days from
    ``settled``; ``grace`` is how far in the past a booking may still start.

    Days not kept yet are read here, unless ``not_kept`` is given: then the window is summed
    directly and ``not_kept`` is told which days to read (in the background, for next time).
    """
    days = await settled_days_of(session, team_id, start, end, now, grace, settled.max_days)
    if days is None:
        return await sums.booked_totals(session, team_id, start, end)
    if not_kept is not None and not settled.keeps(team_id, days):
        not_kept(days)
        return await sums.booked_totals(session, team_id, start, end)
    first = midnight(start + DAY - timedelta(microseconds=1))  # the first midnight >= start
    last = days[1]
    kept = await settled.cover(session, team_id, *days)
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
    async for rows in sums.held_rows(session, team_id, first, last, _ROWS_PER_TURN):
        for gpu_id, user_id, start, end, mib in rows:
            kept.longest = max(kept.longest, end - start)
            day = max(midnight(start), first)
            while day < last and day < end:
                counted = 1 if day <= start else 0  # counted in the day it starts
                held = mib * held_seconds(max(start, day), min(end, day + DAY))
                per_gpu, per_user = days[day]
                _add_one(per_gpu, gpu_id, counted, held)
                _add_one(per_user, user_id, counted, held)
                day += DAY
        await asyncio.sleep(0)  # a turn of the event loop: requests are answered meanwhile
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
