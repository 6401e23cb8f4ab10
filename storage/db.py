"""Engines and transactions for SQLite (embedded default) and PostgreSQL (several replicas).

The capacity check is "read the GPU's bookings, then write": it is only correct if no other
request can write bookings on that GPU in between. On PostgreSQL the service locks the GPU row
with ``SELECT … FOR UPDATE``. SQLite has no row locks and pysqlite's default transaction handling
starts transactions lazily (two writers both read, then both insert), so every write transaction
here starts with ``BEGIN IMMEDIATE``, which takes the database's write lock up front and makes a
second writer — in this process or another — wait for the first to commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

DEFAULT_URL = "sqlite+aiosqlite:///gpubook.db"

#: How long a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Connection execution option: start a deferred (read-only) transaction on SQLite.
_READ_ONLY = "gpubook_read_only"


def normalise_url(url: str) -> str:
    """Map the URL forms hosting platforms hand out onto the async drivers gpubook uses."""
    url = url.strip()
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def create_engine(url: str = DEFAULT_URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``, with the SQLite hooks installed when the URL is SQLite."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        return create_async_engine(url, **kwargs)
    raise ValueError(f"unsupported DATABASE_URL {url!r}: use sqlite:///FILE or postgresql://…")


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Take transaction control away from pysqlite and start each write with BEGIN IMMEDIATE.

    This is SQLAlchemy's documented recipe for pysqlite/aiosqlite; WAL lets readers proceed while
    a writer holds the lock, and the busy timeout makes writers queue instead of failing.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """An engine and the two kinds of transaction the service uses."""

    def __init__(self, url: str = DEFAULT_URL, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, **engine_kwargs)
        self.backend = self.engine.dialect.name
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Writers of this process queue here instead of inside
        # SQLite's busy handler, which sleeps with back-off (measured: 20 concurrent creates ran
        # slower than sequential ones). BEGIN IMMEDIATE still serialises other processes.
        self._sqlite_writer = asyncio.Lock() if self.backend == "sqlite" else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction: committed on success, rolled back on any exception.

        On SQLite it holds the database write lock from its first statement; on PostgreSQL the
        caller locks the rows it decides on (``with_for_update``).
        """
        async with self._writer_turn(), self._sessions() as session, session.begin():
            yield session

    def _writer_turn(self) -> AbstractAsyncContextManager[object]:
        return self._sqlite_writer if self._sqlite_writer is not None else nullcontext()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction that never waits for (or blocks) writers on SQLite."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{_READ_ONLY: True})
            async with AsyncSession(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session

    @property
    def reading_engine(self) -> AsyncEngine:
        """The engine for libraries that only read through an engine of their own making
        (slack-sdk's installation store): its transactions never take SQLite's write lock."""
        return self.engine.execution_options(**{_READ_ONLY: True})

    async def ping(self) -> bool:
        """Whether the database answers a trivial query (for health checks)."""
        try:
            async with self.read() as session:
                await session.execute(text("SELECT 1"))
            return True
        except Exception:  # any failure means "unreachable" to a health check
            return False

    async def backup_to(self, target: Path) -> None:
        """Copy a SQLite database to ``target`` with SQLite's online backup API.

        Safe while the bot runs (it copies a consistent snapshot, pages written meanwhile are
        recopied), unlike copying the file, which can catch a half-written WAL. PostgreSQL has
        ``pg_dump`` for this, so it raises ``ValueError`` there. An existing ``target`` is never
        overwritten (``FileExistsError``).
        """
        if self.backend != "sqlite":
            raise ValueError("backups of PostgreSQL are pg_dump's job: pg_dump DATABASE > FILE")
        source = make_url(self.url).database
        if not source or source == ":memory:":
            raise ValueError("this SQLite database is in memory; there is no file to back up")
        await asyncio.to_thread(_sqlite_backup, Path(source), target)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_backup(source: Path, target: Path) -> None:
    if target.exists():
        raise FileExistsError(target)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
