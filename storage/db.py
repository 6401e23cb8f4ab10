"""Engines and transactions for SQLite (embedded default) and PostgreSQL (several replicas).

The capacity check is "read the GPU's bookings, then write": it is only correct if no other
request can write bookings on that GPU in between. On PostgreSQL the service locks the GPU row
with ``SELECT … FOR UPDATE``. SQLite has no row locks and pysqlite's default transaction handling
starts transactions lazily (two writers both read, then both insert), so every write transaction
here starts with ``BEGIN IMMEDIATE``, which takes the database's write lock up front and makes a
second writer — in this process or another — wait for the first to commit.

When the database goes away (PostgreSQL restarting or unreachable, the SQLite file locked by
another process past the busy timeout), every transaction fails with one error,
:class:`DatabaseUnavailable`: a refusal like any other, so each interface tells the person that
nothing was changed instead of apologising for a crash. The driver's many ways of saying so are
recognised here, in one place (:func:`is_unavailable`). Recovery needs nothing: PostgreSQL's pool
replaces the connections the server closed, asks it about those idle for a while before use
(:mod:`storage.postgres_driver`), and reconnects once the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from bot.core.errors import GpubookError
from bot.core.phrases import Code
from storage.postgres_driver import postgres_engine
from storage.sqlite_driver import ON_LOOP, READ_ONLY, sqlite_engine
from storage.sqlite_file import sqlite_backup, sqlite_write_probe
from storage.writer_turns import WriterTurns

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite+aiosqlite:///gpubook.db"

#: How long a SQLite writer waits for the write lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 30.0
#: How long opening a PostgreSQL connection may take (asyncpg's own default is a minute).
PG_CONNECT_TIMEOUT = 5.0
#: The pool of ``write(durable=False)`` on PostgreSQL: the reports' transactions, two at once per
#: process (``bot.booking.agents``), with room for a few more before any waits for another.
_NOT_DURABLE_POOL = {"pool_size": 2, "max_overflow": 4}
#: How long a health check waits for the database before calling it unreachable (seconds).
PING_TIMEOUT = 2.0

#: The read transaction of :meth:`Database.one_read`: its database, the task that opened it, and
#: the session.
_shared_read: ContextVar[tuple[Database, asyncio.Task[Any] | None, AsyncSession] | None] = (
    ContextVar("gpubook_shared_read", default=None)
)


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


def create_engine(
    url: str = DEFAULT_URL,
    *,
    busy_timeout: float = SQLITE_BUSY_TIMEOUT,
    durable: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for ``url``, with the SQLite hooks installed when the URL is SQLite.

    ``busy_timeout`` is how long a SQLite writer waits for another process's write lock; with
    ``durable`` false, a PostgreSQL engine's commits do not wait for the flush to disk (SQLite's
    never do: ``synchronous=NORMAL``).
    """
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return sqlite_engine(url, busy_timeout, **kwargs)
    if backend == "postgresql":
        return postgres_engine(url, PG_CONNECT_TIMEOUT, durable=durable, **kwargs)
    raise ValueError(f"unsupported DATABASE_URL {url!r}: use sqlite:///FILE or postgresql://…")


class DatabaseUnusable(Exception):
    """The database could not be used: ``url`` (its password hidden) and ``reason``, the
    driver's own words. The first contact raises it for whatever the driver raised (connection
    refused, no such database, a file that is not a database), so callers blame the database
    and not whatever they were doing around it."""

    def __init__(self, url: str, error: BaseException) -> None:
        parsed = make_url(url)  # shown without the driver, as operators write it
        parsed = parsed.set(drivername=parsed.get_backend_name())
        self.url = parsed.render_as_string(hide_password=True)
        self.reason = str(error.orig if isinstance(error, DBAPIError) and error.orig else error)
        super().__init__(f"the database at {self.url} failed: {self.reason}")


class DatabaseUnavailable(GpubookError):
    """The database did not answer: down, restarting, unreachable, or (SQLite) locked by another
    process for longer than the busy timeout. The transaction was rolled back, so nothing was
    written; the same request later may well succeed."""

    def __init__(self) -> None:
        super().__init__(Code.DATABASE_UNAVAILABLE)


