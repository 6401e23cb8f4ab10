"""Measured memory-time over a window, per GPU and per Unix login, read from running totals.

What statistics put next to booked GB·h. The roll-up (:mod:`bot.lifecycle.usage_rollup`) sums a
card's samples into hourly rows as time passes, each row carrying the card's running totals up
to its end, and records how far it got (``rolled_to``). A window counts the hours that start
inside it (:func:`bot.core.measure.counted_hours`), ``[first, stop)``; per card that is

* the running totals of its latest hourly row before ``stop`` minus those of its latest row
  before ``first`` — everything summed in between, two rows however long the window;
* plus the full-resolution samples from ``rolled_to`` (or ``first``, the later) up to ``stop``:
  the last minutes, not summed yet (``Σ used_mib × seconds``, each sample counting the seconds
  since its card's previous report).

The totals and the samples are read in separate statements, so ``session`` must see one
snapshot (``Database.read(snapshot=True)``): under PostgreSQL's READ COMMITTED a roll-up
committing between them would move ``rolled_to`` past samples the totals did not hold yet, and up
to a step of samples would count in neither.

Both are the same exact arithmetic (:mod:`bot.core.measure`), so a window measures the same
however far it is rolled up, and reading 30 days of 200 cards reads 400 rows and the last
minutes of samples, not 8 million samples. Per-login memory of samples lives in a JSON object per
row, which the database unpacks itself (``json_each`` on SQLite, ``json_each_text`` on
PostgreSQL); running totals per login are two JSON objects per card, subtracted here. Only cards
bound to a GPU count: unbound cards are no one's to book, so their use has nothing to stand
against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ScalarSelect, Select, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.measure import counted_hours
from storage.models import AgentDevice, Gpu, UsageHour, UsageSample
from storage.types import UTCDateTime

#: Before any roll-up (a card never rolled up has every sample still to read).
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Measured:
    """MiB·seconds measured in a window: per GPU id (every bound GPU, 0 when nothing ran) and
    per Unix login (``"?"`` being processes whose owner is unknown; logins with nothing
    measured are left out)."""

    per_gpu: dict[int, int] = field(default_factory=dict)
    per_login: dict[str, int] = field(default_factory=dict)


def _bound(team_id: str) -> Select[Any]:
    return (
        select(Gpu.id.label("gpu_id"), AgentDevice.id.label("device_id"), AgentDevice.rolled_to)
        .join(
            AgentDevice,
            (AgentDevice.team_id == Gpu.team_id) & (AgentDevice.uuid == Gpu.device_uuid),
        )
        .where(Gpu.team_id == team_id)
    )


def _running(device_id: Any, before: datetime, column: Any) -> ScalarSelect[Any]:
    """``column`` of the card's latest hourly row before ``before`` (one index seek)."""
    return (
        select(column)
        .where(UsageHour.device_id == device_id, UsageHour.hour < before)
        .order_by(UsageHour.hour.desc())
        .limit(1)
        .scalar_subquery()
    )


async def measured_totals(
    session: AsyncSession, team_id: str, start: datetime, end: datetime
) -> Measured:
    """MiB·seconds measured on the workspace's bound cards in the hours starting in
    ``[start, end)``."""
    first, stop = counted_hours(start, end)
    bound = _bound(team_id).subquery("bound")
    per_gpu: dict[int, int] = {}
    per_login: dict[str, int] = {}
    ends = select(
        bound.c.gpu_id,
        *(
            _running(bound.c.device_id, at, column)
            for at in (stop, first)
            for column in (UsageHour.cum_used_mib_s, UsageHour.cum_users)
        ),
    )
    for gpu_id, end_mib_s, end_users, start_mib_s, start_users in await session.execute(ends):
        per_gpu[gpu_id] = (end_mib_s or 0) - (start_mib_s or 0)
        for login, mib_s in (end_users or {}).items():
            per_login[login] = per_login.get(login, 0) + mib_s
        for login, mib_s in (start_users or {}).items():
            per_login[login] = per_login.get(login, 0) - mib_s
    await _add_unsummed(session, team_id, first, stop, per_gpu, per_login)
    return Measured(per_gpu, {login: s for login, s in per_login.items() if s})


async def _add_unsummed(
    session: AsyncSession,
    team_id: str,
    first: datetime,
    stop: datetime,
    per_gpu: dict[int, int],
    per_login: dict[str, int],
) -> None:
    """Add the samples of ``[first, stop)`` that the roll-up has not summed yet."""
    dialect = session.bind.dialect.name
    bound = _bound(team_id).cte("unsummed_bound")
    latest = func.max if dialect == "sqlite" else func.greatest
    # One lower bound, the later of the two: given two, the database bounds its index range by
    # one and filters on the other, and may pick the window's start — every sample kept.
    since = latest(func.coalesce(bound.c.rolled_to, literal(_NEVER, UTCDateTime())), first)
    in_window = (
        UsageSample.device_id == bound.c.device_id,
        UsageSample.at >= since,
        UsageSample.at < stop,
    )
    columns = (UsageSample.used_mib, UsageSample.seconds, UsageSample.users)
    if dialect == "sqlite":
        # SQLite drives the join from the bound cards, one index range each.
        samples = select(bound.c.gpu_id, *columns).join(UsageSample, true()).where(*in_window)
    else:
        # PostgreSQL would rather hash-join every sample kept (its estimate of the per-card
        # bound is blind); LATERAL makes it one index range per card too, and OFFSET 0 keeps
        # the planner from flattening the LATERAL back into that join.
        per_card = select(*columns).where(*in_window).offset(0).lateral("per_card")
        samples = select(bound.c.gpu_id, per_card).join(per_card, true())
    samples = samples.subquery()
    for gpu_id, mib_s in await session.execute(
        select(samples.c.gpu_id, func.sum(samples.c.used_mib * samples.c.seconds)).group_by(
            samples.c.gpu_id
        )
    ):
        per_gpu[gpu_id] = per_gpu.get(gpu_id, 0) + int(mib_s or 0)
    each = func.json_each if session.bind.dialect.name == "sqlite" else func.json_each_text
    pairs = each(samples.c.users).table_valued("key", "value")
    for login, mib_s in await session.execute(
        select(pairs.c.key, func.sum(cast(pairs.c.value, BigInteger) * samples.c.seconds))
        .select_from(samples)
        .join(pairs, true())
        .group_by(pairs.c.key)
    ):
        per_login[login] = per_login.get(login, 0) + int(mib_s or 0)
