"""Alembic environment: async engines, batch mode for SQLite, and a shared connection.

``storage.migrate.upgrade`` hands Alembic an already-open connection (so migrations run inside the
bot's event loop and under the same locking as everything else); the ``alembic`` command line
gets a fresh engine from ``DATABASE_URL`` instead.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from storage.db import DEFAULT_URL, create_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", DEFAULT_URL)
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", DEFAULT_URL)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run_on)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_with_new_engine())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
