"""The live-usage part of each lifecycle sweep: link logins by e-mail when that is on (see
:mod:`bot.lifecycle.email_links`), reconcile bookings against measured use (see
:mod:`bot.lifecycle.reconcile_sweep`), then roll old samples up into hours.

An idle booking the reconciliation ends early frees memory like a release by its owner, so the
workspace's queue of flexible bookings gets its pass (``after_free``: the service's
:meth:`~bot.booking.queue.Queue.after_freeing`, then the watches' check), in its own transaction
after the release committed — as every other write that frees memory does
(:mod:`bot.booking.queue_passes`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


#: A queue pass for one workspace (the team id), after memory was freed there.
AfterFree = Callable[[str], Awaitable[object]]


class UsageSweep:
    def __init__(
        self,
        db: Database,
        config: ServiceConfig,
        linker: EmailLinker | None = None,
        after_free: AfterFree | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.linker = linker
        self.after_free = after_free

    async def run(self, now: datetime) -> UsageCounts:
        counts = UsageCounts()
        if self.linker is not None:
            counts.linked = await self.linker.run(now)
        counts.reconciled = await reconcile_usage(self.db, self.config, now)
        if self.after_free is not None:
            for team in sorted(counts.reconciled.freed_teams):
                await self.after_free(team)
        counts.rolled_up = await roll_up(self.db, now, self.config.usage.retention)
        return counts
