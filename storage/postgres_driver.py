"""gpubook's PostgreSQL engines: SQLAlchemy's asyncpg adapter, pooled connections checked cheaply.

A connection taken from the pool may be dead: the server restarted, or a backend was terminated,
while it sat there. SQLAlchemy's ``pool_pre_ping`` finds out by asking the server on every
checkout, and its asyncpg adapter asks in three round trips (``BEGIN``, an empty query,
``ROLLBACK``): three more for every transaction, and the transaction storing host agents'
reports is eight round trips without them, each a wait for the event loop under a fleet's load
(``bench/README.md``, agent_bench). Here a checkout asks only what it must (:func:`_check_out`):

- a connection opened for this checkout goes as it is;
- one whose socket has closed is replaced at once, without a round trip: a server that stops or
  restarts, or ends a backend (``pg_terminate_backend``, ``idle_session_timeout``), says goodbye
  to its client, and asyncpg reads it on the event loop while the connection sits in the pool;
- one idle for :data:`PING_AFTER` or longer is asked with one trivial query (no statement
  prepared, no transaction), given as long as opening a connection may take; if that fails,
  the server is taken for unreachable and the pool's connections are all replaced, as
  ``pool_pre_ping`` does;
- one used less than that ago goes as it is. What ``pool_pre_ping`` would have caught and this
  does not: a backend ended in that second, in the instant before the event loop read its
  goodbye. The one transaction given that connection fails as every transaction during an
  outage does (``DatabaseUnavailable``: nothing written) and SQLAlchemy replaces the pool's
  connections. A network that drops without a goodbye (no FIN) makes a statement on a
  connection used within the second wait, as it would with ``pool_pre_ping`` on a connection
  that passed its ping just before the drop.

The pool hands out the connection given back last (``pool_use_lifo``): under steady traffic the
same few stay in use and are never asked, and the rest sit idle, to be asked when next needed.

**Commits that do not wait for the flush.** An engine made with ``durable=False`` sets
``synchronous_commit`` off on each connection as it opens (once per connection, not a statement
per transaction), for the writes whose last fraction of a second may be lost to a crash of the
database server, and nothing else: a host agent's reports (``Database.write(durable=False)``).

A replaced connection is SQLAlchemy's own business: the check raises ``DisconnectionError`` and
the pool connects anew (``pool_pre_ping`` does the same when its ping fails).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: How long a connection may have sat in the pool before a checkout asks the server about it (s).
PING_AFTER = 1.0
#: The question: asyncpg sends a query without arguments by the simple protocol (no statement
#: prepared) and its ``execute`` cannot take an empty one.
_PING = "SELECT 1"
#: What the question fails with when the connection or the server is gone: the server's refusal,
#: the driver's (a connection closed meanwhile), the socket's, or no answer in time.
_FAILED_CHECK = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
#: Where a connection's last checkin is kept, in its pool record's ``info`` (which SQLAlchemy
#: empties whenever the record opens a new connection).
_IDLE_SINCE = "gpubook_idle_since"
#: How a connection of a ``durable=False`` engine is set as it opens.
_NOT_DURABLE = "SET synchronous_commit TO OFF"


def postgres_engine(
    url: str, connect_timeout: float, *, durable: bool = True, **kwargs: Any
) -> AsyncEngine:
    """An async engine for the ``postgresql+asyncpg`` ``url``; ``connect_timeout`` (seconds) is
    how long opening a connection may take; with ``durable`` false, its commits do not wait for
    the flush to disk (see the module docstring)."""
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_use_lifo", True)
    kwargs["connect_args"] = {"timeout": connect_timeout, **kwargs.get("connect_args", {})}
    engine = create_async_engine(url, **kwargs)
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _checked_in)
    event.listen(pool, "checkout", partial(_check_out, timeout=connect_timeout))
    if not durable:
        # A statement once per connection rather than a startup setting (``server_settings``),
        # which a connection pooler in front of the server may refuse.
        event.listen(pool, "connect", _not_durable)
    return engine


def _not_durable(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(lambda connection: connection.execute(_NOT_DURABLE))


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _check_out(dbapi_connection: Any, record: Any, _proxy: Any, *, timeout: float) -> None:
    """Refuse a connection known or found dead (the module docstring says when it is asked)."""
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None:  # opened for this checkout
        return
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed the connection")
    if time.monotonic() - idle_since < PING_AFTER:
        return
    try:
        dbapi_connection.run_async(lambda connection: connection.execute(_PING, timeout=timeout))
    except _FAILED_CHECK as error:
        raise InvalidatePoolError(f"the connection failed its check: {error!r}") from error
