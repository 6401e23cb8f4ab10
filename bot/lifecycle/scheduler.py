"""Runs the lifecycle sweep on a timer inside the bot's event loop (APScheduler 3.x).

APScheduler only triggers; it holds no state worth keeping. The bookings table and the outbox
are the truth, so the job store stays in memory and every replica runs the same sweep: the
database claims (status changes, outbox leases) decide who does what, and a replica that was down
catches up on its first sweep, which runs right at start.

The scheduler is created in :meth:`LifecycleScheduler.start`, which must run inside the running
loop: an ``AsyncIOScheduler`` built outside it can bind a wrong or closed loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import ServiceConfig
from bot.core.clock import Clock
from bot.lifecycle.email_links import EmailLinker
from bot.lifecycle.notifier import FlushStats, Notifier, Renderer
from bot.lifecycle.routing import OneClient, TeamClients
from bot.lifecycle.sweep import AdvanceCounts, Lifecycle
from bot.lifecycle.usage_sweep import AfterFree, UsageCounts, UsageSweep
from storage.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

SWEEP_JOB = "gpubook-sweep"
#: A sweep is late beyond this many intervals, and /healthz reports unhealthy.
HEALTHY_INTERVALS = 3


@dataclass(frozen=True)
class SweepResult:
    advanced: AdvanceCounts
    flushed: FlushStats
    usage: UsageCounts | None = None


class LifecycleScheduler:
    def __init__(
        self,
        lifecycle: Lifecycle,
        notifier: Notifier,
        *,
        sweep_seconds: int = 30,
        on_flush: Callable[[FlushStats], None] | None = None,
        usage: UsageSweep | None = None,
    ):
        self.lifecycle = lifecycle
        self.notifier = notifier
        #: Live usage (roll-up, reconciliation), run after bookings moved and before posting.
        self.usage = usage
        self.sweep_seconds = sweep_seconds
        #: Told what each flush did (``bot.runtime.metrics`` counts notifications with it).
        self.on_flush = on_flush
        self.clock = lifecycle.clock
        self.last_success: datetime | None = None
        self._started_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        #: Whether the last sweep found the database away (logged once, not per sweep).
        self.database_away = False

    def start(self) -> None:
        """Create the scheduler on the running loop; the first sweep runs at once (catch-up)."""
        loop = asyncio.get_running_loop()  # raises outside a loop: see the module docstring
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
        self._scheduler.add_job(
            self.sweep_logged,
            "interval",
            seconds=self.sweep_seconds,
            id=SWEEP_JOB,
            max_instances=1,
            coalesce=True,
            # A sweep delayed by a busy loop should still run, not be skipped as "missed".
            misfire_grace_time=max(self.sweep_seconds * 10, 60),
            # APScheduler fires on real time whatever clock the sweep reads: "now" here means now.
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()
        self._started_at = self.clock()

    def schedule_precise(self, at: datetime) -> None:
        """Also sweep at ``at`` (a booking's start or end), to cut latency below the interval.

        Each sweep asks the lifecycle when the next transition falls and, when that is sooner
        than the next interval, books a one-off sweep for it. One job per instant, so many
        bookings starting together add one job, not many.
        """
        if self._scheduler is None or at <= self.clock():
            return
        self._scheduler.add_job(
            self.sweep_logged,
            "date",
            run_date=at,
            id=f"gpubook-at-{at.timestamp():.0f}",
            replace_existing=True,
            misfire_grace_time=self.sweep_seconds,
        )

    async def sweep(self) -> SweepResult:
        """Advance bookings, then post what is owed. Never two at once in one process."""
        async with self._lock:
            now = self.clock()
            advanced = await self.lifecycle.advance(now)
            usage = await self.usage.run(now) if self.usage is not None else None
            flushed = await self.notifier.flush(now)
            if self.on_flush is not None:
                self.on_flush(flushed)
            self.last_success = now
            next_due = await self.lifecycle.next_due(now)
        if next_due is not None and next_due - now < timedelta(seconds=self.sweep_seconds):
            self.schedule_precise(next_due)
        return SweepResult(advanced, flushed, usage)

    async def sweep_logged(self) -> None:
        """The scheduled job: a failing sweep is logged and retried next interval, never fatal.

        The database being away is expected (a restart, a failover) and every sweep until it is
        back would fail the same way, so that is one line when it goes and one when it is back,
        with no traceback: ``storage.db`` has already logged the driver's reason. Anything else
        is a bug, logged with its traceback each time.

        A job already handed to the loop when shutdown began does nothing: started now, it would
        be cancelled mid-sweep by the scheduler's shutdown.
        """
        if self._stopping:
            return
        try:
            result = await self.sweep()
        except DatabaseUnavailable:
            if not self.database_away:
                log.warning(
                    "lifecycle sweeps fail while the database is unavailable; retrying every %d s",
                    self.sweep_seconds,
                )
            self.database_away = True
            return
        except Exception:
            log.exception("lifecycle sweep failed; the next one retries")
            return
        if self.database_away:
            self.database_away = False
            log.info("lifecycle sweeps resumed: the database is back")
        if result.advanced.total or result.flushed.claimed or (result.usage and result.usage.total):
            log.info("sweep: %s %s %s", result.advanced, result.flushed, result.usage)

    def healthy(self) -> bool:
        """Whether a sweep succeeded within the last few intervals (for /healthz); a scheduler
        that just started gets the same grace before its first sweep has finished."""
        reference = self.last_success or self._started_at
        if reference is None:
            return False
        return self.clock() - reference <= timedelta(seconds=HEALTHY_INTERVALS * self.sweep_seconds)

    async def shutdown(self) -> None:
        """Stop triggering sweeps and let one that is running finish before stopping.

        APScheduler's asyncio executor cancels running jobs on shutdown, and a sweep cancelled
        between a Slack post and marking it sent would post it again later; so pause first, take
        the sweep lock (waiting out the sweep in flight), and only then shut down.
        """
        if self._scheduler is None or not self._scheduler.running:
            return
        self._stopping = True
        self._scheduler.pause()
        async with self._lock:
            self._scheduler.shutdown(wait=False)


async def start_lifecycle(
    db: Database,
    client: AsyncWebClient | TeamClients,
    config: ServiceConfig,
    clock: Clock,
    *,
    render: Renderer,
    sweep_seconds: int = 30,
    reminder_before: timedelta = timedelta(minutes=15),
    worker_id: str | None = None,
    on_flush: Callable[[FlushStats], None] | None = None,
    after_free: AfterFree | None = None,
) -> LifecycleScheduler:
    """Build and start the lifecycle for a running bot; ``await scheduler.shutdown()`` on exit.
    ``after_free`` runs the queue pass (and the watches' check) of a workspace where the sweep
    released an idle booking."""
    clients = OneClient(client) if isinstance(client, AsyncWebClient) else client
    domain = config.usage.link_email_domain
    linker = EmailLinker(db, clients, domain) if domain else None
    scheduler = LifecycleScheduler(
        Lifecycle(db, config, clock, reminder_before=reminder_before),
        Notifier(
            db,
            clients,
            clock,
            render=render,
            worker_id=worker_id,
            default_channel=config.default_channel,
        ),
        sweep_seconds=sweep_seconds,
        on_flush=on_flush,
        usage=UsageSweep(db, config, linker, after_free),
    )
    scheduler.start()
    return scheduler
