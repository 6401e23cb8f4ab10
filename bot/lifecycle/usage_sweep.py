"""The live-usage part of each lifecycle sweep: link logins by e-mail when that is on (see
:mod:`bot.lifecycle.email_links`), reconcile bookings against measured use (see
:mod:`bot.lifecycle.reconcile_sweep`), then roll old samples up into hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.booking.config import ServiceConfig
from bot.lifecycle.email_links import EmailLinker
from bot.lifecycle.reconcile_sweep import ReconcileCounts, reconcile_usage
from bot.lifecycle.usage_rollup import roll_up
from storage.db import Database


@dataclass
class UsageCounts:
    """What one usage sweep did."""

    reconciled: ReconcileCounts = field(default_factory=ReconcileCounts)
    rolled_up: int = 0
    linked: int = 0

    @property
    def total(self) -> int:
        r = self.reconciled
        return r.opened + r.cleared + r.released + r.silent + self.rolled_up + self.linked


class UsageSweep:
    def __init__(
        self, db: Database, config: ServiceConfig, linker: EmailLinker | None = None
    ) -> None:
        self.db = db
        self.config = config
        self.linker = linker

    async def run(self, now: datetime) -> UsageCounts:
        counts = UsageCounts()
        if self.linker is not None:
            counts.linked = await self.linker.run(now)
        counts.reconciled = await reconcile_usage(self.db, self.config, now)
        counts.rolled_up = await roll_up(self.db, now, self.config.usage.retention)
        return counts
