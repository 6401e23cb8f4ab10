"""Applying the schema: Alembic migrations, run by ``gpubook db upgrade`` and at bot start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database, DatabaseUnusable

MIGRATIONS = Path(__file__).with_name("migrations")

#: Arbitrary key for the PostgreSQL advisory lock that serialises replicas upgrading at once.
_UPGRADE_LOCK_KEY = 0x6770_7562_6F6F_6B  # "gpubook"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at gpubook's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` inside one transaction on ``db``'s own engine.

    Several replicas may start together: on PostgreSQL an advisory lock makes them take turns,
    on SQLite the write transaction's ``BEGIN IMMEDIATE`` does the same. Every process touches
    the database here first, so any failure is raised as :class:`DatabaseUnusable`.
    """
    try:
        async with db.engine.begin() as conn:
            if db.backend == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK_KEY}
                )
            await conn.run_sync(_upgrade_on, revision)
    except Exception as error:  # whatever the driver raises: asyncpg's, sqlite3's, an OSError
        raise DatabaseUnusable(db.url, error) from error


def _upgrade_on(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    from alembic.runtime.migration import MigrationContext

    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
