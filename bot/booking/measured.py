"""Measured memory-time over a window, summed by the database: per GPU and per Unix login.

What statistics put next to booked GB·h. Two sources make up a window: the full-resolution
samples taken in it (``Σ used_mib × seconds``, each sample counting the seconds since its card's
previous report) and the hourly aggregates the roll-up left for older hours (``Σ used_mib_s``),
an hour counting in the window when it starts inside it. Both sums are the same arithmetic
(:mod:`bot.core.measure`), so a window costs the same before and after its samples are rolled up
— to the hour at its edges — and reading it costs what the window holds, not the history.

Per-login memory lives in a JSON object per row; the database unpacks it itself (``json_each`` on
SQLite, ``json_each_text`` on PostgreSQL, both table-valued functions), so a month of 15-second
samples is never loaded into Python. Only cards bound to a GPU count: unbound cards are no one's
to book, so their use has nothing to stand against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from storage.models import AgentDevice, Gpu, UsageHour, UsageSample


@dataclass(frozen=True)
class Measured:
    """MiB·seconds measured in a window: per GPU id (every bound GPU, 0 when nothing ran) and
    per Unix login (``"?"`` being processes whose owner is unknown)."""

    per_gpu: dict[int, int] = field(default_factory=dict)
    per_login: dict[str, int] = field(default_factory=dict)


def _bound(team_id: str) -> Select[tuple[int, int]]:
    return (
        select(Gpu.id.label("gpu_id"), AgentDevice.id.label("device_id"))
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


async def measured_totals(
    session: AsyncSession, team_id: str, start: datetime, end: datetime
) -> Measured:
    """MiB·seconds measured on the workspace's bound cards in ``[start, end)``."""
    dialect = session.bind.dialect.name
    bound = _bound(team_id).cte("bound")
    in_samples = (UsageSample.at >= start) & (UsageSample.at < end)
    in_hours = (UsageHour.hour >= start) & (UsageHour.hour < end)
    per_gpu_parts = union_all(
        select(bound.c.gpu_id, func.sum(UsageSample.used_mib * UsageSample.seconds).label("s"))
        .join(UsageSample, UsageSample.device_id == bound.c.device_id)
        .where(in_samples)
        .group_by(bound.c.gpu_id),
        select(bound.c.gpu_id, func.sum(UsageHour.used_mib_s).label("s"))
        .join(UsageHour, UsageHour.device_id == bound.c.device_id)
        .where(in_hours)
        .group_by(bound.c.gpu_id),
    ).subquery()
    per_gpu = {gpu_id: 0 for gpu_id in await session.scalars(select(bound.c.gpu_id))}
    for gpu_id, mib_s in await session.execute(
        select(per_gpu_parts.c.gpu_id, func.sum(per_gpu_parts.c.s)).group_by(per_gpu_parts.c.gpu_id)
    ):
        per_gpu[gpu_id] = int(mib_s or 0)

    sample_users = _login_pairs(UsageSample.users, dialect)
    hour_users = _login_pairs(UsageHour.users, dialect)
    per_login_parts = union_all(
        select(
            sample_users.c.key.label("login"),
            func.sum(cast(sample_users.c.value, BigInteger) * UsageSample.seconds).label("s"),
        )
        .select_from(bound)
        .join(UsageSample, UsageSample.device_id == bound.c.device_id)
        .join(sample_users, true())
        .where(in_samples)
        .group_by(sample_users.c.key),
        select(
            hour_users.c.key.label("login"),
            func.sum(cast(hour_users.c.value, BigInteger)).label("s"),
        )
        .select_from(bound)
        .join(UsageHour, UsageHour.device_id == bound.c.device_id)
        .join(hour_users, true())
        .where(in_hours)
        .group_by(hour_users.c.key),
    ).subquery()
    per_login = {
        login: int(mib_s or 0)
        for login, mib_s in await session.execute(
            select(per_login_parts.c.login, func.sum(per_login_parts.c.s)).group_by(
                per_login_parts.c.login
            )
        )
    }
    return Measured(per_gpu, per_login)
