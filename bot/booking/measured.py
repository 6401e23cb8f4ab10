"""Measured memory-time over a window, summed by the database: per GPU and per Unix login.

What statistics put next to booked GB·h. The roll-up (:mod:`bot.lifecycle.usage_rollup`) keeps
three sources that never overlap: daily rows for a card's days up to its ``days_rolled_to``,
hourly rows up to its ``rolled_to``, and full-resolution samples after it (``Σ used_mib ×
seconds``, each sample counting the seconds since its card's previous report). A window counts
the hours that start inside it (:func:`bot.core.measure.window_parts`): daily rows for its whole
days, hourly rows for the hours at its edges (and for days not yet summed), samples only for the
last few minutes. All three are the same exact arithmetic, so a window measures the same however
far it is rolled up, and reading 30 days of 200 cards reads some 15,000 rows, not 8 million.

Per-login memory lives in a JSON object per row; the database unpacks it itself (``json_each`` on
SQLite, ``json_each_text`` on PostgreSQL, both table-valued functions), so a month of 15-second
rows is never loaded into Python. Only cards bound to a GPU count: unbound cards are no one's
to book, so their use has nothing to stand against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from bot.core.measure import WindowParts, window_parts
from storage.models import AgentDevice, Gpu, UsageDay, UsageHour, UsageSample
from storage.types import UTCDateTime


@dataclass(frozen=True)
class Measured:
    """MiB·seconds measured in a window: per GPU id (every bound GPU, 0 when nothing ran) and
    per Unix login (``"?"`` being processes whose owner is unknown)."""

    per_gpu: dict[int, int] = field(default_factory=dict)
    per_login: dict[str, int] = field(default_factory=dict)


#: Before any roll-up (a card never rolled up has every sample still to read).
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _bound(team_id: str) -> Select[Any]:
    return (
        select(
            Gpu.id.label("gpu_id"),
            AgentDevice.id.label("device_id"),
            AgentDevice.rolled_to,
            AgentDevice.days_rolled_to,
        )
        .join(
            AgentDevice,
            (AgentDevice.team_id == Gpu.team_id) & (AgentDevice.uuid == Gpu.device_uuid),
        )
        .where(Gpu.team_id == team_id)
    )


def _login_pairs(users: ColumnElement[Any], dialect: str) -> TableValuedAlias:
    """The (key, value) rows of a JSON object column, as text values."""
    each = func.json_each if dialect == "sqlite" else func.json_each_text
    return each(users).table_valued("key", "value")


@dataclass(frozen=True)
class _Source:
    """Rows of one table, over one range of its time key, for one part of a window."""

    model: type[UsageSample] | type[UsageHour] | type[UsageDay]
    where: tuple[ColumnElement[bool], ...]

    @property
    def mib_s(self) -> ColumnElement[Any]:
        if self.model is UsageSample:
            return UsageSample.used_mib * UsageSample.seconds
        return self.model.used_mib_s

    def login_mib_s(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        mib = cast(value, BigInteger)
        return mib * UsageSample.seconds if self.model is UsageSample else mib


def _sources(bound: Any, parts: WindowParts, dialect: str) -> list[_Source]:
    """Where each hour of the window is read from: never two places, never none."""

    def since(mark: ColumnElement[Any], start: datetime) -> ColumnElement[Any]:
        # One lower bound, the later of the two: given two, the database bounds its index
        # range by one of them and filters the other, and may pick the window's start — all
        # of a card's samples, or every hour of a month.
        latest = func.max if dialect == "sqlite" else func.greatest
        return latest(func.coalesce(mark, literal(_NEVER, UTCDateTime())), start)

    at, hour, day = UsageSample.at, UsageHour.hour, UsageDay.day
    return [
        _Source(UsageSample, (at >= since(bound.c.rolled_to, parts.start), at < parts.end)),
        _Source(UsageHour, (hour >= parts.start, hour < parts.days_start)),
        _Source(UsageHour, (hour >= parts.days_end, hour < parts.end)),
        _Source(
            UsageHour,
            (hour >= since(bound.c.days_rolled_to, parts.days_start), hour < parts.days_end),
        ),
        _Source(UsageDay, (day >= parts.days_start, day < parts.days_end)),
    ]


def _per_gpu(bound: Any, sources: list[_Source]) -> CompoundSelect:
    return union_all(
        *(
            select(bound.c.gpu_id, func.sum(s.mib_s).label("s"))
            .join(s.model, s.model.device_id == bound.c.device_id)
            .where(*s.where)
            .group_by(bound.c.gpu_id)
            for s in sources
        )
    )


def _per_login(bound: Any, sources: list[_Source], dialect: str) -> CompoundSelect:
    parts = []
    for s in sources:
        pairs = _login_pairs(s.model.users, dialect)
        parts.append(
            select(pairs.c.key.label("login"), func.sum(s.login_mib_s(pairs.c.value)).label("s"))
            .select_from(bound)
            .join(s.model, s.model.device_id == bound.c.device_id)
            .join(pairs, true())
            .where(*s.where)
            .group_by(pairs.c.key)
        )
    return union_all(*parts)


async def measured_totals(
    session: AsyncSession, team_id: str, start: datetime, end: datetime
) -> Measured:
    """MiB·seconds measured on the workspace's bound cards in the hours starting in
    ``[start, end)``."""
    dialect = session.bind.dialect.name
    bound = _bound(team_id).cte("bound")
    sources = _sources(bound, window_parts(start, end), dialect)
    per_gpu = {gpu_id: 0 for gpu_id in await session.scalars(select(bound.c.gpu_id))}
    gpu_parts = _per_gpu(bound, sources).subquery()
    for gpu_id, mib_s in await session.execute(
        select(gpu_parts.c.gpu_id, func.sum(gpu_parts.c.s)).group_by(gpu_parts.c.gpu_id)
    ):
        per_gpu[gpu_id] = int(mib_s or 0)
    login_parts = _per_login(bound, sources, dialect).subquery()
    per_login = {
        login: int(mib_s or 0)
        for login, mib_s in await session.execute(
            select(login_parts.c.login, func.sum(login_parts.c.s)).group_by(login_parts.c.login)
        )
    }
    return Measured(per_gpu, per_login)
