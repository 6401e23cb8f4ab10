"""Storage: the UTC column type, URL normalisation, migrations and SQLite connection settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database, normalise_url
from storage.migrate import alembic_config, current_revision, upgrade
from storage.models import Base, Gpu
from tests.conftest import PG_SCHEMA, T0, pg_database, require_postgres, reset_pg_schema

STORAGE_SCHEMA = f"{PG_SCHEMA}_storage"


# ---------------------------------------------------------------------------- UTCDateTime


def _gpu(created_at: datetime) -> Gpu:
    return Gpu(team_id="T", name="rtx-0", capacity_mib=1024, created_at=created_at, updated_at=T0)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.write() as session:
            session.add(_gpu(datetime(2026, 1, 5, 8, 0)))
    async with db.read() as session:
        assert list(await session.scalars(select(Gpu))) == []


@pytest.mark.parametrize(
    "written",
    [T0, datetime(2026, 7, 1, 23, 30, 15, 123456, tzinfo=ZoneInfo("America/Los_Angeles"))],
    ids=["utc", "los-angeles"],
)
async def test_aware_datetimes_come_back_as_the_same_instant_in_utc(
    db: Database, written: datetime
) -> None:
    async with db.write() as session:
        session.add(_gpu(written))
    async with db.read() as session:
        read = await session.scalar(select(Gpu.created_at))
    assert read == written
    assert read.tzinfo is UTC


# ---------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("  postgresql+psycopg2://u@h/d ", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:///gpubook.db", "sqlite+aiosqlite:///gpubook.db"),
        ("sqlite:////var/lib/gpubook.db", "sqlite+aiosqlite:////var/lib/gpubook.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


# ---------------------------------------------------------------------------- migrations


@pytest.fixture
async def empty_db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables at all (the ``db`` fixture comes already migrated)."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    else:
        url = require_postgres()
        await reset_pg_schema(url, STORAGE_SCHEMA)
        database = pg_database(url, STORAGE_SCHEMA)
    yield database
    await database.dispose()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _schema_differences(connection: Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(connection), Base.metadata)


async def test_upgrade_reaches_head_is_idempotent_and_matches_the_models(
    empty_db: Database,
) -> None:
    assert await current_revision(empty_db) is None
    await upgrade(empty_db)
    assert await current_revision(empty_db) == _head()
    await upgrade(empty_db)
    assert await current_revision(empty_db) == _head()
    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(_schema_differences) == []


# ---------------------------------------------------------------------------- SQLite settings


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_connections_use_wal_and_foreign_keys(db: Database) -> None:
    for transaction in (db.read, db.write):
        async with transaction() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_reads_within_one_read_share_its_transaction_in_its_task_only(
    db: Database,
) -> None:
    async def elsewhere() -> AsyncSession:
        async with db.read() as own:
            await own.scalars(select(Gpu))
            return own

    async with db.one_read():
        async with db.read() as first:
            assert list(await first.scalars(select(Gpu))) == []
        async with db.write() as session:  # writes keep their own transactions
            session.add(_gpu(T0))
        async with db.read() as second:
            assert second is first
        assert await asyncio.create_task(elsewhere()) is not first  # a session serves one task
    async with db.read() as after:
        assert after is not first
        assert len(list(await after.scalars(select(Gpu)))) == 1


async def test_a_snapshot_read_sees_the_database_as_of_its_first_statement(db: Database) -> None:
    """A write committing mid-read is not seen by a snapshot read (SQLite's WAL, PostgreSQL's
    REPEATABLE READ), which does not join a shared one_read on PostgreSQL (READ COMMITTED)."""
    async with db.read(snapshot=True) as session:
        assert list(await session.scalars(select(Gpu))) == []
        async with db.write() as writer:
            writer.add(_gpu(T0))
        assert list(await session.scalars(select(Gpu))) == []
    async with db.one_read(), db.read() as shared, db.read(snapshot=True) as snapshot:
        assert (snapshot is shared) == (db.backend == "sqlite")


def test_developers_alembic_config_sees_no_pending_model_changes(tmp_path) -> None:
    """`alembic -c storage/alembic.ini` (README: adding a migration) works, and the models hold
    nothing the migrations lack."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    alembic = Path(sys.executable).with_name("alembic")
    config = Path(__file__).resolve().parents[1] / "storage" / "alembic.ini"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}"}
    for command in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [str(alembic), "-c", str(config), *command], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
