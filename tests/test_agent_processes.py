"""Live usage with real processes: a `gpubook serve` and a `gpubook agent` (stand-in probe).

The agent re-reads its stand-in file before every report, so the test "starts processes" on the
cards by rewriting it. Settings shrink the time scales (a report and a sweep every second, idle
after 5 s) so nothing waits half an hour; every wait polls the fake Slack or the database until
a deadline, and nothing asserts how long anything took.

Over-use, unbooked use and an idle booking each bring their user exactly one DM: a fourth
finding, made after the first three were told, is the proof that later sweeps ran and said
nothing again. A forged token, a revoked one and an oversized report are refused with their
status codes, and nothing of them is stored — while the real agent goes on reporting.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.booking import Actor, BookingService
from bot.booking.agents import TOKEN_PREFIX
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AgentDevice, AgentHost, AgentToken, AuditEntry, UsageSample
from tests.e2e.conftest import dump
from tests.procs.serve import Agent, Replica, start_agent, start_replica
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req

pytestmark = pytest.mark.slow

GB = 1024
TEAM = slack_req.TEAM_ID
ADMIN = Actor("UADMIN", TEAM, True)
HOST = "gpu-host-1"
CARDS = ("GPU-11111111-0000", "GPU-11111111-0001")
LOGINS = {"UA": "alice", "UB": "bob", "UC": "carol", "UD": "dave"}
#: Long enough for a loaded machine to start both processes, short enough to fail usefully.
DEADLINE = 90.0
SETTINGS = {
    "GPUBOOK_CHANNEL": "CGPU",
    "GPUBOOK_SWEEP_SECONDS": "1",
    "GPUBOOK_AGENT_INTERVAL": "1s",
    "GPUBOOK_IDLE_AFTER": "8s",
}


def cards(**on_card: dict[str, int]) -> list[dict[str, Any]]:
    """The stand-in file's devices: ``card0={"alice": 15 * GB}`` puts alice's process there."""
    devices = []
    for index, uuid in enumerate(CARDS):
        users = on_card.get(f"card{index}", {})
        processes = [
            {"pid": 100 * index + n, "user": login, "used_mib": mib}
            for n, (login, mib) in enumerate(users.items(), 1)
        ]
        devices.append(
            {
                "uuid": uuid,
                "index": index,
                "name": "Stand-in",
                "total_mib": 24 * GB,
                "used_mib": sum(users.values()),
                "processes": processes,
            }
        )
    return devices


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE}s")
        await asyncio.sleep(0.2)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as api:
        yield api


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gpubook.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def replica(db: Database, fake: FakeSlackWebAPI) -> AsyncIterator[Replica]:
    started = await start_replica(
        {"DATABASE_URL": db.url, "SLACK_API_URL": fake.base_url, **SETTINGS}
    )
    yield started
    await started.stop()


async def _workspace(service: BookingService) -> dict[str, str]:
    """Two bound cards, four linked people, alice and carol booked now; the tokens by name."""
    for index, uuid in enumerate(CARDS):
        await service.add_gpu(ADMIN, f"rtx-{index}", "24GB")
        await service.edit_gpu(ADMIN, f"rtx-{index}", device_uuid=uuid)
    for user, login in LOGINS.items():
        await service.link_login(Actor(user, TEAM), login)
    now = service.clock()
    for user, gpu in (("UA", "rtx-0"), ("UC", "rtx-1")):
        await service.create(
            Actor(user, TEAM),
            gpu=gpu,
            memory="10GB",
            start=now,
            end=now + timedelta(hours=3),
            task="train",
        )
    tokens = {}
    for name, host in (("agent", HOST), ("revoked", "gpu-host-2"), ("other", "gpu-host-3")):
        _, tokens[name] = await service.create_agent_token(ADMIN, host)
    await service.revoke_agent_token(ADMIN, "gpu-host-2")
    return tokens


def _dms(fake: FakeSlackWebAPI) -> dict[str, list[str]]:
    """The messages posted to each person's DM (channel = their user id), as text."""
    found: dict[str, list[str]] = {}
    for call in fake.calls_to("chat.postMessage"):
        channel = call.params["channel"]
        if channel in LOGINS:
            found.setdefault(channel, []).append(dump(call))
    return found


