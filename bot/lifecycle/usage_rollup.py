"""Usage samples summed into hourly rows as time passes, and hourly rows into daily rows as
days pass, so statistics read a few pre-summed rows instead of every 15-second sample.

Runs in the lifecycle sweep. Each card records how far it is summed: ``rolled_to`` for samples
(every :data:`STEP`, up to :data:`GRACE` before now) and ``days_rolled_to`` for whole UTC days.
Statistics read samples only from ``rolled_to`` on, hourly rows only where no daily row sums them
— so nothing is counted twice and nothing is left out (:mod:`bot.booking.measured`).

Each card is rolled up in a transaction of its own that first locks the card's row and reads its
marks under that lock: a second replica sweeping at the same moment waits, then finds the card
already summed, so a sample is never counted twice. A report stamps its samples with the time it
arrived, before its transaction commits; :data:`GRACE` keeps the roll-up behind any report still
being written (and behind clocks of replicas that disagree by less). Samples themselves are kept
for the retention (for a closer look at recent use) and deleted only once summed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.measure import DAY, Sample, Totals, by_day, by_hour, day_of, hour_of
from storage.db import Database
from storage.models import AgentDevice, UsageDay, UsageHour, UsageSample

#: How far behind now the roll-up stays: longer than a report's transaction takes.
GRACE = timedelta(minutes=2)
#: Samples are summed in steps of this much: what statistics read raw is at most GRACE + STEP
#: (plus one sweep interval) of samples per card.
STEP = timedelta(minutes=5)
#: At most this much of a card's samples (a day of 15-second reports is 5,760) per transaction.
SPAN = DAY


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
        rolled_to, days_rolled_to = (
            await session.execute(
                select(AgentDevice.rolled_to, AgentDevice.days_rolled_to)
                .where(AgentDevice.id == device_id)
                .with_for_update()
            )
        ).one()
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
        for hour, totals in by_hour(Sample(*row) for row in rows).items():
            await _add(session, UsageHour(device_id=device_id, hour=hour), totals)
        days_to = await _roll_days(session, device_id, days_rolled_to, day_of(upto))
        await session.execute(
            delete(UsageSample).where(
                UsageSample.device_id == device_id, UsageSample.at < min(cutoff, upto)
            )
        )
        await session.execute(
            update(AgentDevice)
            .where(AgentDevice.id == device_id)
            .values(rolled_to=upto, days_rolled_to=days_to)
        )
        return len(rows), upto >= target


async def _roll_days(
    session: AsyncSession, device_id: int, since: datetime | None, until: datetime
) -> datetime:
    """Sum the card's hourly rows of the whole days ``[since, until)`` into daily rows (all of
    them are final: their samples are summed); returns the new ``days_rolled_to``."""
    if since is None:
        first = await session.scalar(
            select(func.min(UsageHour.hour)).where(UsageHour.device_id == device_id)
        )
        since = day_of(first) if first is not None else until
    if since >= until:
        return since
    hours = select(UsageHour).where(
        UsageHour.device_id == device_id, UsageHour.hour >= since, UsageHour.hour < until
    )
    totals = {row.hour: _totals(row) for row in await session.scalars(hours)}
    for day, summed in by_day(totals).items():
        await _add(session, UsageDay(device_id=device_id, day=day), summed)
    return until


def _totals(row: UsageHour | UsageDay) -> Totals:
    return Totals(row.samples, row.seconds, row.used_mib_s, row.max_used_mib, dict(row.users))


async def _add(session: AsyncSession, new: UsageHour | UsageDay, totals: Totals) -> None:
    """Add ``totals`` to its row (the hour under way is summed a step at a time)."""
    key = (new.device_id, new.hour if isinstance(new, UsageHour) else new.day)
    row = await session.get(type(new), key)
    if row is None:
        row = new
        session.add(row)
    else:
        merged = _totals(row)
        merged.merge(totals)
        totals = merged
    row.samples, row.seconds, row.used_mib_s = totals.samples, totals.seconds, totals.used_mib_s
    row.max_used_mib, row.users = totals.max_used_mib, totals.users
