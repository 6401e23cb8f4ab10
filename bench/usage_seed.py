"""Measured use as the roll-up leaves it, seeded directly: what ``admin stats`` reads at scale
(bench/scale_bench.py). Seeding 8 million 15-second samples per week of a 200-card department
would take longer than the bench; the hourly rows the roll-up writes
(:mod:`bot.lifecycle.usage_rollup`) are what statistics read, so those are written instead, plus
the last hour of samples. The figures are random: only their shape and number matter here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import insert, select, update

from bench.common import ADMIN, T0
from bot.core.measure import HOUR, hour_of
from bot.lifecycle.usage_rollup import GRACE, STEP
from storage.db import Database
from storage.models import AgentDevice, Gpu, UsageHour, UsageSample

#: Measured use seeded per card: hourly rows (with running totals) for ``USAGE_DAYS``, an hour
#: of samples (every 15 s) of which the last ``UNSUMMED`` are past the card's ``rolled_to``.
USAGE_DAYS = 35
SAMPLE_EVERY = timedelta(seconds=15)
#: The most a card's samples are ever behind: the roll-up's grace and step, and one sweep
#: interval (30 s by default) before the sweep that catches up.
UNSUMMED = GRACE + STEP + timedelta(seconds=30)
LOGINS = 40


def _use(rng: random.Random, mib: int) -> dict[str, int]:
    """Two logins sharing ``mib`` (whatever unit: the share of each)."""
    a, b = rng.sample(range(LOGINS), 2)
    return {f"u{a:02d}": mib // 3, f"u{b:02d}": mib - mib // 3}


async def seed_usage(db: Database, gpu_ids: Sequence[int], rng: random.Random) -> None:
    """Bind an agent's card to every GPU and give it :data:`USAGE_DAYS` of rolled-up use, summed
    up to :data:`UNSUMMED` before now."""
    rolled_to = T0 - UNSUMMED
    first_day = hour_of(T0) - timedelta(days=USAGE_DAYS)
    hours = int((hour_of(rolled_to) - first_day) / HOUR) + 1
    samples = int(HOUR / SAMPLE_EVERY)
    async with db.write() as session:
        for gpu_id in gpu_ids:
            await session.execute(
                update(Gpu).where(Gpu.id == gpu_id).values(device_uuid=f"GPU-{gpu_id}")
            )
        session.add_all(
            AgentDevice.first_seen(
                ADMIN.team_id,
                f"GPU-{gpu_id}",
                first_day,
                host=f"host-{gpu_id // 8}",
                index=gpu_id % 8,
                name="A100",
                total_mib=81920,
                used_mib=0,
                last_seen_at=T0,
                rolled_to=rolled_to,
            )
            for gpu_id in gpu_ids
        )
    async with db.read() as session:
        devices = list(await session.scalars(select(AgentDevice.id)))
    for device_id in devices:
        hour_rows, sample_rows = [], []
        running, users = 0, {}
        for h in range(hours):
            mib_s = rng.randrange(3600 * 81_920)
            running += mib_s
            shares = _use(rng, mib_s)
            for login, share in shares.items():
                users[login] = users.get(login, 0) + share
            hour_rows.append(
                {
                    "device_id": device_id,
                    "hour": first_day + h * HOUR,
                    "samples": 240,
                    "seconds": 3600,
                    "used_mib_s": mib_s,
                    "max_used_mib": 81_920,
                    "users": shares,
                    "cum_used_mib_s": running,
                    "cum_users": dict(users),
                }
            )
        for n in range(samples):
            used = rng.randrange(81_920)
            sample_rows.append(
                {
                    "device_id": device_id,
                    "at": T0 - HOUR + n * SAMPLE_EVERY,
                    "seconds": 15,
                    "used_mib": used,
                    "users": _use(rng, used),
                }
            )
        async with db.write() as session:
            await session.execute(insert(UsageHour), hour_rows)
            await session.execute(insert(UsageSample), sample_rows)
