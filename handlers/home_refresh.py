"""App Home refreshes after changes, coalesced per user.

Rebuilding a Home reads the user's bookings, every GPU's status and the week's use: far more than
the booking that changed it. Someone booking twenty windows in a row (or an admin cancelling
many) would pay for twenty rebuilds of which only the last is ever seen. So a change only marks
the user's Home stale; one rebuild runs ``delay`` seconds later and covers every change made
until it starts reading. A change made after that schedules one more, so the last rebuild always
follows the last change. Rebuilds of one user run one at a time, so an older one can never
publish over a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: (team id, user id) of a Home.
HomeKey = tuple[str, str]
#: Rebuilds and publishes one user's Home.
Publish = Callable[[str, str], Awaitable[None]]
#: Waits the given seconds (``asyncio.sleep``).
Sleep = Callable[[float], Awaitable[None]]


class HomeRefresher:
    """Schedules coalesced Home rebuilds; one instance per process (it lives in ``Deps``)."""

    def __init__(self, delay: float = 0.0, sleep: Sleep = asyncio.sleep) -> None:
        #: Seconds a stale Home waits for more changes before it is rebuilt (0: next loop turn).
        self.delay = delay
        #: How that wait is waited: tests pass one they end themselves, so none waits real time.
        self._sleep = sleep
        self._stale: set[HomeKey] = set()
        #: One per user ever refreshed by this process: a few hundred small objects at most.
        self._locks: dict[HomeKey, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def stale(self, team_id: str, user_id: str, publish: Publish) -> None:
        """Mark a Home stale; a rebuild is scheduled unless one is already waiting to start."""
        key = (team_id, user_id)
        if key in self._stale:
            return
        self._stale.add(key)
        task = asyncio.create_task(self._rebuild(key, publish))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rebuild(self, key: HomeKey, publish: Publish) -> None:
        await self._sleep(self.delay)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # From here on, a change needs a rebuild of its own: this one may have read already.
            self._stale.discard(key)
            try:
                await publish(*key)
            except Exception:
                # A failed publish only leaves the tab stale until the next change or visit.
                log.exception("could not refresh the App Home of %s", key[1])

    async def drain(self) -> None:
        """Let every scheduled rebuild finish (at shutdown, and in tests that read the Home)."""
        while self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*list(self._tasks))
