"""bot.runtime.heap: `gpubook serve` hands its heap's free pages back every few seconds."""

from __future__ import annotations

import asyncio

import pytest

from bot.runtime import heap


def test_glibc_malloc_trim_is_found_and_callable() -> None:
    trim = heap.heap_trimmer()
    assert trim is not None  # the tests run on glibc Linux, like the deployments
    assert trim() in (0, 1)


async def test_trims_after_each_wait_until_cancelled() -> None:
    waits: list[float] = []
    trims: list[int] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            raise asyncio.CancelledError  # what shutdown does to the task mid-wait

    def trim() -> int:
        trims.append(len(waits))
        return 1

    with pytest.raises(asyncio.CancelledError):
        await heap.trim_heap_every(10.0, trim, sleep)
    assert waits == [10.0] * 4
    assert trims == [1, 2, 3]  # one trim after each finished wait, none before the first


async def test_no_task_without_malloc_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "heap_trimmer", lambda: None)
    assert heap.start_heap_trimming() is None


async def test_the_task_runs_until_cancelled() -> None:
    task = heap.start_heap_trimming(seconds=3600)
    assert task is not None
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
