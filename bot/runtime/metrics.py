"""Prometheus metrics for `gpubook serve`, exposed on ``GET /metrics``.

Every :class:`Metrics` owns its own ``CollectorRegistry`` rather than the process-global one, so
tests and benchmarks can build several apps in one process without "duplicated timeseries".

Booking outcomes are counted by :class:`MeteredBookingService`, the service itself with
``create`` observed: the three listeners that book (command, button, modal) all call it, and only
there is the outcome (created, or which refusal) known without parsing replies.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.booking import BookingService, ServiceConfig
from bot.core.clock import Clock
from bot.core.errors import CapacityError, GpubookError, PermissionDenied, SeriesRefused
from bot.core.snapshots import BookingInfo, SeriesResult
from bot.lifecycle.notifier import FlushStats
from storage.db import Database, DatabaseUnavailable

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Request latency buckets (seconds): Slack's ack deadline is 3 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    """The bot's counters and histograms in one dedicated registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gpubook_requests",
            "Slack requests handled, by kind, command/action and outcome.",
            ["kind", "command", "outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gpubook_request_seconds",
            "Time from receiving a Slack request to its ack, by kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bookings = Counter(
            "gpubook_bookings",
            "Booking attempts by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.agent_reports = Counter(
            "gpubook_agent_reports",
            "Host agents' reports: stored, or refused with this HTTP status.",
            ["outcome"],
            registry=self.registry,
        )
        self.agent_report_seconds = Histogram(
            "gpubook_agent_report_seconds",
            "Time to check and store one host agent's report.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.notifications = Counter(
            "gpubook_notifications",
            "Outbox notifications delivered to Slack (sent) or given up on this try (failed).",
            ["outcome"],
            registry=self.registry,
        )

    def observe_agent_report(self, status: int, seconds: float) -> None:
        """One ``POST /agent/report``: stored (2xx) or refused (any other status)."""
        self.agent_reports.labels("stored" if status < 300 else str(status)).inc()
        self.agent_report_seconds.observe(seconds)

    def observe_request(self, kind: str, command: str, outcome: str, seconds: float) -> None:
        self.requests.labels(kind, command, outcome).inc()
        self.request_seconds.labels(kind).observe(seconds)

    def count_booking(self, outcome: str) -> None:
        self.bookings.labels(outcome).inc()

    def count_flush(self, stats: FlushStats) -> None:
        """Record one notifier flush (the scheduler's sweep callback)."""
        self.notifications.labels("sent").inc(stats.sent)
        self.notifications.labels("failed").inc(stats.failed)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this registry."""
        return generate_latest(self.registry)


def booking_outcome(error: BaseException | None) -> str:
    """The ``gpubook_bookings_total`` outcome of a ``create`` that raised ``error`` (or not).

    Refusals other than capacity and permission (bad input, policy limits, unknown GPU, a
    retired GPU) all count as ``refused_input``: the user can fix them by asking differently.
    A database that did not answer is the bot's failure, not the user's: ``error``.
    """
    if error is None:
        return "created"
    if isinstance(error, DatabaseUnavailable):
        return "error"
    if isinstance(error, CapacityError | SeriesRefused):  # a series refused: some did not fit
        return "refused_capacity"
    if isinstance(error, PermissionDenied):
        return "refused_permission"
    if isinstance(error, GpubookError):
        return "refused_input"
    return "error"


class MeteredBookingService(BookingService):
    """The booking service, counting the outcome of every ``create`` (flexible ones too)."""

    def __init__(
        self, db: Database, config: ServiceConfig, clock: Clock, *, metrics: Metrics
    ) -> None:
        super().__init__(db, config, clock)
        self.metrics = metrics

    async def create(self, *args: Any, **kwargs: Any) -> BookingInfo:
        return await self._counted(super().create(*args, **kwargs))

    async def create_flexible(self, *args: Any, **kwargs: Any) -> BookingInfo:
        return await self._counted(super().create_flexible(*args, **kwargs))

    async def _counted(self, making: Awaitable[BookingInfo]) -> BookingInfo:
        try:
            booking = await making
        except Exception as error:
            self.metrics.count_booking(booking_outcome(error))
            raise
        self.metrics.count_booking(booking_outcome(None))
        return booking

    async def create_series(self, *args: Any, **kwargs: Any) -> SeriesResult:
        """A series counts once when refused, and once per occurrence booked."""
        try:
            result = await super().create_series(*args, **kwargs)
        except Exception as error:
            self.metrics.count_booking(booking_outcome(error))
            raise
        for _ in result.booked:
            self.metrics.count_booking(booking_outcome(None))
        return result
