"""The APScheduler wrapper: started inside the loop, sweeps at once (catch-up), health, shutdown."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import BookingService
from bot.core.clock import FrozenClock
from bot.lifecycle.notifier import FlushStats
from bot.lifecycle.scheduler import LifecycleScheduler, start_lifecycle
from bot.lifecycle.sweep import AdvanceCounts
from handlers.blocks.notifications import render as render_notices
from storage.db import DatabaseUnavailable
from tests.conftest import CHANNEL, T0, at
from tests.slackfake import FakeSlackWebAPI
from tests.test_lifecycle import add_gpu, book, outbox


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the scheduler is backend-agnostic; the sweep itself is tested on both


async def test_first_sweep_runs_at_start_and_catches_up(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    clock.set(at(11))  # the bot was down across the whole booking
    async with FakeSlackWebAPI() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        scheduler = await start_lifecycle(
            service.db, client, service.config, clock, render=render_notices
        )
        try:
            [call] = await fake.wait_for("chat.postMessage")
        finally:
            await scheduler.shutdown()
        fake.assert_all_valid()

    assert call.params["channel"] == CHANNEL
    assert f"#{booking.id}" in call.params["blocks"][0]["text"]["text"]
    assert [n.kind for n in await outbox(service.db)] == ["announced", "started", "ended"]
    assert scheduler.healthy()


async def test_health_turns_false_when_sweeps_stop_succeeding(
    service: BookingService, clock: FrozenClock
) -> None:
    async with FakeSlackWebAPI() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        scheduler = await start_lifecycle(
            service.db, client, service.config, clock, render=render_notices, sweep_seconds=30
        )
        await scheduler.shutdown()
        await scheduler.sweep()
        assert scheduler.healthy()
        clock.advance(timedelta(seconds=90))
        assert scheduler.healthy()
        clock.advance(timedelta(seconds=1))
        assert not scheduler.healthy()


class _FailingLifecycle:
    clock = staticmethod(lambda: T0)

    async def advance(self, now: datetime) -> AdvanceCounts:
        raise ConnectionError("database unreachable")


class _OutageLifecycle:
    """Fails as the database does while ``away``; then a bug, when ``broken``."""

    clock = staticmethod(lambda: T0)

    def __init__(self) -> None:
        self.away = False
        self.broken = False

    async def advance(self, now: datetime) -> AdvanceCounts:
        if self.away:
            raise DatabaseUnavailable()
        if self.broken:
            raise KeyError("a bug")
        return AdvanceCounts()

    async def next_due(self, now: datetime) -> None:
        return None


class _SlowLifecycle:
    """Blocks in advance() until released, so a test can shut down mid-sweep."""

    clock = staticmethod(lambda: T0)

    def __init__(self) -> None:
        self.entered, self.release = asyncio.Event(), asyncio.Event()
        self.events: list[str] = []

    async def advance(self, now: datetime) -> AdvanceCounts:
        self.entered.set()
        await self.release.wait()
        self.events.append("sweep finished")
        return AdvanceCounts()

    async def next_due(self, now: datetime) -> None:
        return None


class _IdleNotifier:
    async def flush(self, now: datetime) -> FlushStats:
        return FlushStats()


async def test_a_failing_sweep_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = LifecycleScheduler(_FailingLifecycle(), _IdleNotifier())  # type: ignore[arg-type]

    await scheduler.sweep_logged()

    assert "lifecycle sweep failed" in caplog.text
    assert scheduler.last_success is None and not scheduler.healthy()


async def test_the_database_away_is_one_line_when_it_goes_and_one_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lifecycle = _OutageLifecycle()
    scheduler = LifecycleScheduler(lifecycle, _IdleNotifier())  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="bot.lifecycle.scheduler")

    async def sweeps(count: int) -> list[logging.LogRecord]:
        caplog.clear()
        for _ in range(count):
            await scheduler.sweep_logged()
        return list(caplog.records)

    assert await sweeps(2) == []
    lifecycle.away = True
    [down] = await sweeps(5)
    assert "database is unavailable" in down.getMessage() and down.exc_info is None
    lifecycle.away = False
    [back] = await sweeps(3)
    assert "database is back" in back.getMessage() and back.exc_info is None
    lifecycle.broken = True
    bugs = await sweeps(2)
    assert len(bugs) == 2 and all(r.exc_info and r.exc_info[0] is KeyError for r in bugs)


async def test_shutdown_waits_for_the_sweep_in_flight() -> None:
    lifecycle = _SlowLifecycle()
    scheduler = LifecycleScheduler(lifecycle, _IdleNotifier())  # type: ignore[arg-type]
    scheduler.start()
    await lifecycle.entered.wait()  # the catch-up sweep at start is running

    stopping = asyncio.create_task(scheduler.shutdown())
    await asyncio.sleep(0)
    assert not stopping.done()
    lifecycle.release.set()
    await stopping
    lifecycle.events.append("shut down")

    assert lifecycle.events == ["sweep finished", "shut down"]


def test_start_outside_a_running_loop_is_refused() -> None:
    scheduler = LifecycleScheduler(_SlowLifecycle(), _IdleNotifier())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        scheduler.start()


async def test_a_transition_before_the_next_interval_gets_a_sweep_of_its_own(
    service: BookingService, clock: FrozenClock
) -> None:
    """Starts and ends need not wait up to a whole interval: the sweep books one at the instant."""
    await add_gpu(service)
    soon = await book(service, at(8, 10), at(9))  # starts 10 minutes after "now"
    async with FakeSlackWebAPI() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        scheduler = await start_lifecycle(
            service.db, client, service.config, clock, render=render_notices, sweep_seconds=3600
        )
        try:
            await scheduler.sweep()
            job = scheduler._scheduler.get_job(f"gpubook-at-{soon.start.timestamp():.0f}")
            assert job is not None and job.next_run_time == soon.start
            # Once it has started, the next instant that matters is its reminder, 15 min before its end.
            assert await scheduler.lifecycle.next_due(at(8, 10)) == at(8, 45)  # its reminder
        finally:
            await scheduler.shutdown()
