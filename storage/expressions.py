"""SQL over times whose spelling depends on the backend, so reports can add up in the database.

PostgreSQL stores ``timestamptz`` and has ``GREATEST``, ``LEAST`` and interval arithmetic. SQLite
stores the text :class:`storage.types.UTCDateTime` writes (``2026-01-05 08:00:00.000000``, always
with six digits of microseconds), has two-argument ``max``/``min`` that compare that text in time
order, and no interval type: there, the microseconds between two times are the difference of
their whole seconds (read with ``julianday``) and of their microseconds, in exact integers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.sql.visitors import Visitable

from storage.types import UTCDateTime


class later(FunctionElement[Any]):  # noqa: N801 — used as a SQL function
    """The later of two times."""

    type = UTCDateTime()
    inherit_cache = True


class earlier(FunctionElement[Any]):  # noqa: N801 — used as a SQL function
    """The earlier of two times."""

    type = UTCDateTime()
    inherit_cache = True


class seconds_between(FunctionElement[int]):  # noqa: N801 — used as a SQL function
    """Whole seconds from the first time to the second (the fraction dropped, as Python's
    ``int(timedelta.total_seconds())`` drops it for a positive length)."""

    type = BigInteger()
    inherit_cache = True


@compiles(later)
def _later(element: later, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(earlier)
def _earlier(element: earlier, compiler: Any, **kw: Any) -> str:
    return f"LEAST({compiler.process(element.clauses, **kw)})"


@compiles(later, "sqlite")
def _later_sqlite(element: later, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(earlier, "sqlite")
def _earlier_sqlite(element: earlier, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(seconds_between)
def _seconds(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in _two(element))
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end}) - ({start}))) AS BIGINT)"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in _two(element))
    # julianday reads the text, and its day fraction scaled to seconds rounds back exactly to
    # the whole seconds (the microseconds are cut off first: a double cannot hold them exactly);
    # the microseconds are then added from the text. Cheaper than strftime('%s'), which formats
    # a string to be cast back (and would round the microseconds to milliseconds).
    whole = "CAST(ROUND((julianday(substr({}, 1, 19)) - 2440587.5) * 86400) AS INTEGER)"
    micros = "CAST(substr({}, 21) AS INTEGER)"
    return (
        f"((({whole.format(end)} - {whole.format(start)}) * 1000000"
        f" + {micros.format(end)} - {micros.format(start)}) / 1000000)"
    )


def _two(element: FunctionElement[Any]) -> list[ColumnElement[Any] | Visitable]:
    clauses = list(element.clauses)
    if len(clauses) != 2:
        raise TypeError(f"{element.name} takes two times, got {len(clauses)}")
    return clauses
