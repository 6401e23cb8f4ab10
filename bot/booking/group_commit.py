"""Group commit: what arrives while a transaction is in flight is written by the next one, together.

Host agents' reports come all the time, a few milliseconds of work each, and every one wrote in
a transaction of its own. On SQLite a transaction holds this process's one writer's turn across
every hand-off to the database thread, each waiting for the event loop, so when the loop was busy
(a sweep, a command, a garbage collection) a report's turn stretched and every report behind it
queued for the writer one after another; on PostgreSQL every report waited for its own commit's
flush to disk. Measured under a fleet of 500 hosts, that queue was the reports' tail latency
(``bench/README.md``, agent_bench).

Here a task writes: it takes what has arrived — as many as :attr:`GroupCommit.limit` that may
go together (``can_join``) — and stores them in one transaction; whatever arrives meanwhile waits
for the next. An idle process stores a lone item at once, as before. With
:attr:`GroupCommit.writers` above one, that many such tasks write at once, each its own batch:
where transactions of different items do not exclude each other (PostgreSQL's row locks), what
arrives during a transaction then starts at once in the next rather than waiting for the first
to commit. Each caller is answered only after the transaction holding its item committed. The store
function gives every item its own result or refusal; if the transaction fails as a whole, each
item of it is stored again in a transaction of its own, so one bad item never fails another
(unless the failure is one each would meet alone, such as the database being away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Stores a batch in one transaction: a result, or the exception to raise, for each item.
StoreBatch = Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]]


class GroupCommit(Generic[Item, Result]):
    """Items stored a batch per transaction by one task; see the module docstring."""

    def __init__(
        self,
        store: StoreBatch[Item, Result],
        can_join: Callable[[Sequence[Item], Item], bool],
        limit: int,
        shared: Callable[[Exception], bool] = lambda _: False,
        writers: int = 1,
    ) -> None:
        self.store = store
        self.can_join = can_join
        self.limit = limit
        #: Whether a batch's failure would fail each of its items alone too (not retried).
        self.shared = shared
        #: How many batches may be written at once (see the module docstring).
        self.writers = writers
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writing: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """Store ``item`` with whatever else is waiting; its result once committed (or its
        refusal, raised)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._writing) < self.writers:
            self._writing.add(asyncio.create_task(self._write_all(), name="group-commit"))
        return await future

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                if batch:
                    await self._write(batch)
        finally:
            # Gone from the writers in the same step that found nothing waiting: an item
            # submitted after it starts a writer of its own.
            self._writing.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The next batch, in order of arrival: what may join the items before it, up to the
        limit; the rest keeps its place. A caller gone meanwhile (cancelled) is dropped."""
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        left: list[tuple[Item, asyncio.Future[Result]]] = []
        for item, future in self._waiting:
            if future.done():
                continue
            if len(batch) < self.limit and self.can_join([i for i, _ in batch], item):
                batch.append((item, future))
            else:
                left.append((item, future))
        self._waiting = left
        return batch

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            try:
                outcomes: Sequence[Result | Exception] = await self.store(items)
            except Exception as error:
                if len(items) == 1 or self.shared(error):
                    raise
                outcomes = [await self._alone(item) for item in items]
        except Exception as error:  # every item's own failure
            outcomes = [error] * len(items)
        except BaseException:  # cancelled (shutting down): nobody waits forever
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _alone(self, item: Item) -> Result | Exception:
        try:
            (outcome,) = await self.store([item])
        except Exception as error:
            return error
        return outcome
