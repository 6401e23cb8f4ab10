"""``kill -9`` of one of two `gpubook serve` replicas in the middle of a burst of bookings.

Two real processes on one PostgreSQL database (the test's private cluster, see
``tests/pgcluster.py``) take signed `/gpubook book` requests over HTTP; once the doomed one has
confirmed a few, it is killed without warning. Every booking anyone was told "Booked" about is in
the database, every booking there is whole (its audit entry and its announcement were written
with it), and the surviving replica answers everything it acked, then carries on.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import Actor, BookingService
from bot.core.vocabulary import AuditAction, NoticeKind
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AuditEntry, Booking, Gpu, Notification
from tests.pgcluster import PrivateCluster
from tests.procs.serve import Replica, start_replica
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES

pytestmark = pytest.mark.slow

GPUS = 4
PER_REPLICA = 40
#: The doomed replica is killed once it has confirmed this many bookings.
KILL_AFTER = 5
BOOKED = re.compile(r"Booked #(\d+)")


@dataclass(frozen=True)
class Sent:
    """One request of the burst: who it went to, and whether that replica acked it."""

    name: str
    replica: str
    index: int
    acked: bool


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as api:
        yield api


@pytest.fixture
async def db(private_pg_cluster: PrivateCluster) -> AsyncIterator[Database]:
    database = Database(await private_pg_cluster.new_database())
    await upgrade(database)
    service = BookingService(database)
    for n in range(GPUS):
        await service.add_gpu(Actor("UADMIN", slack_req.TEAM_ID, True), f"gpu-{n}", "80GB")
    yield database
    await database.dispose()


@pytest.fixture
async def replicas(db: Database, fake: FakeSlackWebAPI) -> AsyncIterator[dict[str, Replica]]:
    settings = {"DATABASE_URL": db.url, "SLACK_API_URL": fake.base_url, "GPUBOOK_CHANNEL": "CGPU"}
    started = await asyncio.gather(start_replica(settings), start_replica(settings))
    yield dict(zip(("doomed", "survivor"), started, strict=True))
    for replica in started:
        if replica.proc.returncode is None:
            replica.kill()
        await replica.proc.wait()


async def send(
    http: aiohttp.ClientSession, fake: FakeSlackWebAPI, replica: Replica, name: str, index: int
) -> Sent:
    req = slack_req.slash_command(
        f"book gpu-{index % GPUS} 1GB tomorrow 10:00 for 1h burst {index}",
        user_id=f"U{index:04d}",
        response_url=fake.response_url(f"{name}-{index}"),
    )
    try:
        async with http.post(
            f"{replica.url}/slack/events", data=req.body, headers=req.headers
        ) as r:
            acked, answer = r.status == 200, await r.text()
    except aiohttp.ClientError:  # the replica died with the request in flight
        acked, answer = False, ""
    if answer:  # answered in the ack rather than through the response_url
        fake.record_ack(f"{name}-{index}", json.loads(answer))
    return Sent(f"{name}-{index}", name, index, acked)


def confirmed(fake: FakeSlackWebAPI) -> dict[str, int]:
    """Request name → booking id, for every reply that said "Booked"."""
    found = {}
    for call in fake.calls_to(REPLIES):
        match = BOOKED.search(call.params.get("text", ""))
        if match and call.name:
            found[call.name] = int(match.group(1))
    return found


async def test_a_replica_killed_mid_burst_loses_nothing_it_confirmed(
    replicas: dict[str, Replica], fake: FakeSlackWebAPI, db: Database
) -> None:
    doomed, survivor = replicas["doomed"], replicas["survivor"]
    async with aiohttp.ClientSession() as http:
        burst = [
            asyncio.create_task(send(http, fake, replica, name, i))
            for i in range(PER_REPLICA)
            for name, replica in replicas.items()
        ]
        await fake.wait_for(
            REPLIES, KILL_AFTER, timeout=60, predicate=lambda c: c.name.startswith("doomed")
        )
        doomed.kill()
        sent = await asyncio.gather(*burst)
        survivor_acked = [s for s in sent if s.replica == "survivor" and s.acked]
        await fake.wait_for(
            REPLIES,
            len(survivor_acked),
            timeout=60,
            predicate=lambda c: c.name.startswith("survivor-"),
        )
        after = [await send(http, fake, survivor, "after", PER_REPLICA + i) for i in range(10)]
    await fake.wait_for(REPLIES, 10, timeout=60, predicate=lambda c: c.name.startswith("after-"))

    replies = confirmed(fake)
    from_doomed = [name for name in replies if name.startswith("doomed-")]
    assert KILL_AFTER <= len(from_doomed) < PER_REPLICA  # killed in the middle of its share
    assert len(survivor_acked) == PER_REPLICA  # the other replica acked its whole share...
    assert all(s.name in replies for s in [*survivor_acked, *after])  # ...and booked it
    assert all(s.acked for s in after)
    async with db.read() as session:
        rows = {b.id: b for b in await session.scalars(select(Booking))}
        created = await _count_by_booking(
            session, AuditEntry, AuditEntry.action, AuditAction.CREATE
        )
        announced = await _count_by_booking(
            session, Notification, Notification.kind, NoticeKind.ANNOUNCED
        )
        gpus = {g.id: g.name for g in await session.scalars(select(Gpu))}
    for name, booking_id in replies.items():
        index = int(name.rsplit("-", 1)[1])
        booking = rows[booking_id]
        assert (booking.user_id, booking.task) == (f"U{index:04d}", f"burst {index}")
        assert gpus[booking.gpu_id] == f"gpu-{index % GPUS}"
    assert created == announced == dict.fromkeys(rows, 1)  # every booking whole, nothing else
    assert await survivor.healthy()


async def _count_by_booking(
    session: AsyncSession, model: type[AuditEntry | Notification], column: Any, value: str
) -> dict[int, int]:
    """How many rows of ``model`` with ``column == value`` each booking has."""
    query = select(model.booking_id, func.count()).where(column == value).group_by(model.booking_id)
    return {booking: count for booking, count in (await session.execute(query)).tuples()}
