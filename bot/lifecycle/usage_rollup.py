"""Usage samples summed into hourly rows as time passes, each row also carrying the card's
running totals, so statistics read two rows per card instead of every 15-second sample.

Runs in the lifecycle sweep. Each card records how far its samples are summed, ``rolled_to``
(every :data:`STEP`, up to :data:`GRACE` before now). Statistics read running totals for the
samples before it and raw samples only from it on — so nothing is counted twice and nothing is
left out (:mod:`bot.booking.measured`).

Each card is rolled up in a transaction of its own that first locks the card's row and reads its
mark under that lock: a second replica sweeping at the same moment waits, then finds the card
already summed, so a sample is never counted twice. A report stamps its samples with the time it
arrived, before its transaction commits; :data:`GRACE` keeps the roll-up behind any report still
being written (and behind clocks of replicas that disagree by less); a report slower than that
would land behind the mark, and its samples would be left out of statistics (never counted
twice). Samples themselves are kept for the retention and deleted only once summed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.measure import Sample, Totals, by_hour, hour_of
from storage.db import Database
from storage.models import AgentDevice, UsageHour, UsageSample

#: How far behind now the roll-up stays: longer than a report's transaction takes.
GRACE = timedelta(minutes=1)
#: Samples are summed in steps of this much: what statistics read raw is at most GRACE + STEP
#: (plus one sweep interval) of samples per card; each card is written once per step.
STEP = timedelta(minutes=2)
#: At most this much of a card's samples (a day of 15-second reports is 5,760) per transaction.
SPAN = timedelta(days=1)


def rolled_target(now: datetime) -> datetime:
    """How far samples may be summed at ``now``: :data:`GRACE` back, down to a :data:`STEP`."""
    back = now - GRACE
    step = int(STEP.total_seconds())
    into_hour = back - hour_of(back)
    return hour_of(back) + timedelta(seconds=int(into_hour.total_seconds()) // step * step)


async def roll_up(db: Database, now: datetime, retention: timedelta) -> int:
    """Sum every card's samples up to :func:`rolled_target` into hourly rows and its whole days
    into daily rows; delete summed samples older than the retention's hour. Returns how many
    samples were summed."""
    target = rolled_target(now)
    cutoff = hour_of(now - retention)
    async with db.read() as session:
        devices = list(
            await session.scalars(
                select(AgentDevice.id)
                .where(or_(AgentDevice.rolled_to.is_(None), AgentDevice.rolled_to < target))
                .order_by(AgentDevice.id)
            )
        )
    done = 0
    for device_id in devices:
        while True:
            moved, caught_up = await _roll_device(db, device_id, target, cutoff)
            done += moved
            if caught_up:
                break
    return done


async def _roll_device(
    db: Database, device_id: int, target: datetime, cutoff: datetime
) -> tuple[int, bool]:
    """One step for one card, under its row lock: at most :data:`SPAN` of samples."""
    async with db.write() as session:
        rolled_to = (
            await session.execute(
                select(AgentDevice.rolled_to).where(AgentDevice.id == device_id).with_for_update()
            )
        ).scalar_one()
        if rolled_to is not None and rolled_to >= target:
            return 0, True
        if rolled_to is None:
            # Never rolled up: every sample kept is still to sum (the retention's roll-up of
            # earlier versions deleted what it summed).
            first = await session.scalar(
                select(func.min(UsageSample.at)).where(UsageSample.device_id == device_id)
            )
            rolled_to = min(hour_of(first), target) if first is not None else target
        upto = min(target, rolled_to + SPAN)
        rows = list(
            await session.execute(
                select(
                    UsageSample.at, UsageSample.seconds, UsageSample.used_mib, UsageSample.users
                ).where(
                    UsageSample.device_id == device_id,
                    UsageSample.at >= rolled_to,
                    UsageSample.at < upto,
                )
            )
        )
        await _add_hours(session, device_id, by_hour(Sample(*row) for row in rows))
        await session.execute(
            delete(UsageSample).where(
                UsageSample.device_id == device_id, UsageSample.at < min(cutoff, upto)
            )
        )
        await session.execute(
            update(AgentDevice).where(AgentDevice.id == device_id).values(rolled_to=upto)
        )
        return len(rows), upto >= target


async def _add_hours(session: AsyncSession, device_id: int, hours: dict[datetime, Totals]) -> None:
    """Add each hour's totals to its row (the hour under way is summed a step at a time), in
    hour order, carrying the running totals on from the card's latest row."""
    if not hours:
        return
    first = min(hours)
    latest = await session.scalar(
        select(UsageHour)
        .where(UsageHour.device_id == device_id, UsageHour.hour <= first)
        .order_by(UsageHour.hour.desc())
        .limit(1)
    )
    running = Totals()
    if latest is not None:
        running = Totals(used_mib_s=latest.cum_used_mib_s, users=dict(latest.cum_users))
    for hour in sorted(hours):
        totals = hours[hour]
        running.merge(totals)
        row = latest if latest is not None and latest.hour == hour else None
        if row is None:
            row = UsageHour(device_id=device_id, hour=hour, users={})
            session.add(row)
            summed = totals
        else:
            summed = Totals(
                row.samples, row.seconds, row.used_mib_s, row.max_used_mib, dict(row.users)
            )
            summed.merge(totals)
        row.samples, row.seconds, row.used_mib_s = summed.samples, summed.seconds, summed.used_mib_s
        row.max_used_mib, row.users = summed.max_used_mib, summed.users
        row.cum_used_mib_s, row.cum_users = running.used_mib_s, dict(running.users)
