"""Usage samples older than the retention become hourly aggregates: kept small, summed exactly.

Runs in the lifecycle sweep. Each card is rolled up in a transaction of its own that first locks
the card's row: a second replica sweeping at the same moment waits, then finds nothing left to
roll up, so an hour is never counted twice. Hours are whole: the cut-off is the start of the hour
the retention reaches into, and reports only ever add samples at "now", past it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.core.measure import Sample, Totals, by_hour, hour_of
from storage.db import Database
from storage.models import AgentDevice, UsageHour, UsageSample

#: Samples rolled up per card and transaction (a day of 15-second reports is 5,760).
BATCH = 20_000


async def roll_up(db: Database, now: datetime, retention: timedelta) -> int:
    """Roll every sample taken before the retention's hour into hourly rows; returns how many."""
    cutoff = hour_of(now - retention)
    async with db.read() as session:
        devices = list(
            await session.scalars(
                select(UsageSample.device_id).where(UsageSample.at < cutoff).distinct()
            )
        )
    done = 0
    for device_id in devices:
        while moved := await _roll_device(db, device_id, cutoff):
            done += moved
    return done


async def _roll_device(db: Database, device_id: int, cutoff: datetime) -> int:
    async with db.write() as session:
        await session.execute(
            select(AgentDevice.id).where(AgentDevice.id == device_id).with_for_update()
        )
        rows = list(
            await session.execute(
                select(
                    UsageSample.id,
                    UsageSample.at,
                    UsageSample.seconds,
                    UsageSample.used_mib,
                    UsageSample.users,
                )
                .where(UsageSample.device_id == device_id, UsageSample.at < cutoff)
                .order_by(UsageSample.id)
                .limit(BATCH)
            )
        )
        if not rows:
            return 0
        hours = by_hour(Sample(at, seconds, used, users) for _, at, seconds, used, users in rows)
        for hour, totals in hours.items():
            row = await session.get(UsageHour, (device_id, hour))
            if row is None:
                session.add(
                    UsageHour(
                        device_id=device_id,
                        hour=hour,
                        samples=totals.samples,
                        seconds=totals.seconds,
                        used_mib_s=totals.used_mib_s,
                        max_used_mib=totals.max_used_mib,
                        users=totals.users,
                    )
                )
            else:
                merged = Totals(
                    row.samples, row.seconds, row.used_mib_s, row.max_used_mib, dict(row.users)
                )
                merged.merge(totals)
                row.samples, row.seconds, row.used_mib_s = (
                    merged.samples,
                    merged.seconds,
                    merged.used_mib_s,
                )
                row.max_used_mib, row.users = merged.max_used_mib, merged.users
        await session.execute(
            delete(UsageSample).where(
                UsageSample.device_id == device_id,
                UsageSample.at < cutoff,
                UsageSample.id <= rows[-1][0],
            )
        )
        return len(rows)
