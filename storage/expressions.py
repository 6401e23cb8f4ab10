"""SQL over times whose spelling depends on the backend, so reports can add up in the database.

PostgreSQL stores ``timestamptz`` and has ``GREATEST``, ``LEAST`` and interval arithmetic. SQLite
stores the text :class:`storage.types.UTCDateTime` writes (``2026-01-05 08:00:00.000000``, always
with six digits of microseconds), has two-argument ``max``/``min`` that compare that text in time
order, and no interval type: there, the seconds between two times are the difference of their whole
seconds, read with ``julianday``, in exact integers.
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
    """The whole seconds from the first time to the second: each time is cut to its second
    first, so the seconds of a stretch cut in pieces at whole seconds (days) add up to the
    stretch's own — what lets statistics add settled days up instead of rereading them."""

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
    whole = "EXTRACT(EPOCH FROM date_trunc('second', {}))"
    return f"CAST({whole.format(end)} - {whole.format(start)} AS BIGINT)"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in _two(element))
    # julianday reads the text cut to its whole second (a double cannot hold the microseconds
    # exactly), and its day fraction scaled to seconds rounds back exactly to those seconds.
    # Cheaper than strftime('%s'), which formats a string to be cast back.
    whole = "CAST(ROUND((julianday(substr({}, 1, 19)) - 2440587.5) * 86400) AS INTEGER)"
    return f"({whole.format(end)} - {whole.format(start)})"


def _two(element: FunctionElement[Any]) -> list[ColumnElement[Any] | Visitable]:
    clauses = list(element.clauses)
    if len(clauses) != 2:
        raise TypeError(f"{element.name} takes two times, got {len(clauses)}")
    return clauses
