"""Usage samples summed into hourly rows as time passes, each row also carrying the card's
running totals, so statistics read two rows per card instead of every 15-second sample.

Runs in the lifecycle sweep. Each card records how far its samples are summed, ``rolled_to``
(every :data:`STEP`, up to :data:`GRACE` before now). Statistics read running totals for the
samples before it and raw samples only from it on — so nothing is counted twice and nothing is
left out (:mod:`bot.booking.measured`).

Cards are rolled up a batch per transaction that first takes the roll-up's lock and reads their
marks under it: a second replica sweeping at the same moment waits, then finds the cards already
summed, so a sample is never counted twice. On SQLite that lock is the write lock every write
takes; on PostgreSQL an advisory lock of the roll-up's own (:data:`ROLL_UP_LOCK`), not the cards'
rows: reports update those rows all the time, and with the rows locked for a batch's whole
transaction each report on them — and every report queued behind it in its group commit — waited
for it (a fleet's step is 200 transactions). The cards' rows are locked only by the last
statement, which moves their marks. A report stamps its samples with
the time it arrived, before its transaction commits; :data:`GRACE` keeps the roll-up behind any report still
being written (and behind clocks of replicas that disagree by less); a report slower than that
would land behind the mark, and its samples would be left out of statistics (never counted
twice). Samples themselves are kept for the retention and deleted only once summed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.measure import HOUR, Sample, Totals, by_hour, hour_of
from storage.db import Database
from storage.models import AgentDevice, UsageHour, UsageSample

#: How far behind now the roll-up stays: longer than a report's transaction takes.
GRACE = timedelta(minutes=1)
#: Samples are summed in steps of this much: what statistics read raw is at most GRACE + STEP
#: (plus one sweep interval) of samples per card; each card is written once per step.
STEP = timedelta(minutes=2)
#: At most this much of a card's samples (a day of 15-second reports is 5,760) per transaction.
SPAN = timedelta(days=1)
#: The PostgreSQL advisory lock roll-ups take in turn (a key gpubook uses for nothing else).
ROLL_UP_LOCK = 0x6770_7562_726F_6C6C  # "gpubroll"
#: Cards summed per transaction: few enough that a report waiting behind one (SQLite's write
#: lock, PostgreSQL's row locks) waits ~15 ms, not the 25-45 ms of 50 (measured at load 7-9),
#: many enough that a fleet's step is 200 transactions, not 4,000.
BATCH = 20


def rolled_target(now: datetime) -> datetime:
    """How far samples may be summed at ``now``: :data:`GRACE` back, down to a :data:`STEP`."""
    back = now - GRACE
    step = int(STEP.total_seconds())
    into_hour = back - hour_of(back)
    return hour_of(back) + timedelta(seconds=int(into_hour.total_seconds()) // step * step)


async def roll_up(db: Database, now: datetime, retention: timedelta) -> int:
    """Sum every card's samples up to :func:`rolled_target` into hourly rows and its whole days
    into daily rows; delete summed samples older than the retention's hour. Returns how many
    samples were summed.

    Cards are summed :data:`BATCH` at a time, one transaction per batch: a fleet of 4,000 cards
    reaches a new step every 2 minutes, and a transaction per card (about 9 ms each on SQLite,
    every one holding the write lock) kept the database busy for half a minute of every two,
    with each host's report waiting behind it."""
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
    for first in range(0, len(devices), BATCH):
        pending = devices[first : first + BATCH]
        while pending:
            moved, pending = await _roll_devices(db, pending, target, cutoff)
            done += moved
    return done


