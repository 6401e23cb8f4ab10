"""SQLAlchemy's aiosqlite adapter, with one hand-off to aiosqlite's thread per statement.

aiosqlite runs every call on its own thread, and SQLAlchemy's adapter makes four such calls
per statement (open a cursor, execute, fetch the rows, close the cursor; three for an
``executemany``), one for each
transaction's ``BEGIN``, plus a ``ROLLBACK`` each time a connection goes back to the pool. Each call queues work for that thread and wakes
the event loop when it is done, so on the booking path (eight statements) the hand-offs cost
more CPU than SQLite itself. Here a statement, or an ``executemany``, runs on the thread in one
call that does all the steps (and the transaction's ``BEGIN``, when it is the first), and the pool's reset skips
the ``ROLLBACK`` when no transaction is open (a rollback of nothing changes nothing).

Like SQLAlchemy's own adapter (which sets the isolation level this way), this reaches into
aiosqlite's queue (``_execute``) and its ``sqlite3`` connection (``_conn``); the engine is given
it as its DBAPI module (``create_async_engine(..., module=fewer_hops_dbapi())``), so the URL,
the dialect and everything else stay SQLAlchemy's. Server-side cursors (streamed results) keep
the adapter's own path.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

#: What one statement returns from the thread: description, rows, lastrowid, rowcount.
_Outcome = tuple[Any, list[Any] | None, int | None, int]


def _run_statement(
    connection: aiosqlite.Connection, begin: str | None, operation: str, parameters: Any
) -> _Outcome:
    """On aiosqlite's thread: ``begin`` the transaction if it is owed (see
    :meth:`_OneHopConnection.defer_begin`), then execute, fetch every row, close — what the
    adapter did in four hand-offs, or five."""
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
    """On aiosqlite's thread: ``begin`` if owed, then execute for each set of parameters —
    what the adapter did in three hand-offs, or four. Returns lastrowid and rowcount."""
    if begin is not None:
        connection._conn.execute(begin)
    cursor = connection._conn.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        begin = self._adapt_connection.take_begin()
        try:
            description, rows, self.lastrowid, self.rowcount = self.await_(
                self._connection._execute(
                    _run_statement, self._connection, begin, operation, parameters
                )
            )
            self.description = description
            if description:
                self._rows = deque(rows or ())
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        begin = self._adapt_connection.take_begin()
        try:
            self.lastrowid, self.rowcount = self.await_(
                self._connection._execute(
                    _run_many, self._connection, begin, operation, seq_of_parameters
                )
            )
            self.description = None
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin",)

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None

    def defer_begin(self, sql: str) -> None:
        """Begin the transaction (``sql``: ``BEGIN`` or ``BEGIN IMMEDIATE``) in the hand-off of
        its first statement rather than one of its own: one hand-off fewer per transaction. A
        transaction that runs no statement never begins, so its commit and rollback are none."""
        self._begin = sql

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
        if self.take_begin() is None:  # else nothing ran: there is nothing to commit
            super().commit()

    def rollback(self) -> None:
        self._begin = None
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


def fewer_hops_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module to give a ``sqlite+aiosqlite`` engine (its ``module`` argument)."""
    return _OneHopDBAPI(aiosqlite, sqlite3)