#: What SQLite says when another process holds the file's lock past the busy timeout, or the file
#: cannot be opened (its disk gone); any other OperationalError ("no such table") is a bug.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file")
#: Failing to connect, and asyncpg's errors for a server gone, going or taking no connections.
_GONE = (
    OSError,  # refused, unresolvable, timed out (TimeoutError is one)
    PoolTimeout,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) means "the database is not there right now".

    SQLAlchemy flags a connection lost mid-statement (``connection_invalidated``); failing to
    connect surfaces as the driver's own error or a bare ``OSError`` (refused, unresolvable,
    timed out); a pool with no free connection for its whole timeout is as good as down.
    """
    for cause in _causes(error):
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, _GONE):
            return True
        if isinstance(cause, sqlite3.OperationalError) and str(cause).startswith(
            _SQLITE_UNAVAILABLE
        ):
            return True
    return False


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, the DBAPI error SQLAlchemy wrapped (``orig``) and their causes."""
    pending, seen = [error], set()
    while pending:
        cause = pending.pop()
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        pending.extend(e for e in (getattr(cause, "orig", None), cause.__cause__) if e is not None)


class Database:
    """An engine and the two kinds of transaction the service uses."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        busy_timeout: float = SQLITE_BUSY_TIMEOUT,
        **engine_kwargs: Any,
    ) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, busy_timeout=busy_timeout, **engine_kwargs)
        self.backend = self.engine.dialect.name
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # write(durable=False): on PostgreSQL, connections of their own, set as they open to
        # commit without waiting for the flush (none opens until such a write runs).
        self._not_durable_engine = (
            create_engine(self.url, durable=False, **{**_NOT_DURABLE_POOL, **engine_kwargs})
            if self.backend == "postgresql"
            else None
        )
        self._not_durable = (
            async_sessionmaker(self._not_durable_engine, expire_on_commit=False)
            if self._not_durable_engine is not None
            else self._sessions
        )
        # SQLite has one writer at a time: this process's writers take turns (see WriterTurns).
        self._sqlite_writer = WriterTurns() if self.backend == "sqlite" else None
        #: ``time.monotonic()`` of the last transaction that found the database unavailable.
        self._unavailable_at = float("-inf")
        #: Why the database was last found unavailable, until a transaction gets through again.
        self._away_reason: str | None = None

    @asynccontextmanager
    async def write(
        self, *, first: bool = False, on_loop: bool = False, durable: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A read-write transaction: committed on success, rolled back on any exception.

        On SQLite it holds the write lock from its first statement (with ``first``, its turn
        goes ahead of this process's other writers: :class:`WriterTurns`; with ``on_loop``, the
        statements after the first run on the event loop's thread, for a transaction of small
        statements only: :mod:`storage.sqlite_driver`); on PostgreSQL the
        caller locks the rows it decides on (``with_for_update``), and without ``durable`` the
        commit does not wait for the flush to disk, for a write that a crash of the server may
        lose (as every SQLite commit may: ``synchronous=NORMAL``). A writer that queued behind
        one that then found the database unavailable fails at once: otherwise each writer in
        the queue would wait out the whole busy timeout in turn."""
        queued = time.monotonic()
        async with self._writer_turn(first):
            if self._unavailable_at > queued:
                raise DatabaseUnavailable()
            with self._unavailability():
                sessions = self._sessions if durable else self._not_durable
                async with sessions() as session, session.begin():
                    if on_loop and self.backend == "sqlite":
                        await session.connection(execution_options={ON_LOOP: True})
                    yield session

    def _writer_turn(self, first: bool) -> AbstractAsyncContextManager[object]:
        if self._sqlite_writer is None:
            return nullcontext()
        return self._sqlite_writer.turn(first=first)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncSession]:
        """A read-only transaction that never waits for (or blocks) writers on SQLite; inside
        :meth:`one_read`, that one's.

        With ``snapshot`` every statement of it sees the database as of its first one: a read
        whose statements must agree (running totals in one, the rows not summed into them yet in
        the next, while a roll-up may commit in between). A SQLite read transaction is one
        snapshot already (WAL); on PostgreSQL this one is REPEATABLE READ rather than READ
        COMMITTED (a read-only transaction there never fails to serialise), and it does not join
        a :meth:`one_read`, which is not.
        """
        shared = _shared_read.get()
        if (
            shared is not None
            and shared[0] is self
            and shared[1] is asyncio.current_task()
            and (not snapshot or self.backend == "sqlite")
        ):
            yield shared[2]
            return
        options: dict[str, Any] = {READ_ONLY: True}
        if snapshot and self.backend != "sqlite":
            options["isolation_level"] = "REPEATABLE READ"
        with self._unavailability():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**options)
                async with (
                    AsyncSession(bind=conn, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    yield session

    @asynccontextmanager
    async def one_read(self) -> AsyncIterator[None]:
        """Every :meth:`read` of this task within shares one read transaction.

        A page built from several reads (the App Home: bookings, GPUs, live cards, the week's
        sum) then pays for one transaction (a connection, a BEGIN and a COMMIT), not one each.
        Only the task that opened it shares it (a session serves one task at a time); tasks it
        starts read on their own.
        """
        async with self.read() as session:
            token = _shared_read.set((self, asyncio.current_task(), session))
            try:
                yield
            finally:
                _shared_read.reset(token)

    @property
    def reading_engine(self) -> AsyncEngine:
        """The engine for libraries that only read through an engine of their own making
        (slack-sdk's installation store): its transactions never take SQLite's write lock."""
        return self.engine.execution_options(**{READ_ONLY: True})

    @contextmanager
    def _unavailability(self) -> Iterator[None]:
        """Turn the database's absence, however the driver reports it, into DatabaseUnavailable.

        Logged here (the person asking only hears "try again"), once per outage rather than per
        failed transaction — requests and sweeps keep failing the same way until it is back —
        plus whenever the driver's reason changes, and once when a transaction gets through."""
        try:
            yield
        except GpubookError:
            raise
        except Exception as error:
            if not is_unavailable(error):
                raise
            self._unavailable_at = time.monotonic()
            reason = _reason(error)
            if reason != self._away_reason:
                log.warning("the database is unavailable: %s", reason)
            self._away_reason = reason
            raise DatabaseUnavailable() from error
        else:
            if self._away_reason is not None:
                self._away_reason = None
                log.info("the database is back")

    async def ping(self, within: float = PING_TIMEOUT) -> bool:
        """Whether the database can take a write within ``within`` seconds (for /healthz).

        On PostgreSQL a trivial query says so. A SQLite file still answers reads while another
        process holds its write lock, so there the check takes (and at once gives back) the
        write lock, on a connection of its own with ``within`` as its busy timeout.
        """
        try:
            async with asyncio.timeout(within):
                sqlite_file = self._sqlite_file()
                if sqlite_file is not None:
                    await asyncio.to_thread(sqlite_write_probe, sqlite_file, within)
                else:
                    async with self.read() as session:
                        await session.execute(text("SELECT 1"))
            return True
        except Exception as error:  # any failure means "unreachable" to a health check
            log.warning("database health check failed: %s", _reason(error))
            return False

    def _sqlite_file(self) -> Path | None:
        """The SQLite database's file, or None (PostgreSQL, or SQLite in memory)."""
        if self.backend != "sqlite":
            return None
        name = make_url(self.url).database
        return Path(name) if name and name != ":memory:" else None

    async def backup_to(self, target: Path) -> None:
        """Copy a SQLite database to ``target`` with SQLite's online backup API.

        Safe while the bot runs (it copies a consistent snapshot, pages written meanwhile are
        recopied), unlike copying the file, which can catch a half-written WAL. PostgreSQL has
        ``pg_dump`` for this, so it raises ``ValueError`` there. An existing ``target`` is never
        overwritten (``FileExistsError``); a target that cannot be created raises its
        ``OSError``.
        """
        if self.backend != "sqlite":
            raise ValueError("backups of PostgreSQL are pg_dump's job: pg_dump DATABASE > FILE")
        source = self._sqlite_file()
        if source is None:
            raise ValueError("this SQLite database is in memory; there is no file to back up")
        await asyncio.to_thread(sqlite_backup, source, target)

    async def dispose(self) -> None:
        try:
            await self.engine.dispose()
        finally:
            if self._not_durable_engine is not None:
                await self._not_durable_engine.dispose()


def _reason(error: BaseException) -> str:
    """One line for the log: the driver's own words, without SQLAlchemy's SQL and links."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__name__}: {cause}".splitlines()[0]
