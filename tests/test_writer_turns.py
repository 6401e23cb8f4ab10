"""Turns at SQLite's one writer: in order of asking, a turn asked ``first`` ahead of the others but
never twice in a row while others wait, and a caller cancelled while waiting never keeps it."""

from __future__ import annotations

import asyncio

import pytest

from storage.writer_turns import WriterTurns


async def holder(turns: WriterTurns, name: str, log: list[str], *, first: bool = False) -> None:
    async with turns.turn(first=first):
        log.append(name)
        await asyncio.sleep(0)


async def queued(turns: WriterTurns, log: list[str], *asks: tuple[str, bool]) -> None:
    """Hold the writer while ``asks`` (name, first) queue in that order, then let them run."""
    async with turns.turn():
        tasks = []
        for name, first in asks:
            tasks.append(asyncio.create_task(holder(turns, name, log, first=first)))
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)


async def test_turns_come_in_order_of_asking() -> None:
    log: list[str] = []
    await queued(WriterTurns(), log, ("a", False), ("b", False), ("c", False))
    assert log == ["a", "b", "c"]


async def test_a_first_turn_goes_ahead_but_never_twice_in_a_row_while_others_wait() -> None:
    log: list[str] = []
    asks = [("a", False), ("b", False), ("r1", True), ("r2", True), ("c", False)]
    await queued(WriterTurns(), log, *asks)
    assert log == ["r1", "a", "r2", "b", "c"]


async def test_a_caller_cancelled_while_waiting_never_holds_the_writer() -> None:
    turns, log = WriterTurns(), []
    async with turns.turn():
        gone = asyncio.create_task(holder(turns, "gone", log))
        kept = asyncio.create_task(holder(turns, "kept", log))
        await asyncio.sleep(0)
        gone.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert log == ["kept"]
    async with turns.turn():  # free again
        pass


async def test_a_turn_handed_to_a_caller_cancelled_meanwhile_passes_on() -> None:
    turns, log = WriterTurns(), []
    async with turns.turn():
        gone = asyncio.create_task(holder(turns, "gone", log))
        kept = asyncio.create_task(holder(turns, "kept", log))
        await asyncio.sleep(0)
    gone.cancel()  # its turn was handed over; it is cancelled before it ran
    await kept
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert log == ["kept"]