async def _reports_stored(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(UsageSample)) or 0)


async def test_over_use_unbooked_use_and_an_idle_booking_each_dm_their_user_once(
    db: Database, fake: FakeSlackWebAPI, replica: Replica
) -> None:
    service = BookingService(db)
    tokens = await _workspace(service)
    agent = await start_agent(replica.url, tokens["agent"], HOST, cards(card0={"alice": 9 * GB}))
    try:
        await _live_usage_scenario(db, fake, agent)
        await _refused_reports_store_nothing(db, replica, tokens)
        assert agent.proc.returncode is None, agent.log.read_text()
    finally:
        await agent.stop()
    assert "Traceback" not in agent.log.read_text()


async def _live_usage_scenario(db: Database, fake: FakeSlackWebAPI, agent: Agent) -> None:
    # Alice within her booking for two reports per card: nothing to say yet (her 9 GB of 10).
    await until(lambda: _more_than(db, 4), "two reports of each card stored")
    assert not _dms(fake)
    # Alice runs over her booking, bob runs without one; carol never comes.
    agent.cards(cards(card0={"alice": 15 * GB, "bob": 3 * GB}))

    async def told(*users: str) -> bool:
        return set(users) <= set(_dms(fake))

    await until(lambda: told("UA", "UB", "UC"), "over-use, unbooked and idle DMs")
    # Dave starts on carol's card: his DM comes from a sweep after the first three were told.
    agent.cards(cards(card0={"alice": 15 * GB, "bob": 3 * GB}, card1={"dave": 2 * GB}))
    await until(lambda: told("UD"), "dave's unbooked-use DM")
    dms = _dms(fake)
    assert {user: len(texts) for user, texts in dms.items()} == dict.fromkeys(LOGINS, 1)
    assert "use 15 GB, but your bookings there hold 10 GB" in dms["UA"][0]
    assert "you have no booking there" in dms["UB"][0] and "Book 3 GB until" in dms["UB"][0]
    assert "has had no process of yours" in dms["UC"][0]
    assert "you have no booking there" in dms["UD"][0] and "Book 2 GB until" in dms["UD"][0]
    fake.assert_all_valid()


async def _more_than(db: Database, samples: int) -> bool:
    return await _reports_stored(db) >= samples


async def _refused_reports_store_nothing(
    db: Database, replica: Replica, tokens: dict[str, str]
) -> None:
    before = await _agent_rows(db)
    big = cards(card0={f"user{n}": 1 for n in range(40_000)})  # well over a megabyte
    attempts = (
        (TOKEN_PREFIX + secrets.token_urlsafe(32), "gpu-host-2", cards(), 401, "bad_token"),
        (tokens["revoked"], "gpu-host-2", cards(), 401, "bad_token"),
        (tokens["other"], "gpu-host-3", big, 413, "too_large"),
    )
    async with aiohttp.ClientSession() as http:
        for token, host, devices, status, error in attempts:
            report = {"host": host, "sent_at": "2026-12-01T09:00:00Z", "devices": devices}
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{replica.url}/agent/report"
            async with http.post(url, json=report, headers=headers) as resp:
                answer = await resp.json()
            assert (resp.status, answer["error"]) == (status, f"report_{error}"), answer
    after = await _agent_rows(db)
    assert after["hosts"] == before["hosts"] == [HOST]
    assert after["cards"] == before["cards"] == sorted(CARDS)
    assert after["tokens"] == before["tokens"]
    assert after["audit"] == before["audit"]


async def _agent_rows(db: Database) -> dict[str, Any]:
    """What an ingested report would change besides the real agent's own rows."""
    async with db.read() as session:
        hosts = sorted(await session.scalars(select(AgentHost.host)))
        uuids = sorted(await session.scalars(select(AgentDevice.uuid)))
        tokens = {
            t.host: (t.revoked_at, t.last_used_at)
            for t in await session.scalars(select(AgentToken).where(AgentToken.host != HOST))
        }
        audit = await session.scalar(select(func.count()).select_from(AuditEntry))
    return {"hosts": hosts, "cards": uuids, "tokens": tokens, "audit": audit}
