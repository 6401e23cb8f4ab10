"""Acceptance scenario 16 with real processes: every booking is announced, started, reminded and
ended exactly once in Slack, with two bot replicas on one PostgreSQL database (and one on SQLite).

The replicas (``tests/procs/lifecycle_replica.py``) sweep the same fixed schedule of frozen times
and post to one fake Web API run by this test; coalesced messages list several bookings, so the
test counts ``#<id>`` mentions per kind across every posted message.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.booking import Actor, BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from storage.db import Database
from storage.migrate import upgrade
from tests.conftest import (
    ADMIN,
    CHANNEL,
    PG_SCHEMA,
    T0,
    pg_database,
    require_postgres,
    reset_pg_schema,
)
from tests.procs import run_together
from tests.slackfake import FakeSlackWebAPI
from tests.test_notifier import mentions

pytestmark = pytest.mark.slow

#: Per test run, like every PostgreSQL schema the suite makes: two runs on one server (two
#: developers, CI beside a developer) must never drop or lock each other's tables.
SCHEMA = f"{PG_SCHEMA}_lifecycle"
BOOKINGS = 50
GPUS = 5
#: Starts spread over one minute (08:01:00–08:01:49), each lasting 5 minutes (the shortest allowed).
FIRST_START = T0 + timedelta(minutes=1)
DURATION = timedelta(minutes=5)
#: Every replica sweeps every 10 s of frozen time from 08:00 to 08:08, past every end.
SWEEPS = [T0 + timedelta(seconds=10 * n) for n in range(49)]


async def _seed(db: Database) -> list[int]:
    """GPUs with a channel each (plus the default channel) and 50 bookings, created at 08:00."""
    service = BookingService(
        db, ServiceConfig(admins=frozenset({ADMIN}), default_channel=CHANNEL), FrozenClock(T0)
    )
    admin = Actor(ADMIN)
    for n in range(GPUS):
        await service.add_gpu(admin, f"gpu-{n}", "80GB")
        if n:  # gpu-0 uses the default channel
            await service.edit_gpu(admin, f"gpu-{n}", channel_id=f"CGPU{n}")
    ids = []
    for n in range(BOOKINGS):
        start = FIRST_START + timedelta(seconds=n)
        booking = await service.create(
            Actor(f"U{n:03d}"),
            gpu=f"gpu-{n % GPUS}",
            memory="1GB",
            start=start,
            end=start + DURATION,
            task=f"job {n}",
        )
        ids.append(booking.id)
    return ids


async def _run_replicas(
    url: str, schema: str | None, fake: FakeSlackWebAPI, count: int
) -> list[dict[str, int]]:
    common = [
        f"--url={url}",
        f"--base-url={fake.base_url}",
        f"--channel={CHANNEL}",
        "--times=" + ",".join(t.isoformat() for t in SWEEPS),
    ] + ([f"--schema={schema}"] if schema else [])
    return await run_together(
        "lifecycle_replica", [[f"--worker=replica-{n}", *common] for n in range(count)]
    )


def _assert_exactly_once(fake: FakeSlackWebAPI, ids: list[int], results: list[dict]) -> None:
    posted = fake.calls_to("chat.postMessage")
    # Five-minute bookings are inside the 15-minute reminder window as soon as they start.
    kinds = ("announced", "started", "reminder", "ended")
    expected = Counter({(k, i): 1 for i in ids for k in kinds})
    assert mentions(posted) == expected, fake.describe_calls(200)
    assert sum(r["started"] for r in results) == BOOKINGS
    assert sum(r["ended"] for r in results) == BOOKINGS
    assert sum(r["failed"] for r in results) == 0
    fake.assert_all_valid()


def test_replica_schema_is_private_to_this_run() -> None:
    assert SCHEMA.startswith(PG_SCHEMA) and str(os.getpid()) in SCHEMA


async def test_two_replicas_on_postgresql_post_each_transition_once() -> None:
    url = require_postgres()
    await reset_pg_schema(url, SCHEMA)
    db = pg_database(url, SCHEMA)
    try:
        await upgrade(db)
        ids = await _seed(db)
    finally:
        await db.dispose()
    async with FakeSlackWebAPI() as fake:
        results = await _run_replicas(url, SCHEMA, fake, count=2)
        _assert_exactly_once(fake, ids, results)
        # Coalescing: far fewer channel posts than the 150 channel notifications.
        channel_posts = [
            c for c in fake.calls_to("chat.postMessage") if c.params["channel"][0] == "C"
        ]
        assert len(channel_posts) < 3 * BOOKINGS


async def test_one_replica_on_sqlite_posts_each_transition_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gpubook.db'}"
    db = Database(url)
    try:
        await upgrade(db)
        ids = await _seed(db)
    finally:
        await db.dispose()
    async with FakeSlackWebAPI() as fake:
        results = await _run_replicas(url, None, fake, count=1)
        _assert_exactly_once(fake, ids, results)
