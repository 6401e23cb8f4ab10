"""Shared fixtures: databases (a real SQLite file and the real PostgreSQL), a frozen clock, the service.

PostgreSQL tests use ``GPUBOOK_TEST_PG_URL`` (default: the local server, database ``test``) in a
schema of their own that is dropped and recreated per test. Locally, an unreachable server skips
them with one line of reason; with ``CI=true`` it fails the run, so CI can never go green
without having exercised PostgreSQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.booking import Actor, BookingService, ServiceConfig
from bot.core.clock import FrozenClock
from bot.core.errors import GpubookError
from handlers.wording import SlackText
from storage.db import Database, normalise_url
from storage.migrate import upgrade
from tests.pgcluster import PrivateCluster, require_server_binaries

PG_URL = os.environ.get("GPUBOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: One schema per test process, so parallel runs on one server (two checkouts, CI beside a
#: developer) never drop each other's tables.
PG_SCHEMA = f"gpubook_test_{os.getpid()}"
#: Monday 5 January 2026, 08:00 UTC: "now" in service tests.
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ADMIN = "UADMIN"
CHANNEL = "CGPU"


def said(error: GpubookError, now: datetime | None = None) -> str:
    """A refusal as Slack shows it (mrkdwn, in UTC) at ``now`` (default: the tests' T0)."""
    return error.render(SlackText(UTC, now or T0))


@contextmanager
def refused(
    kind: type[GpubookError], saying: str, now: datetime | None = None
) -> Iterator[pytest.ExceptionInfo[GpubookError]]:
    """Like ``pytest.raises(kind, match=saying)``, matched against the Slack rendering."""
    with pytest.raises(kind) as info:
        yield info
    text = said(info.value, now)
    assert re.search(saying, text), f"{saying!r} not found in {text!r}"


def at(hour: int, minute: int = 0, day: int = 5) -> datetime:
    """A time on the test calendar (January 2026, UTC)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


async def _pg_reachable(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(
            asyncpg.connect(normalise_url(url).replace("+asyncpg", "")), 5
        )
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@functools.cache
def _pg_problem(url: str) -> str | None:
    # In a thread of its own: callers may already be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _pg_reachable(url)).result()


def require_postgres() -> str:
    """The PostgreSQL URL, or skip (locally) / fail (CI) when no server answers."""
    problem = _pg_problem(PG_URL)
    if problem is not None:
        message = f"PostgreSQL at {PG_URL} is not reachable ({problem})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(message)
    return PG_URL


@pytest.fixture(scope="session")
def pg_url() -> str:
    return require_postgres()


async def reset_pg_schema(url: str, schema: str = PG_SCHEMA, *, create: bool = True) -> None:
    """Drop ``schema`` with everything in it and (unless ``create`` is false) make it anew."""
    import asyncpg

    conn = await asyncpg.connect(normalise_url(url).replace("+asyncpg", ""))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            await conn.execute(f"CREATE SCHEMA {schema}")
            _schemas_made.add((url, schema))
    finally:
        await conn.close()


_schemas_made: set[tuple[str, str]] = set()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the schemas this run made, so repeated local runs leave nothing behind."""
    for url, schema in sorted(_schemas_made):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, reset_pg_schema(url, schema, create=False)).result()


def pg_database(url: str, schema: str = PG_SCHEMA, **kwargs) -> Database:
    """A Database on ``url`` whose connections work in ``schema``."""
    return Database(url, connect_args={"server_settings": {"search_path": schema}}, **kwargs)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def blank_database(backend: str, tmp_path: Path) -> Database:
    """An empty, not yet migrated database: a SQLite file, or a fresh schema on the real
    PostgreSQL."""
    if backend == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'gpubook.db'}")
    url = require_postgres()
    await reset_pg_schema(url)
    return pg_database(url)


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database: a SQLite file, or a fresh schema on the real PostgreSQL."""
    database = await blank_database(backend, tmp_path)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def service(db: Database, clock: FrozenClock) -> BookingService:
    config = ServiceConfig(admins=frozenset({ADMIN}), default_channel=CHANNEL)
    return BookingService(db, config, clock)


@pytest.fixture
def admin() -> Actor:
    return Actor(ADMIN)


@pytest.fixture(scope="session")
def private_pg_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL server of this test run's own (see ``tests/pgcluster.py``), never 5432."""
    cluster = PrivateCluster(require_server_binaries())
    cluster.init()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def private_pg(private_pg_cluster: PrivateCluster) -> Iterator[PrivateCluster]:
    """The private cluster, for a test that may stop it: running again once the test is over."""
    yield private_pg_cluster
    if not private_pg_cluster.running:
        private_pg_cluster.start()
