"""Group commit: what arrives while a batch is stored goes in the next, together; each item gets
its own result or refusal, and one bad item never fails another."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.booking.group_commit import GroupCommit


class Store:
    """A store that records its batches and holds each until released; item ``"bad"`` is refused
    and ``"boom"`` fails the whole transaction it is in."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: Sequence[str]) -> list[str | Exception]:
        self.batches.append(list(items))
        await self.gate.wait()
        if "boom" in items:
            raise RuntimeError("the transaction failed")
        return [ValueError(i) if i == "bad" else i.upper() for i in items]


async def _turns(n: int = 3) -> None:
    """Let the tasks just started (a submit, then the writer it starts) run up to their waits."""
    for _ in range(n):
        await asyncio.sleep(0)


def joinable(batch: Sequence[str], item: str) -> bool:
    return item not in batch  # the same item twice waits for the next batch


async def test_a_lone_item_is_stored_at_once_and_what_arrives_meanwhile_goes_together() -> None:
    store = Store()
    commit = GroupCommit(store, joinable, limit=10)
    assert await commit.submit("a") == "A"
    store.gate.clear()
    first = asyncio.create_task(commit.submit("b"))
    await asyncio.sleep(0)
    later = [asyncio.create_task(commit.submit(i)) for i in ("c", "d", "c")]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(first, *later) == ["B", "C", "D", "C"]
    assert store.batches == [["a"], ["b"], ["c", "d"], ["c"]]


async def test_the_limit_caps_a_batch() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=2)
    tasks = [asyncio.create_task(commit.submit(i)) for i in "abcde"]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*tasks) == list("ABCDE")
    assert store.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_refused_item_gets_its_refusal_and_the_others_their_results() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=10)
    tasks = [asyncio.create_task(commit.submit(i)) for i in ("a", "bad", "c")]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError)


async def test_a_failed_batch_is_stored_again_an_item_at_a_time() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=10)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(commit.submit(i)) for i in ("b", "boom", "d")]
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == "A"
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "B" and results[2] == "D"
    assert isinstance(results[1], RuntimeError)
    assert store.batches[1:] == [["b", "boom", "d"], ["b"], ["boom"], ["d"]]


async def test_a_failure_every_item_would_meet_alone_is_not_retried() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=10, shared=lambda e: isinstance(e, RuntimeError))
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(commit.submit(i)) for i in ("b", "boom")]
    await asyncio.sleep(0)
    store.gate.set()
    await first
    with pytest.raises(RuntimeError):
        await tasks[0]
    with pytest.raises(RuntimeError):
        await tasks[1]
    assert store.batches[1:] == [["b", "boom"]]


async def test_a_caller_gone_before_its_batch_is_not_stored() -> None:
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=10)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commit.submit("b"))
    kept = asyncio.create_task(commit.submit("c"))
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    assert (await first, await kept) == ("A", "C")
    assert store.batches == [["a"], ["c"]]


async def test_with_two_writers_what_arrives_during_a_batch_starts_at_once() -> None:
    """Where transactions do not exclude each other (PostgreSQL), a second writer stores what
    arrives while the first batch is in flight instead of waiting for it; a third item waits."""
    store = Store()
    store.gate.clear()
    commit = GroupCommit(store, joinable, limit=10, writers=2)
    first = asyncio.create_task(commit.submit("a"))
    await _turns()
    second = asyncio.create_task(commit.submit("b"))
    await _turns()
    assert store.batches == [["a"], ["b"]]  # both in flight, neither committed
    third = asyncio.create_task(commit.submit("c"))
    await _turns()
    assert store.batches == [["a"], ["b"]]
    store.gate.set()
    assert await asyncio.gather(first, second, third) == ["A", "B", "C"]
    assert store.batches == [["a"], ["b"], ["c"]]


async def test_an_item_arriving_as_the_writer_finishes_is_still_stored() -> None:
    """The writer leaves in the same step that finds nothing waiting, so an item submitted
    from its batch's own completion starts a writer of its own rather than waiting forever."""
    store = Store()
    commit = GroupCommit(store, joinable, limit=10)
    assert await commit.submit("a") == "A"
    assert await asyncio.wait_for(commit.submit("b"), 5) == "B"
    later: list[asyncio.Task[str]] = []

    async def resubmit(items: Sequence[str]) -> list[str | Exception]:
        outcome = await store(items)
        if not later:  # submitted while this writer is still running, after the batch
            later.append(asyncio.get_running_loop().create_task(commit.submit("c")))
        return outcome

    commit.store = resubmit
    assert await commit.submit("d") == "D"
    assert await asyncio.wait_for(later[0], 5) == "C"
