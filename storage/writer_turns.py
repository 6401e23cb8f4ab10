"""This process's turns at SQLite's one writer: in order of asking, but a turn asked ``first`` goes
ahead of the others, never twice in a row while others wait.

Writers of one process queue here instead of inside SQLite's busy handler, which sleeps with
back-off (measured: 20 concurrent creates ran slower than sequential ones); ``BEGIN IMMEDIATE``
still serialises other processes. In plain order of asking (an ``asyncio.Lock``), host agents'
reports — a steady 33 a second from 500 hosts, stored a batch per transaction — waited behind
every write queued before them: ten bookings asked at once held the writer for ~120 ms, and every
report arriving meanwhile waited all of it (``bench/README.md``, agent_bench). Asked ``first``,
the reports' next batch waits for at most one other writer; and since turns then alternate, any
other writer waits for at most one batch of reports more than it did.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriterTurns:
    """Turns at one writer, see the module docstring."""

    def __init__(self) -> None:
        self._busy = False
        #: Waiting turns: those asked ``first``, and the others; each a future set when its turn comes.
        self._first: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()
        #: Whether the turn now (or last) held was asked ``first``.
        self._last_first = False

    @asynccontextmanager
    async def turn(self, *, first: bool = False) -> AsyncIterator[None]:
        """Hold the writer for the ``async with`` block."""
        await self._acquire(first)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, first: bool) -> None:
        if not self._busy:
            self._busy, self._last_first = True, first
            return
        queue = self._first if first else self._others
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()  # handed the turn as it was cancelled: pass it on
            elif future in queue:
                queue.remove(future)
            raise

    def _release(self) -> None:
        """Hand the writer to the next turn (the busy flag stays set), or free it."""
        order = (self._others, self._first) if self._last_first else (self._first, self._others)
        for queue in order:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    self._last_first = queue is self._first
                    return
        self._busy = False
