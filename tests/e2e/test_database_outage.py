"""The database goes away and comes back, under the real HTTP endpoint.

On PostgreSQL the test's private cluster (``tests/pgcluster.py``) is stopped and started again,
as an operator's restart does; on SQLite another process holds the file's write lock for longer
than the busy timeout. Meanwhile every request is still acked at once and answered with the one
sentence saying nothing was changed, ``/healthz`` turns 503 and the sweep fails; afterwards the
bot works again by itself (PostgreSQL's pool replaces the connections the server closed and
reconnects), and every notification owed
is posted once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.booking import BookingService
from bot.core.phrases import WORDING, Code
from bot.lifecycle.notifier import Notifier
from bot.lifecycle.scheduler import LifecycleScheduler
from bot.lifecycle.sweep import Lifecycle
from handlers.blocks.notifications import render as render_notices
from storage.db import Database, DatabaseUnavailable
from storage.migrate import upgrade
from tests.conftest import CHANNEL, at
from tests.e2e.conftest import Bot, dump, submit
from tests.e2e.test_modals import open_form
from tests.e2e.test_ops import fake_client, get
from tests.pgcluster import PrivateCluster
from tests.slackfake import FakeSlackWebAPI
from tests.test_notifier import mentions

UNAVAILABLE = WORDING[Code.DATABASE_UNAVAILABLE]
#: SQLite's busy timeout in these tests: "longer than the busy timeout" then takes no time.
BUSY_TIMEOUT = 0.2
#: Holds a SQLite file's write lock from another process until a line arrives on stdin.
LOCKER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"
)


@dataclass
class Outage:
    """Takes the database away (``begin``) and gives it back (``end``)."""

    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]


class SqliteLocker:
    """Another process holding the write lock of a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: asyncio.subprocess.Process | None = None

    async def begin(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOCKER,
            str(self.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert await asyncio.wait_for(self.proc.stdout.readline(), 30) == b"locked\n"

    async def end(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"\n")
        await self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cluster(backend: str, request: pytest.FixtureRequest) -> PrivateCluster | None:
    return request.getfixturevalue("private_pg") if backend == "postgres" else None


@pytest.fixture
async def db(cluster: PrivateCluster | None, tmp_path: Path) -> AsyncIterator[Database]:
    if cluster is None:
        database = Database(f"sqlite:///{tmp_path / 'gpubook.db'}", busy_timeout=BUSY_TIMEOUT)
    else:
        database = Database(await cluster.new_database())
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def outage(cluster: PrivateCluster | None, tmp_path: Path) -> AsyncIterator[Outage]:
    if cluster is not None:
        yield Outage(cluster.stop_async, cluster.start_async)
        return
    locker = SqliteLocker(tmp_path / "gpubook.db")
    yield Outage(locker.begin, locker.end)
    locker.kill()


def sweeper(service: BookingService, fake: FakeSlackWebAPI) -> LifecycleScheduler:
    """The lifecycle as the bot runs it, swept by hand (the scheduler's timer is not started)."""
    return LifecycleScheduler(
        Lifecycle(service.db, service.config, service.clock),
        Notifier(
            service.db,
            fake_client(fake),
            service.clock,
            render=render_notices,
            default_channel=service.config.default_channel,
        ),
    )


async def health(bot: Bot) -> tuple[int, dict[str, bool]]:
    status, body = await get(f"{bot.url}/healthz")
    return status, json.loads(body)


async def test_while_the_database_is_away_requests_are_answered_and_it_recovers_alone(
    bot: Bot, outage: Outage, fake: FakeSlackWebAPI, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.add_gpu()
    lifecycle = sweeper(bot.service, fake)
    assert "Booked" in dump(await bot.command("book rtx-0 1GB 10:00 for 1h before"))
    form = await open_form(bot)

    await outage.begin()
    during = await bot.command("book rtx-0 1GB 11:00 for 1h during")  # acked: 200, empty
    status, ack = await submit(
        bot, form, gpu="rtx-0", memory="1GB", start=int(at(12).timestamp()), task="form"
    )
    sick = await health(bot)
    with pytest.raises(DatabaseUnavailable):
        await lifecycle.sweep()
    caplog.clear()
    for _ in range(3):
        await lifecycle.sweep_logged()
    await outage.end()
    # Sweeps while it is away: one line, no traceback (storage.db said why when it went).
    assert [r.name for r in caplog.records if r.name.startswith("bot.")] == [
        "bot.lifecycle.scheduler"
    ]
    assert [r for r in caplog.records if r.exc_info] == []

    assert UNAVAILABLE in dump(during)
    assert status == 200 and list(ack["errors"].values()) == [UNAVAILABLE]
    assert sick == (503, {"ok": False, "database": False})
    assert await health(bot) == (200, {"ok": True, "database": True})
    assert "Booked" in dump(await bot.command("book rtx-0 1GB 13:00 for 1h after"))
    await lifecycle.sweep()
    await lifecycle.sweep()
    booked = await bot.bookings()
    assert sorted(b.task for b in booked) == ["after", "before"]
    announced = mentions(
        [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == CHANNEL]
    )
    assert announced == Counter(("announced", b.id) for b in booked)


async def test_writers_queued_behind_a_locked_sqlite_file_hear_at_once(tmp_path: Path) -> None:
    """This process's writers queue for SQLite's lock; once the first has waited out the busy
    timeout, those queued behind it fail at once (no cause of their own) instead of each
    waiting it out again in turn."""
    db = Database(f"sqlite:///{tmp_path / 'gpubook.db'}", busy_timeout=BUSY_TIMEOUT)
    await upgrade(db)
    locker = SqliteLocker(tmp_path / "gpubook.db")
    await locker.begin()
    try:
        outcomes = await asyncio.gather(*(_write(db) for _ in range(6)), return_exceptions=True)
    finally:
        await locker.end()
        await db.dispose()

    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes)
    waited, *queued = outcomes
    assert isinstance(waited.__cause__, Exception)
    assert [o.__cause__ for o in queued] == [None] * len(queued)


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not once per failed transaction: requests and sweeps keep failing until it is back."""
    db = Database(f"sqlite:///{tmp_path / 'gpubook.db'}", busy_timeout=BUSY_TIMEOUT)
    await upgrade(db)
    caplog.set_level(logging.INFO, logger="storage.db")
    locker = SqliteLocker(tmp_path / "gpubook.db")
    await locker.begin()
    try:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                await _write(db)
    finally:
        await locker.end()
    for _ in range(2):
        await _write(db)
    await db.dispose()

    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "storage.db"]
    assert said == [
        ("WARNING", "the database is unavailable: OperationalError: database is locked"),
        ("INFO", "the database is back"),
    ]


async def _write(db: Database) -> None:
    async with db.write() as session:  # its BEGIN IMMEDIATE goes with its first statement
        await session.execute(text("SELECT 1"))
