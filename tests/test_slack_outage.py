"""Slack down for minutes (HTTP 5xx, or no answer at all): every owed notification is posted
once it is back, promptly, and never twice.

Runs on SQLite and PostgreSQL against the fake Web API's outage switch; the clock is frozen and
stepped sweep by sweep, so twenty minutes of outage take no time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bot.booking import Actor, BookingService
from bot.lifecycle.notifier import RETRY_MAX
from bot.runtime.slack_client import build_client
from tests.conftest import at
from tests.slackfake import FakeSlackWebAPI
from tests.test_lifecycle import add_gpu, book, outbox
from tests.test_notifier import Bot, mentions, posts

SWEEP = timedelta(seconds=30)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as api:
        yield api
        api.assert_all_valid()


@pytest.fixture
def bot(service: BookingService, fake: FakeSlackWebAPI) -> Bot:
    return Bot(service, build_client("xoxb-test", fake.base_url))


async def sweep_until(bot: Bot, start: datetime, end: datetime) -> None:
    """One sweep every 30 s from ``start`` to ``end`` (inclusive), like the scheduler's."""
    now = start
    while now <= end:
        await bot.sweep_at(now)
        now += SWEEP


async def test_everything_owed_through_a_long_outage_is_posted_once_soon_after_it(
    service: BookingService, bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service, "a100-1", channel="CA")
    await add_gpu(service, "a100-2", channel="CB")
    booked = [
        await book(service, at(9), at(10), gpu="a100-1"),
        await book(service, at(9), at(10), gpu="a100-1", actor=Actor("UBOB")),
        await book(service, at(9), at(10), gpu="a100-2"),
    ]
    starts_in_outage = await book(service, at(8, 5), at(10), gpu="a100-2")
    down, back = at(8), at(8, 20)

    fake.outage(503)
    await sweep_until(bot, down, back - SWEEP)
    assert posts(fake) == []
    assert len(fake.calls_to("chat.postMessage", include_failed=True)) > 4
    fake.recover()
    await sweep_until(bot, back, back + RETRY_MAX + SWEEP)

    announced = [("announced", b.id) for b in [*booked, starts_in_outage]]
    assert mentions(posts(fake)) == Counter([*announced, ("started", starts_in_outage.id)])
    assert all(row.sent_at is not None for row in await outbox(service.db))


async def test_posts_that_time_out_are_retried_until_slack_answers_and_sent_once(
    service: BookingService, fake: FakeSlackWebAPI
) -> None:
    client = build_client("xoxb-test", fake.base_url)
    client.timeout = 1  # seconds; Slack's own client waits 30
    bot = Bot(service, client)
    await add_gpu(service)
    booking = await book(service, at(9), at(10))

    fake.outage(hang=True)
    assert (await bot.notifier.flush(at(8))).failed == 1
    [row] = await outbox(service.db)
    assert row.sent_at is None and "TimeoutError" in (row.last_error or "")
    assert (await bot.notifier.flush(row.due_at)).failed == 1
    fake.recover()
    await sweep_until(bot, at(8, 1), at(8, 10))

    assert mentions(posts(fake)) == Counter({("announced", booking.id): 1})
    [row] = await outbox(service.db)
    assert row.sent_at is not None and row.attempts == 3
