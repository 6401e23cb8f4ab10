"""The PostgreSQL engines (:mod:`storage.postgres_driver`), on the real server: dead pooled
connections are replaced before anyone uses them, a connection used a moment ago costs no round
trip (SQLAlchemy's ``pool_pre_ping`` cost three on every checkout), and only the writes that may
be lost to a crash of the server commit without waiting for the flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from storage import postgres_driver
from storage.db import Database, normalise_url
from tests.conftest import pg_database


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    """One pooled connection, so every transaction takes the one the last gave back."""
    database = pg_database(pg_url, pool_size=1, max_overflow=0)
    yield database
    await database.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the connections were asked besides the tests' statements (sent prepared) and
    transaction control: the checks of pooled connections (SQLAlchemy's ``pool_pre_ping`` would
    show here too, as ``;``)."""
    sent: list[str] = []

    def counting(method: Any) -> Any:
        async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            if not query.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                sent.append(query)
            return await method(self, query, *args, **kwargs)

        return counted

    for name in ("execute", "fetchrow", "fetch", "fetchval"):
        monkeypatch.setattr(asyncpg.Connection, name, counting(getattr(asyncpg.Connection, name)))
    return sent


async def backend_pid(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def driver_connection(db: Database) -> asyncpg.Connection:
    """The asyncpg connection in the pool."""
    async with db.engine.connect() as conn:
        return (await conn.get_raw_connection()).driver_connection


async def test_a_connection_given_back_a_moment_ago_is_used_without_a_round_trip(
    db: Database, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_driver, "PING_AFTER", 3600.0)
    first = await backend_pid(db)
    assert [await backend_pid(db) for _ in range(3)] == [first] * 3
    assert pings == []


async def test_a_connection_idle_for_a_while_is_asked_once_per_checkout(
    db: Database, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_driver, "PING_AFTER", 0.0)
    first = await backend_pid(db)
    pings.clear()
    assert [await backend_pid(db) for _ in range(3)] == [first] * 3
    assert pings == [postgres_driver._PING] * 3


async def test_a_connection_the_server_ended_unseen_is_found_by_the_check_and_replaced(
    db: Database, pg_url: str, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_driver, "PING_AFTER", 0.0)
    first = await backend_pid(db)
    end_backend_unseen(pg_url, first)
    pings.clear()
    assert await backend_pid(db) != first
    assert pings == [postgres_driver._PING]  # the dead one's: the new one is not asked


async def end_backend(url: str, pid: int) -> None:
    """The server ends backend ``pid`` (as an administrator's ``pg_terminate_backend`` or an
    ``idle_session_timeout`` does), and this returns once it has gone (5 s at most)."""
    admin = await asyncpg.connect(normalise_url(url).replace("+asyncpg", ""))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
    finally:
        await admin.close()


def end_backend_unseen(url: str, pid: int) -> None:
    """:func:`end_backend` while this test's event loop is blocked, so asyncpg has not read the
    server's goodbye when the pool next hands that connection out: only asking finds it dead."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, end_backend(url, pid)).result()


async def test_a_connection_the_server_ended_while_pooled_is_replaced_without_asking(
    db: Database, pg_url: str, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_driver, "PING_AFTER", 3600.0)
    first = await backend_pid(db)
    goodbye = asyncio.Event()
    (await driver_connection(db)).add_termination_listener(lambda _: goodbye.set())
    await end_backend(pg_url, first)
    async with asyncio.timeout(10):
        await goodbye.wait()  # asyncpg read it on the loop, the connection sitting in the pool
    pings.clear()
    assert await backend_pid(db) != first
    assert pings == []


async def two_backends(db: Database) -> list[int]:
    """The backends of two connections of ``db``'s pool, taken at once; the first given back
    last, so handed out first next time (the pool is last in, first out)."""
    async with db.read() as one, db.read() as other:
        found = [
            (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one() for s in (one, other)
        ]
    return [int(pid) for pid in found]


async def test_one_failed_check_replaces_every_connection_of_the_pool(
    pg_url: str, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server is taken for gone: the other pooled connection, alive, is replaced unasked."""
    monkeypatch.setattr(postgres_driver, "PING_AFTER", 0.0)
    db = pg_database(pg_url, pool_size=2, max_overflow=0)
    try:
        dead, alive = await two_backends(db)
        end_backend_unseen(pg_url, dead)
        pings.clear()
        new = await two_backends(db)
        assert len(set(new)) == 2 and not {dead, alive} & set(new)
        assert pings == [postgres_driver._PING]  # the dead one's, failed; then new ones
    finally:
        await db.dispose()


async def synchronous_commit(db: Database, durable: bool) -> str:
    async with db.write(durable=durable) as session:
        return str((await session.execute(text("SHOW synchronous_commit"))).scalar_one())


async def test_writes_that_need_not_be_durable_commit_without_waiting_for_the_flush(
    db: Database,
) -> None:
    assert await synchronous_commit(db, durable=False) == "off"
    assert await synchronous_commit(db, durable=True) == "on"  # every other write waits
    assert await synchronous_commit(db, durable=False) == "off"
