"""gpubook's PostgreSQL engines: SQLAlchemy's asyncpg adapter, pooled connections checked cheaply.

A connection taken from the pool may be dead: the server restarted, or a backend was terminated,
while it sat there. SQLAlchemy's ``pool_pre_ping`` finds out by asking the server on every
checkout, and its asyncpg adapter asks in three round trips (``BEGIN``, an empty query,
``ROLLBACK``): three more for each host agent's report, which is nine without them, and each a
wait for the event loop under a fleet's load (``bench/README.md``, agent_bench). Here a checkout
asks only what it must (:func:`_check_out`):

- a connection whose socket has closed (a server that stops says goodbye to its clients, and
  asyncpg notices on the event loop while the connection sits in the pool) is replaced at once,
  without a round trip;
- one idle for :data:`PING_AFTER` or longer is asked with one trivial query (no statement
  prepared, no transaction), given as long as opening a connection may take; if that fails,
  the server is unreachable and the pool's connections are all replaced, as ``pool_pre_ping``
  does;
- one used less than that ago, or opened just now, goes as it is. A server does not stop and
  start again within a second; if it was lost in that second, the statement fails as every
  statement during an outage does (``DatabaseUnavailable``: nothing written), and SQLAlchemy
  discards the pool's connections from before it.

**Commits that do not wait for the flush.** An engine made with ``durable=False`` opens its
connections with ``synchronous_commit`` off (a setting of the connection, sent as it opens:
no statement per transaction), for writes whose last fraction of a second may be lost to a
crash of the database server, and nothing else: a host agent's reports
(``Database.write(durable=False)``).

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
#: prepared, so nothing for a pooler such as pgbouncer to lose between transactions) and its
#: ``execute`` cannot take an empty one.
_PING = "SELECT 1"
#: What the question fails with when the connection or the server is gone: the server's refusal,
#: the driver's (a connection closed meanwhile), the socket's, or no answer in time.
_FAILED_CHECK = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
#: Where a connection's last checkin is kept, in its pool record's ``info``.
_IDLE_SINCE = "gpubook_idle_since"


def postgres_engine(
    url: str, connect_timeout: float, *, durable: bool = True, **kwargs: Any
) -> AsyncEngine:
    """An async engine for the ``postgresql+asyncpg`` ``url``; ``connect_timeout`` (seconds) is
    how long opening a connection may take; with ``durable`` false, its commits do not wait for
    the flush to disk (see the module docstring)."""
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    connect_args = {"timeout": connect_timeout, **kwargs.get("connect_args", {})}
    if not durable:
        connect_args["server_settings"] = {
            **connect_args.get("server_settings", {}),
            "synchronous_commit": "off",
        }
    kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, **kwargs)
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _checked_in)
    event.listen(pool, "checkout", partial(_check_out, timeout=connect_timeout))
    return engine


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _check_out(dbapi_connection: Any, record: Any, _proxy: Any, *, timeout: float) -> None:
    """Refuse a connection known or found dead (the module docstring says when it is asked)."""
    driver = dbapi_connection.driver_connection
    if driver.is_closed():
        raise DisconnectionError("the server closed the connection")
    idle_since = record.info.get(_IDLE_SINCE)  # none yet: opened for this checkout
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER:
        return
    try:
        dbapi_connection.run_async(lambda connection: connection.execute(_PING, timeout=timeout))
    except _FAILED_CHECK as error:
        raise InvalidatePoolError(f"the connection failed its check: {error!r}") from error
