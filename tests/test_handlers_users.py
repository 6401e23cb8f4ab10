"""UserDirectory: users.info cached per user, shared while in flight, never failing a request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from handlers.users import UNKNOWN, UserDirectory
from tests.slackfake import FakeSlackWebAPI


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlackWebAPI) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def test_zone_and_admin_flags(fake: FakeSlackWebAPI, client: AsyncWebClient) -> None:
    fake.set_user("U1", tz="Europe/Berlin", is_admin=True)
    fake.set_user("U2", is_owner=True)
    fake.set_user("U3", tz="Mars/Olympus")
    users = UserDirectory()
    first = await users.get(client, "T1", "U1")
    assert (first.tz, first.is_workspace_admin) == (ZoneInfo("Europe/Berlin"), True)
    assert (await users.get(client, "T1", "U2")).is_workspace_admin is True
    assert (await users.get(client, "T1", "U3")).tz == ZoneInfo("UTC")
    assert (await users.get(client, "T1", "U4")) == UNKNOWN


async def test_cached_until_ttl(fake: FakeSlackWebAPI, client: AsyncWebClient) -> None:
    ticker = Ticker()
    users = UserDirectory(ttl=100, monotonic=ticker)
    fake.set_user("U1", tz="Asia/Tokyo")
    await users.get(client, "T1", "U1")
    ticker.now = 99
    await users.get(client, "T1", "U1")
    assert len(fake.calls_to("users.info")) == 1
    assert users.cached("T1", "U1").tz == ZoneInfo("Asia/Tokyo")  # read without asking Slack
    assert users.cached("T1", "U2") is None
    ticker.now = 101
    assert users.cached("T1", "U1") is None
    fake.set_user("U1", tz="Europe/Paris")
    assert (await users.get(client, "T1", "U1")).tz == ZoneInfo("Europe/Paris")
    assert len(fake.calls_to("users.info")) == 2


async def test_concurrent_lookups_share_one_call(
    fake: FakeSlackWebAPI, client: AsyncWebClient
) -> None:
    users = UserDirectory()
    profiles = await asyncio.gather(*(users.get(client, "T1", "U1") for _ in range(20)))
    assert len(set(profiles)) == 1
    assert len(fake.calls_to("users.info")) == 1


async def test_failures_fall_back_to_utc_and_retry_soon(
    fake: FakeSlackWebAPI, client: AsyncWebClient
) -> None:
    ticker = Ticker()
    users = UserDirectory(ttl=3600, failure_ttl=60, monotonic=ticker)
    fake.set_user("U1", tz="Asia/Tokyo")
    fake.fail_next("users.info", error="user_not_found")
    assert await users.get(client, "T1", "U1") == UNKNOWN
    ticker.now = 30
    assert await users.get(client, "T1", "U1") == UNKNOWN
    ticker.now = 61
    assert (await users.get(client, "T1", "U1")).tz == ZoneInfo("Asia/Tokyo")


class SlowClient:
    """A client whose users.info answers only when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def users_info(self, *, user: str) -> dict[str, Any]:
        await self.release.wait()
        return {"user": {"id": user, "tz": "Asia/Tokyo"}}


async def test_a_deadline_answers_utc_while_the_lookup_fills_the_cache() -> None:
    slow = SlowClient()
    users = UserDirectory()
    assert await users.get(slow, "T1", "U1", max_wait=0) == UNKNOWN  # type: ignore[arg-type]
    slow.release.set()
    assert (await users.get(slow, "T1", "U1")).tz == ZoneInfo("Asia/Tokyo")  # type: ignore[arg-type]
    await users.close()


async def test_the_cache_keeps_at_most_max_entries_dropping_the_oldest_fetched(
    fake: FakeSlackWebAPI, client: AsyncWebClient
) -> None:
    ticker = Ticker()
    users = UserDirectory(ttl=100, max_entries=2, monotonic=ticker)
    for user in ("U1", "U2", "U3"):
        fake.set_user(user, tz="Asia/Tokyo")
    await users.get(client, "T1", "U1")
    await users.get(client, "T1", "U2")
    ticker.now = 50  # nothing has expired
    users.forget("T1", "U1")
    await users.get(client, "T1", "U1")  # fetched again: now the newest
    await users.get(client, "T1", "U3")  # one too many: U2, fetched longest ago, goes
    assert users.cached("T1", "U2") is None
    assert users.cached("T1", "U1") is not None
    assert users.cached("T1", "U3") is not None
    await users.get(client, "T1", "U2")
    assert len(fake.calls_to("users.info")) == 5
