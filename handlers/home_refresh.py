"""App Home refreshes after changes, coalesced per user and skipped for Homes nobody looks at.

Rebuilding a Home reads the user's bookings, every GPU's status and the week's use: far more than
the booking that changed it. Someone booking twenty windows in a row (or an admin cancelling
many) would pay for twenty rebuilds of which only the last is ever seen. So a change only marks
the user's Home stale; ``delay`` seconds after the first change, every Home marked meanwhile is
taken in one batch, covering every change made until then. A change made after that goes into
the next batch, so the last rebuild always follows the last change. Rebuilds of one user run one
at a time, so an older one can never publish over a newer one.

A batch first asks ``watched`` which of its Homes someone may be looking at (one question for
the whole batch, not one per booking) and rebuilds only those: a Home is published afresh
whenever it is opened anyway (``handlers.home``).

What is the same on every Home of a workspace (its GPUs, in a pool small enough to show them
all) is read once per batch, not once per Home: the batch hands each rebuild a :class:`Batch`
to share it through. It is read on first use, after the batch was taken, so after every change
the batch covers; it is read again once a second old, and dies with the batch, so the next
batch (which any later change schedules) reads afresh. And the rebuilds of a batch run a few at
a time: fifty Homes rebuilt at once would hold the event loop for all of them in one go, and
every command answered meanwhile would wait behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")

#: (team id, user id) of a Home.
HomeKey = tuple[str, str]
#: Waits the given seconds (``asyncio.sleep``).
Sleep = Callable[[float], Awaitable[None]]
#: Which of these Homes may be on someone's screen.
Watched = Callable[[list[HomeKey]], Awaitable[set[HomeKey]]]
#: Rebuilds at most this many Homes at once (per process).
REBUILDS_AT_ONCE = 2
#: Seconds a value shared by a batch's rebuilds is used for before it is read again.
SHARED_FRESH_FOR = 1.0


class Batch:
    """What the rebuilds of one batch share: each value read once, by the first rebuild that
    needs it; the others of the batch reuse it while it is fresh (``fresh_for`` seconds from
    its read: a batch held up, by a slow publish say, must not show the GPUs as they were long
    before the rest of the Home)."""

    def __init__(
        self, fresh_for: float = SHARED_FRESH_FOR, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.fresh_for = fresh_for
        self._clock = clock
        #: Each value with the time its read began.
        self._values: dict[Hashable, tuple[float, object]] = {}
        self._reading = asyncio.Lock()

    async def once(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """The value under ``key``, read with ``read`` unless this batch has it from less than
        ``fresh_for`` ago (a read that fails is not kept: the next rebuild tries again)."""
        async with self._reading:
            kept = self._values.get(key)
            if kept is None or self._clock() - kept[0] >= self.fresh_for:
                began = self._clock()
                kept = self._values[key] = (began, await read())
            return cast(T, kept[1])


#: Rebuilds and publishes one user's Home (team id, user id), sharing what it may in the batch.
Publish = Callable[[str, str, Batch], Awaitable[None]]


class HomeRefresher:
    """Schedules coalesced Home rebuilds; one instance per process (it lives in ``Deps``)."""

    def __init__(
        self, delay: float = 0.0, sleep: Sleep = asyncio.sleep, watched: Watched | None = None
    ) -> None:
        #: Seconds a stale Home waits for more changes before it is rebuilt (0: next loop turn).
        self.delay = delay
        #: How that wait is waited: tests pass one they end themselves, so none waits real time.
        self._sleep = sleep
        #: Which Homes are worth rebuilding; ``None``: all of them.
        self.watched = watched
        #: Homes marked stale since the last batch was taken, with how to publish each.
        self._pending: dict[HomeKey, Publish] = {}
        self._batch_due = False
        #: One per user ever refreshed by this process: a few hundred small objects at most.
        self._locks: dict[HomeKey, asyncio.Lock] = {}
        self._rebuilding = asyncio.Semaphore(REBUILDS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()

    def stale(self, team_id: str, user_id: str, publish: Publish) -> None:
        """Mark a Home stale; the next batch rebuilds it (one is scheduled unless one is due)."""
        self._pending.setdefault((team_id, user_id), publish)
        if not self._batch_due:
            self._batch_due = True
            self._spawn(self._batch())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _batch(self) -> None:
        await self._sleep(self.delay)
        # From here on, a change needs a rebuild of its own: this batch may have read already.
        batch, self._pending, self._batch_due = self._pending, {}, False
        keys = list(batch)
        try:
            shown = set(keys) if self.watched is None else await self.watched(keys)
        except Exception:
            # Rebuilding too many Homes costs time; leaving an open one stale misleads.
            log.exception("could not tell which App Homes are open; refreshing them all")
            shown = set(keys)
        shared = Batch()
        for key in keys:
            if key in shown:
                self._spawn(self._rebuild(key, batch[key], shared))

    async def _rebuild(self, key: HomeKey, publish: Publish, shared: Batch) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock, self._rebuilding:
            try:
                await publish(*key, shared)
            except Exception:
                # A failed publish only leaves the tab stale until the next change or visit.
                log.exception("could not refresh the App Home of %s", key[1])

    async def drain(self) -> None:
        """Let every scheduled rebuild finish (at shutdown, and in tests that read the Home)."""
        while self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*list(self._tasks))
