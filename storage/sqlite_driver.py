"""gpubook's SQLite engine: SQLAlchemy's aiosqlite adapter with fewer hand-offs to its thread.

aiosqlite runs every call on its own thread, and SQLAlchemy's adapter makes four such calls per
statement (open a cursor, execute, fetch the rows, close the cursor; three for an
``executemany``), one for each transaction's ``BEGIN``, plus a ``ROLLBACK`` each time a
connection goes back to the pool. Each call queues work for that thread and wakes the event loop
when it is done, so on the booking path (eight statements) the hand-offs cost more CPU than
SQLite itself. Here a statement, or an ``executemany``, runs on the thread in one call that does
all the steps (and the transaction's ``BEGIN``, when it is the first), and the pool's reset skips
the ``ROLLBACK`` when no transaction is open (a rollback of nothing changes nothing).

**On the loop.** A write transaction opened with the execution option :data:`ON_LOOP`
(``Database.write(on_loop=True)``) runs its first statement, with ``BEGIN IMMEDIATE``, on the
thread — that is where it may wait for another process's write lock — and every statement after
it on the event loop's own thread, until its commit or rollback (which go back to the thread: a
commit may checkpoint the WAL to disk). Once the write lock is held, no statement of the
transaction waits for anyone (WAL readers never block the writer), so a transaction of small,
indexed statements — a host agent's report, 33 a second from a fleet — is one hand-off there
and one back, not one per statement: every hand-off was a wait behind whatever else the loop had
ready, and a burst of commands made that the reports' tail latency (``bench/README.md``,
agent_bench). Connections are opened with ``check_same_thread=False`` for it; the two threads
never use one at the same time, since every call handed to aiosqlite's thread is awaited before
the next statement runs (and Python's sqlite3 is built serialized: ``sqlite3.threadsafety`` 3).

Like SQLAlchemy's own adapter (which sets the isolation level this way), this reaches into
aiosqlite's queue (``_execute``) and its ``sqlite3`` connection (``_conn``); the engine is given
it as its DBAPI module (``create_async_engine(..., module=...)``), so the URL, the dialect and
everything else stay SQLAlchemy's. Server-side cursors (streamed results) keep the adapter's own
path.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: Connection execution option: start a deferred (read-only) transaction.
READ_ONLY = "gpubook_read_only"
#: Connection execution option: a write transaction whose statements after the first run on the
#: event loop's thread (see the module docstring).
ON_LOOP = "gpubook_on_loop"

_T = TypeVar("_T")
#: What one statement returns from the thread: description, rows, lastrowid, rowcount.
_Outcome = tuple[Any, list[Any] | None, int | None, int]


def _run_statement(
    connection: aiosqlite.Connection, begin: str | None, operation: str, parameters: Any
) -> _Outcome:
    """On aiosqlite's thread (in an on-loop transaction, after its first statement, on the
    loop's): ``begin`` the transaction if it is owed (see :meth:`_OneHopConnection.defer_begin`),
    then execute, fetch every row, close — what the adapter did in four hand-offs, or five."""
    if begin is not None:
        connection._conn.execute(begin)
    cursor = connection._conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, None, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _run_many(
    connection: aiosqlite.Connection, begin: str | None, operation: str, parameters: Any
) -> tuple[int | None, int]:
    """As :func:`_run_statement`, for each set of parameters — what the adapter did in three
    hand-offs, or four. Returns lastrowid and rowcount."""
    if begin is not None:
        connection._conn.execute(begin)
    cursor = connection._conn.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


async def _at_once(run: Callable[..., _T], *args: Any) -> _T:
    """``run(*args)`` here, on the event loop's thread, as an awaitable that never yields to the
    loop: SQLAlchemy's async layer requires every statement to await something."""
    return run(*args)


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            description, rows, self.lastrowid, self.rowcount = self._run(
                _run_statement, operation, parameters
            )
            self.description = description
            if description:
                self._rows = deque(rows or ())
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            self.lastrowid, self.rowcount = self._run(_run_many, operation, seq_of_parameters)
            self.description = None
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def _run(self, run: Callable[..., _T], operation: Any, parameters: Any) -> _T:
        """``run`` the statement where it belongs: with the transaction's owed ``BEGIN`` on
        aiosqlite's thread, or, in an on-loop transaction after its first statement, here."""
        adapted = self._adapt_connection
        begin = adapted.take_begin()
        if begin is None and adapted.on_loop:
            return self.await_(_at_once(run, self._connection, None, operation, parameters))
        return self.await_(
            self._connection._execute(run, self._connection, begin, operation, parameters)
        )


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin", "on_loop")

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None
        #: Whether this transaction's statements after the first run on the event loop's thread.
        self.on_loop = False

    def defer_begin(self, sql: str, *, then_on_loop: bool = False) -> None:
        """Begin the transaction (``sql``: ``BEGIN`` or ``BEGIN IMMEDIATE``) in the hand-off of
        its first statement rather than one of its own: one hand-off fewer per transaction. A
        transaction that runs no statement never begins, so its commit and rollback are none.
        With ``then_on_loop``, the statements after the first run on the caller's thread."""
        self._begin = sql
        self.on_loop = then_on_loop

    def take_begin(self) -> str | None:
        """The ``BEGIN`` owed, which the caller now runs before its statement."""
        begin, self._begin = self._begin, None
        return begin

    def flush_begin(self) -> None:
        """Run an owed ``BEGIN`` on its own, before a call that cannot carry it."""
        begin = self.take_begin()
        if begin is not None:
            self.await_(self._connection._execute(self._connection._conn.execute, begin))

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            self.flush_begin()
            return super().cursor(server_side)
        return _OneHopCursor(self)

    def commit(self) -> None:
        self.on_loop = False
        if self.take_begin() is None:  # else nothing ran: there is nothing to commit
            super().commit()

    def rollback(self) -> None:
        self._begin, self.on_loop = None, False
        # Reading the flag from this thread is safe: nothing runs on aiosqlite's thread between
        # our awaited calls, and sqlite3 does not tie the attribute to its thread. A closed
        # connection has no flag: the adapter's rollback then reports it as it always did.
        try:
            idle = not self._connection._conn.in_transaction
        except (ValueError, sqlite3.ProgrammingError):  # closed here, or by sqlite3
            idle = False
        if not idle:
            super().rollback()


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        if type(adapted) is not AsyncAdapt_aiosqlite_connection:  # the sync fallback: as is
            return adapted
        return _OneHopConnection(adapted.dbapi, adapted._connection)


def sqlite_engine(url: str, busy_timeout: float, **kwargs: Any) -> AsyncEngine:
    """An async engine for the ``sqlite+aiosqlite`` ``url`` on this module's connections.

    pysqlite's transaction control is taken away and each write starts with ``BEGIN IMMEDIATE``
    (SQLAlchemy's documented recipe for pysqlite/aiosqlite), which takes the write lock up
    front; WAL lets readers proceed while a writer holds it, and ``busy_timeout`` (seconds) is
    how long a writer waits for another process's lock before failing."""
    kwargs.setdefault("module", _OneHopDBAPI(aiosqlite, sqlite3))
    connect_args = {"timeout": busy_timeout, "check_same_thread": False}
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        sql = "BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE"
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, _OneHopConnection):  # sent with the first statement
            dbapi_connection.defer_begin(sql, then_on_loop=options.get(ON_LOOP, False))
        else:
            conn.exec_driver_sql(sql)

    return engine
