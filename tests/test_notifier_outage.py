"""The database goes away between Slack taking a post and the notifier recording it.

Against the test's private PostgreSQL cluster (``tests/pgcluster.py``), stopped right after the
post, as a restart would: the notifier must remember what it posted and record it once the
database is back, or the claim's lease lapses and the message is posted a second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.booking import BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.lifecycle.notifier import Notifier
from handlers.blocks.notifications import render as render_notices
from storage.db import Database, DatabaseUnavailable
from storage.migrate import upgrade
from tests.conftest import ADMIN, CHANNEL, T0, at
from tests.pgcluster import PrivateCluster
from tests.slackfake import FakeSlackWebAPI
from tests.test_lifecycle import add_gpu, book, outbox
from tests.test_notifier import mentions, posts


class DatabaseStopsAfterPosting(AsyncWebClient):
    """Posts for real, then stops the database before the notifier can record the post."""

    def __init__(self, cluster: PrivateCluster, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:  # noqa: N802
        response = await super().chat_postMessage(**kwargs)
        if self.cluster.running:
            await self.cluster.stop_async()
        return response


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as api:
        yield api


@pytest.fixture
async def service(private_pg: PrivateCluster) -> AsyncIterator[BookingService]:
    db = Database(await private_pg.new_database())
    await upgrade(db)
    config = ServiceConfig(admins=frozenset({ADMIN}), default_channel=CHANNEL)
    yield BookingService(db, config, FrozenClock(T0))
    await db.dispose()


async def test_a_post_the_database_missed_is_recorded_when_it_is_back_not_posted_again(
    service: BookingService, private_pg: PrivateCluster, fake: FakeSlackWebAPI
) -> None:
    await add_gpu(service)
    booking = await book(service, at(9), at(10))
    client = DatabaseStopsAfterPosting(private_pg, token="xoxb-test", base_url=fake.base_url)
    lease = timedelta(minutes=2)
    notifier = Notifier(
        service.db,
        client,
        service.clock,
        render=render_notices,
        lease=lease,
        default_channel=CHANNEL,
    )

    with pytest.raises(DatabaseUnavailable):
        await notifier.flush(at(8))
    await private_pg.start_async()
    await notifier.flush(at(8) + lease + timedelta(minutes=1))  # the claim's lease has lapsed
    await notifier.flush(at(8, 30))

    assert mentions(posts(fake)) == Counter({("announced", booking.id): 1})
    [row] = await outbox(service.db)
    assert row.sent_at == at(8) and row.slack_ts is not None
