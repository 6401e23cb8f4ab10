"""App Home rebuilds are coalesced per user, and the last one always follows the last change."""

from __future__ import annotations

import asyncio

import pytest

from handlers.home_refresh import REBUILDS_AT_ONCE, Batch, HomeRefresher


class Recorder:
    """A publish that records what it saw, optionally held open until released."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, int]] = []
        self.running = 0
        self.most_at_once = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.version = 0  # what the Home would show: bumped by each change

    async def __call__(self, team_id: str, user_id: str, batch: Batch) -> None:
        seen = self.version  # a rebuild reads first, then publishes
        self.running += 1
        self.started.set()
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            self.published.append((team_id, user_id, seen))
        finally:
            self.running -= 1


async def test_changes_before_a_rebuild_starts_share_one_rebuild() -> None:
    homes, publish = HomeRefresher(), Recorder()
    for _ in range(20):
        publish.version += 1
        homes.stale("T1", "U1", publish)
    await homes.drain()
    assert publish.published == [("T1", "U1", 20)]


async def test_each_user_gets_a_rebuild_of_their_own() -> None:
    homes, publish = HomeRefresher(), Recorder()
    for user in ("U1", "U2", "U1", "U3", "U2"):
        homes.stale("T1", user, publish)
    homes.stale("T2", "U1", publish)  # the same id in another workspace is someone else
    await homes.drain()
    assert sorted((t, u) for t, u, _ in publish.published) == [
        ("T1", "U1"),
        ("T1", "U2"),
        ("T1", "U3"),
        ("T2", "U1"),
    ]


async def test_a_change_during_a_rebuild_gets_one_more_which_waits_its_turn() -> None:
    homes, publish = HomeRefresher(), Recorder()
    publish.gate = asyncio.Event()
    homes.stale("T1", "U1", publish)
    await publish.started.wait()  # the first rebuild has read version 0 and is publishing
    for _ in range(5):  # changes it cannot have seen
        publish.version += 1
        homes.stale("T1", "U1", publish)
    publish.gate.set()
    await homes.drain()
    assert [seen for _, _, seen in publish.published] == [0, 5]
    assert publish.most_at_once == 1  # an older rebuild never publishes over a newer one


async def test_a_failed_rebuild_is_logged_and_the_next_change_still_rebuilds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    homes, publish = HomeRefresher(), Recorder()

    async def broken(team_id: str, user_id: str, batch: Batch) -> None:
        raise RuntimeError("slack is down")

    homes.stale("T1", "U1", broken)
    await homes.drain()
    assert "could not refresh the App Home of U1" in caplog.text
    homes.stale("T1", "U1", publish)
    await homes.drain()
    assert publish.published == [("T1", "U1", 0)]


async def test_the_delay_gathers_changes_that_arrive_while_it_waits() -> None:
    waited: list[float] = []
    delay_over = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the delay, ended by the test instead of time
        waited.append(seconds)
        await delay_over.wait()

    homes, publish = HomeRefresher(delay=1.5, sleep=sleep), Recorder()
    homes.stale("T1", "U1", publish)
    for _ in range(3):
        await asyncio.sleep(0)
        publish.version += 1
        homes.stale("T1", "U1", publish)
    assert waited == [1.5] and not publish.published  # still waiting: nothing rebuilt yet
    delay_over.set()
    await homes.drain()
    assert publish.published == [("T1", "U1", 3)]


async def test_a_batch_asks_once_which_homes_are_watched_and_rebuilds_only_those() -> None:
    asked: list[list[tuple[str, str]]] = []

    async def watched(keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        asked.append(sorted(keys))
        return {("T1", "U2")}

    homes, publish = HomeRefresher(watched=watched), Recorder()
    for user in ("U1", "U2", "U3", "U2"):
        homes.stale("T1", user, publish)
    await homes.drain()
    assert asked == [[("T1", "U1"), ("T1", "U2"), ("T1", "U3")]]
    assert publish.published == [("T1", "U2", 0)]


async def test_when_it_cannot_tell_which_homes_are_watched_it_rebuilds_them_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def watched(keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        raise RuntimeError("database is away")

    homes, publish = HomeRefresher(watched=watched), Recorder()
    homes.stale("T1", "U1", publish)
    homes.stale("T1", "U2", publish)
    await homes.drain()
    assert sorted(u for _, u, _ in publish.published) == ["U1", "U2"]
    assert "could not tell which App Homes are open" in caplog.text


class SharedRecorder(Recorder):
    """A publish that also reads, through its batch, what every Home of a workspace shows."""

    def __init__(self) -> None:
        super().__init__()
        self.shared_reads: list[str] = []
        self.shown: list[tuple[str, int]] = []  # (user, version of the shared part shown)

    async def __call__(self, team_id: str, user_id: str, batch: Batch) -> None:
        async def read() -> int:
            self.shared_reads.append(team_id)
            return self.version

        self.shown.append((user_id, await batch.once(("gpus", team_id), read)))
        await super().__call__(team_id, user_id, batch)


async def test_a_batch_reads_what_its_homes_share_once_per_workspace() -> None:
    homes, publish = HomeRefresher(), SharedRecorder()
    for user in ("U1", "U2", "U3"):
        homes.stale("T1", user, publish)
    homes.stale("T2", "U1", publish)
    await homes.drain()
    assert sorted(publish.shared_reads) == ["T1", "T2"]
    assert len(publish.published) == 4


async def test_a_change_after_a_batch_was_read_is_shown_by_the_next_batch() -> None:
    homes, publish = HomeRefresher(), SharedRecorder()
    homes.stale("T1", "U1", publish)
    homes.stale("T1", "U2", publish)
    await homes.drain()
    publish.version += 1  # someone changes a card: the shared part the first batch read is old
    homes.stale("T1", "U2", publish)
    await homes.drain()
    assert publish.shown == [("U1", 0), ("U2", 0), ("U2", 1)]
    assert publish.shared_reads == ["T1", "T1"]


async def test_a_failed_shared_read_is_not_kept_the_next_rebuild_reads_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    homes, publish = HomeRefresher(), SharedRecorder()
    failures = [RuntimeError("database is away")]

    async def flaky(team_id: str, user_id: str, batch: Batch) -> None:
        async def read() -> int:
            if failures:
                raise failures.pop()
            return publish.version

        await batch.once(("gpus", team_id), read)
        await publish(team_id, user_id, batch)

    homes.stale("T1", "U1", flaky)
    homes.stale("T1", "U2", flaky)
    await homes.drain()
    assert "could not refresh the App Home of U1" in caplog.text
    assert [u for _, u, _ in publish.published] == ["U2"]


async def test_the_rebuilds_of_a_batch_run_a_few_at_a_time() -> None:
    homes, publish = HomeRefresher(), Recorder()
    publish.gate = asyncio.Event()
    for n in range(10):
        homes.stale("T1", f"U{n}", publish)
    await publish.started.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert publish.running == REBUILDS_AT_ONCE  # the others wait their turn, not the loop
    publish.gate.set()
    await homes.drain()
    assert len(publish.published) == 10 and publish.most_at_once == REBUILDS_AT_ONCE


async def test_a_shared_value_is_read_again_once_it_is_older_than_its_freshness() -> None:
    now = [100.0]
    batch = Batch(fresh_for=1.0, clock=lambda: now[0])
    reads: list[float] = []

    async def read() -> float:
        reads.append(now[0])
        return now[0]

    assert await batch.once("gpus", read) == 100.0
    now[0] = 100.9  # a later rebuild of the same batch, soon after: the value is reused
    assert await batch.once("gpus", read) == 100.0
    assert await batch.once("other", read) == 100.9  # another key is read on its own
    now[0] = 101.0  # the batch was held up: what it read is as old as a batch may keep it
    assert await batch.once("gpus", read) == 101.0
    assert reads == [100.0, 100.9, 101.0]
