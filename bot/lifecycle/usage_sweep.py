"""The live-usage part of each lifecycle sweep: retention roll-up of usage samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.booking.config import ServiceConfig
from bot.lifecycle.usage_rollup import roll_up
from storage.db import Database


@dataclass
class UsageCounts:
    """What one usage sweep did."""

    rolled_up: int = 0

    @property
    def total(self) -> int:
        return self.rolled_up


class UsageSweep:
    def __init__(self, db: Database, config: ServiceConfig) -> None:
        self.db = db
        self.config = config

    async def run(self, now: datetime) -> UsageCounts:
        counts = UsageCounts()
        counts.rolled_up = await roll_up(self.db, now, self.config.usage.retention)
        return counts