async def _roll_devices(
    db: Database, device_ids: list[int], target: datetime, cutoff: datetime
) -> tuple[int, list[int]]:
    """One step for a batch of cards, under the roll-up's lock (see the module docstring): at
    most :data:`SPAN` of samples each. Returns the samples summed and the cards not caught up.

    Its statements are small and indexed (a batch's marks, samples and hourly rows), so on
    SQLite they run on the event loop's thread once the write lock is held
    (:mod:`storage.sqlite_driver`), which holds that lock a fraction as long."""
    async with db.write(on_loop=True) as session:
        if db.backend == "postgresql":
            await session.execute(select(func.pg_advisory_xact_lock(ROLL_UP_LOCK)))
        marks = await session.execute(
            select(AgentDevice.id, AgentDevice.rolled_to)
            .where(AgentDevice.id.in_(device_ids))
            .order_by(AgentDevice.id)
        )
        due = {d: at for d, at in marks if at is None or at < target}
        never = [d for d, at in due.items() if at is None]
        if never:
            # Never rolled up: every sample kept is still to sum (the retention's roll-up of
            # earlier versions deleted what it summed).
            firsts = {
                d: at
                for d, at in await session.execute(
                    select(UsageSample.device_id, func.min(UsageSample.at))
                    .where(UsageSample.device_id.in_(never))
                    .group_by(UsageSample.device_id)
                )
            }
            for d in never:
                first = firsts.get(d)
                due[d] = min(hour_of(first), target) if first is not None else target
        # Cards with the same mark and end are read, deleted and marked by one statement each
        # (in a steady fleet that is every card of the batch).
        spans: dict[tuple[datetime, datetime], list[int]] = {}
        for d, rolled_to in due.items():
            spans.setdefault((rolled_to, min(target, rolled_to + SPAN)), []).append(d)
        samples: dict[int, list[Sample]] = {}
        moved = 0
        for (rolled_to, upto), ids in spans.items():
            rows = await session.execute(
                select(
                    UsageSample.device_id,
                    UsageSample.at,
                    UsageSample.seconds,
                    UsageSample.used_mib,
                    UsageSample.users,
                ).where(
                    UsageSample.device_id.in_(ids),
                    UsageSample.at >= rolled_to,
                    UsageSample.at < upto,
                )
            )
            for device_id, *sample in rows:
                samples.setdefault(device_id, []).append(Sample(*sample))
                moved += 1
        hours = {d: by_hour(found) for d, found in samples.items()}
        await _add_hours(session, hours, {d: due[d] for d in hours})
        # The cards' rows are locked only now, in id order as every writer locks them.
        await session.execute(
            select(AgentDevice.id)
            .where(AgentDevice.id.in_(list(due)))
            .order_by(AgentDevice.id)
            .with_for_update()
        )
        behind = []
        for (_, upto), ids in spans.items():
            await session.execute(
                delete(UsageSample).where(
                    UsageSample.device_id.in_(ids), UsageSample.at < min(cutoff, upto)
                )
            )
            await session.execute(
                update(AgentDevice).where(AgentDevice.id.in_(ids)).values(rolled_to=upto)
            )
            if upto < target:
                behind += ids
        return moved, sorted(behind)


async def _add_hours(
    session: AsyncSession,
    hours: dict[int, dict[datetime, Totals]],
    rolled_to: dict[int, datetime],
) -> None:
    """Add each card's hours' totals to its rows (the hour under way is summed a step at a
    time), in hour order, carrying the running totals on from the card's latest row."""
    latest = await _latest_rows(session, {d: min(h) for d, h in hours.items()}, rolled_to)
    for device_id, card_hours in hours.items():
        last = latest.get(device_id)
        running = Totals()
        if last is not None:
            running = Totals(used_mib_s=last.cum_used_mib_s, users=dict(last.cum_users))
        for hour in sorted(card_hours):
            totals = card_hours[hour]
            running.merge(totals)
            row = last if last is not None and last.hour == hour else None
            if row is None:
                row = UsageHour(device_id=device_id, hour=hour, users={})
                session.add(row)
                summed = totals
            else:
                summed = Totals(
                    row.samples, row.seconds, row.used_mib_s, row.max_used_mib, dict(row.users)
                )
                summed.merge(totals)
            row.samples, row.seconds = summed.samples, summed.seconds
            row.used_mib_s, row.max_used_mib, row.users = (
                summed.used_mib_s,
                summed.max_used_mib,
                summed.users,
            )
            row.cum_used_mib_s, row.cum_users = running.used_mib_s, dict(running.users)


async def _latest_rows(
    session: AsyncSession, firsts: dict[int, datetime], rolled_to: dict[int, datetime]
) -> dict[int, UsageHour]:
    """Each card's latest hourly row at or before the first hour it is adding to.

    A card's rows end before its mark (they hold what was summed), so for a card reporting
    steadily the latest is its mark's hour or the one before: those are read for the whole
    batch in one statement. A card with no row there (new, or back after a silence) is looked
    up on its own."""
    if not firsts:
        return {}
    floor = min(hour_of(rolled_to[d]) for d in firsts) - HOUR
    found: dict[int, UsageHour] = {}
    for row in await session.scalars(
        select(UsageHour).where(
            UsageHour.device_id.in_(list(firsts)),
            UsageHour.hour >= floor,
            UsageHour.hour <= max(firsts.values()),
        )
    ):
        best = found.get(row.device_id)
        if row.hour <= firsts[row.device_id] and (best is None or row.hour > best.hour):
            found[row.device_id] = row
    by_first: dict[datetime, list[int]] = {}
    for device_id in sorted(set(firsts) - set(found)):
        by_first.setdefault(firsts[device_id], []).append(device_id)
    for first, ids in by_first.items():
        newest = (
            select(UsageHour.device_id, func.max(UsageHour.hour).label("hour"))
            .where(UsageHour.device_id.in_(ids), UsageHour.hour <= first)
            .group_by(UsageHour.device_id)
            .subquery()
        )
        for row in await session.scalars(
            select(UsageHour).join(
                newest,
                and_(UsageHour.device_id == newest.c.device_id, UsageHour.hour == newest.c.hour),
            )
        ):
            found[row.device_id] = row
    return found
