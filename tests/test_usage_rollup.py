"""Usage samples become hourly rows (with running totals) that sum to exactly the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.clock import FrozenClock
from bot.core.measure import Sample, Totals, by_hour
from bot.lifecycle.scheduler import start_lifecycle
from bot.lifecycle.usage_rollup import roll_up, rolled_target
from handlers.blocks.notifications import render as render_notices
from storage.models import UsageHour, UsageSample
from tests.conftest import T0
from tests.slackfake import FakeSlackWebAPI

_samples = st.lists(
    st.builds(
        Sample,
        st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 3), timezones=st.just(UTC)
        ),
        st.integers(0, 45),
        st.integers(0, 80_000),
        st.dictionaries(
            st.sampled_from(["alice", "bob", "?"]),
            st.one_of(st.none(), st.integers(0, 80_000)),
        ),
    ),
    max_size=40,
)


@given(_samples)
def test_hours_sum_to_the_whole(samples: list[Sample]) -> None:
    whole = Totals()
    for sample in samples:
        whole.add(sample)
    merged = Totals()
    for totals in by_hour(samples).values():
        merged.merge(totals)
    assert merged == whole
    assert sum(t.samples for t in by_hour(samples).values()) == len(samples)


async def _report_every(service: BookingService, admin: Actor, clock: FrozenClock, n: int) -> int:
    """``n`` reports 20 minutes apart (a silent agent, so each sample counts 45 s); returns the
    MiB·s measured in all."""
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    identity = await service.authenticate_agent(secret)
    total = 0
    for k in range(n):
        used = 1000 + k
        card = DeviceReading("GPU-1", 0, "RTX", 24564, used, (ProcessReading(9, "alice", used),))
        await service.ingest_report(identity, Report("gpu-host-1", clock(), (card,)))
        total += used * (45 if k else 0)
        clock.advance(timedelta(minutes=20))
    return total


async def _sums(service: BookingService) -> tuple[int, int, int]:
    async with service.db.read() as session:
        rows = list(await session.execute(select(UsageSample.used_mib, UsageSample.seconds)))
        hourly = await session.scalar(select(func.coalesce(func.sum(UsageHour.used_mib_s), 0)))
    return len(rows), sum(u * s for u, s in rows), int(hourly)


async def test_roll_up_sums_passed_steps_and_deletes_only_past_the_retention(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    total = await _report_every(service, admin, clock, 12)  # T0 … T0+3h40m
    now = T0 + timedelta(hours=3, minutes=41)
    # Summed up to 03:40 after T0 (a minute back, down to two): all but the 03:40 sample.
    assert rolled_target(now) == T0 + timedelta(hours=3, minutes=40)
    assert await roll_up(service.db, now, retention=timedelta(hours=2)) == 11
    left, left_mib_s, hourly = await _sums(service)
    # Kept: the samples from the retention's hour on (09:00, an hour after T0), summed or not.
    assert left == 9
    async with service.db.read() as session:
        hours = list(
            await session.execute(select(UsageHour.hour, UsageHour.samples, UsageHour.users))
        )
        unsummed = await session.scalar(
            select(func.sum(UsageSample.used_mib * UsageSample.seconds)).where(
                UsageSample.at >= T0 + timedelta(hours=3, minutes=40)
            )
        )
    assert sorted((h, n) for h, n, _ in hours) == [
        (T0 + timedelta(hours=h), n) for h, n in ((0, 3), (1, 3), (2, 3), (3, 2))
    ]
    assert sum(u["alice"] for _, _, u in hours) == hourly
    assert hourly + unsummed == total
    assert await roll_up(service.db, now, retention=timedelta(hours=2)) == 0
    # Later the rest of the hour under way is added to its row, and every sample past the
    # retention is gone. Each row carries the running totals up to its end.
    later = now + timedelta(days=1)
    assert await roll_up(service.db, later, timedelta(hours=3)) == 1
    assert await _sums(service) == (0, 0, total)
    async with service.db.read() as session:
        rows = list(await session.scalars(select(UsageHour).order_by(UsageHour.hour)))
    running = 0
    for row in rows:
        running += row.used_mib_s
        assert (row.cum_used_mib_s, row.cum_users) == (running, {"alice": running})
    assert running == total


async def test_the_lifecycle_sweep_rolls_up(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    await _report_every(service, admin, clock, 3)
    clock.advance(service.config.usage.retention + timedelta(hours=2))
    async with FakeSlackWebAPI() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        scheduler = await start_lifecycle(
            service.db, client, service.config, clock, render=render_notices
        )
        await scheduler.shutdown()
        result = await scheduler.sweep()
    assert result.usage is not None and result.usage.rolled_up == 3
    assert (await _sums(service))[0] == 0
