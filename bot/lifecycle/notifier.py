"""Posts the notification outbox to Slack: claimed with a lease, coalesced, marked sent once.

Every change writes its message intent (:class:`storage.models.Notification`) in the same
transaction as the change; this module delivers those rows. A flush

1. **claims** due, unsent rows whose lease is free or stale (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so replicas split the work instead of queueing; SQLite's ``BEGIN IMMEDIATE``
   serialises the claim) and commits the claim, so no other worker takes them while it posts;
2. **coalesces** them into one message per destination (channel, or user for DMs): Slack allows
   about one message per second per channel, so 200 bookings starting in the same minute become
   one summary, not 200 posts;
3. **posts** each message and marks its rows sent at once, in their own transaction.

A failed post (an HTTP 5xx, ``ok: false``, a network error — 429s are first retried inside the
client, which its owner hands over with slack-sdk's ``AsyncRateLimitErrorRetryHandler`` to wait
out ``Retry-After``: see ``bot.runtime.slack_client``) clears the claim and pushes ``due_at`` back with exponential backoff: the rows are retried by a later flush, never
dropped. A worker that dies after claiming leaves a lease that expires, and another worker takes
the rows over.

The one window for a duplicate is a crash *between* Slack accepting a post and the ``sent_at``
commit right after it: the rows are then still unsent and another worker re-posts them when the
lease runs out. Slack offers no idempotency key for ``chat.postMessage``, so this window is made
as small as it can be — one commit — not closed. A database that goes away in that moment does
not widen it: the worker keeps what it posted in memory, stops the flush, and records it first
thing in its next flush, once the database is back (before its lease lapses, unless the outage
outlasts the lease).

Each row belongs to a workspace (``team_id``) and is posted with that workspace's token: one
client for a single-workspace bot, or a lookup of its installed token when gpubook is installed
into many (``bot.runtime.oauth``). Rows of a workspace that has no token any more (the app was
uninstalled) can never be delivered and are closed as skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import or_, select, update
from sqlalchemy.orm import joinedload

from bot.booking.snapshots import booking_info
from bot.core.clock import Clock
from bot.core.snapshots import Notice
from bot.core.vocabulary import NoticeKind
from bot.lifecycle.routing import OneClient, TeamClients, by_destination, is_dm, obsolete, thread_ts
from storage.db import Database, DatabaseUnavailable
from storage.models import DEFAULT_CHANNEL, Booking, Notification

log = logging.getLogger(__name__)

#: Rows claimed per flush: bounds one summary message (and the claim's lock time).
CLAIM_LIMIT = 2000
#: First retry delay after a failed post; doubles per attempt up to RETRY_MAX.
RETRY_BASE = timedelta(seconds=30)
#: Short enough that a Slack outage of any length delays the owed messages by at most this much
#: once Slack is back (a reminder an hour late is useless); a try per destination every few
#: minutes costs nothing.
RETRY_MAX = timedelta(minutes=5)
#: Stop posting (and hand the rest back) once a flush has used this share of its lease, so a
#: slow Slack never lets the lease lapse mid-flush and another worker post the same rows.
LEASE_SHARE = 0.5
_ERROR_LIMIT = 500
SKIPPED_OBSOLETE = "skipped: no longer relevant"
SKIPPED_UNINSTALLED = "skipped: the workspace uninstalled gpubook"
SKIPPED_NO_CHANNEL = "skipped: no channel configured"


@dataclass
class FlushStats:
    """What one :meth:`Notifier.flush` did: rows claimed/sent/failed/skipped, Slack posts made."""

    claimed: int = 0
    posts: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0


def default_worker_id() -> str:
    """Unique per process, readable in the table: which replica holds a claim."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the ``attempts``-th failure: 30 s, 1 min, 2 min, 4 min, then every 5 min."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


@dataclass(frozen=True)
class _Posted:
    """A message Slack took whose rows could not be marked sent: the database was away."""

    rows: Sequence[Notification]
    now: datetime
    channel: str
    ts: str | None


class Rendered(Protocol):
    """A message ready for ``chat.postMessage``: fallback text and Block Kit blocks."""

    text: str
    blocks: Sequence[Any]


#: Renders the notices bound for one destination (``direct``: a DM) as one message. Interfaces
#: hand the notifier their builder (``handlers.blocks.notifications.render``), so this module
#: decides what to post and when, never how it looks.
Renderer = Callable[..., Rendered]


class Notifier:
    def __init__(
        self,
        db: Database,
        client: AsyncWebClient | TeamClients,
        clock: Clock,
        *,
        render: Renderer,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=2),
        claim_limit: int = CLAIM_LIMIT,
        default_channel: str | None = None,
    ) -> None:
        self.db = db
        self.clients = OneClient(client) if isinstance(client, AsyncWebClient) else client
        self.clock = clock
        self.render = render
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        self.claim_limit = claim_limit
        #: Where rows for :data:`~storage.models.DEFAULT_CHANNEL` go: this process's
        #: ``GPUBOOK_CHANNEL``, read now rather than by the process that wrote them.
        self.default_channel = default_channel
        #: Posted while the database was away, oldest first: recorded before anything else.
        self._unrecorded: list[_Posted] = []

    async def flush(self, now: datetime | None = None) -> FlushStats:
        """Claim what is due at ``now`` (default: the clock), post it, record the outcome.

        Raises :class:`~storage.db.DatabaseUnavailable` when the database is away: the sweep
        fails, and the next one picks up where this one stopped.
        """
        now = now or self.clock()
        stats = FlushStats()
        await self._record_unrecorded()
        ids = await self.claim(now)
        stats.claimed = len(ids)
        if not ids:
            return stats
        groups = by_destination(await self._load(ids), self.default_channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds() * LEASE_SHARE
        for n, ((_, destination), rows) in enumerate(groups):
            if loop.time() > deadline:
                stats.released = await self._release([r.id for _, g in groups[n:] for r in g])
                log.warning("flush ran past half its lease; %d rows handed back", stats.released)
                break
            await self._deliver(rows[0].team_id, destination, rows, now, stats)
        return stats

    async def claim(self, now: datetime) -> list[int]:
        """Take a lease on due, unsent rows no live worker holds; committed before posting."""
        async with self.db.write() as session:
            ids = list(
                await session.scalars(
                    select(Notification.id)
                    .where(
                        Notification.sent_at.is_(None),
                        Notification.due_at <= now,
                        or_(Notification.lease_until.is_(None), Notification.lease_until < now),
                    )
                    .order_by(Notification.id)
                    .limit(self.claim_limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                await session.execute(
                    update(Notification)
                    .where(Notification.id.in_(ids))
                    .values(claimed_by=self.worker_id, lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
        return ids

    async def _load(self, ids: Sequence[int]) -> list[Notification]:
        async with self.db.read() as session:
            query = (
                select(Notification)
                .where(Notification.id.in_(list(ids)))
                .options(joinedload(Notification.booking).joinedload(Booking.gpu))
                .order_by(Notification.id)
            )
            return list((await session.scalars(query)).unique())

    # ------------------------------------------------------------------ delivery

    async def _deliver(
        self,
        team_id: str,
        destination: str,
        rows: list[Notification],
        now: datetime,
        stats: FlushStats,
    ) -> None:
        """Post one message for ``rows`` to ``destination`` in ``team_id`` and record the
        outcome at once."""
        if destination == DEFAULT_CHANNEL:  # no channel anywhere: nobody is told
            stats.skipped += await self._skip(rows, now, SKIPPED_NO_CHANNEL)
            return
        live = [r for r in rows if not obsolete(r)]
        if len(live) < len(rows):
            stale = [r for r in rows if r not in live]
            stats.skipped += await self._skip(stale, now)
        if not live:
            return
        try:
            client = await self.clients.for_team(team_id)
        except Exception as exc:  # the token lookup failed (database): retry later, like a post
            log.exception("finding the token of workspace %s failed", team_id)
            await self._failed(live, now, _describe(exc))
            stats.failed += len(live)
            return
        if client is None:
            stats.skipped += await self._skip(live, now, SKIPPED_UNINSTALLED)
            return
        try:
            notices = [
                Notice(
                    NoticeKind(r.kind),
                    booking_info(r.booking) if r.booking is not None else None,
                    dict(r.details),
                )
                for r in live
            ]
            message = self.render(notices, direct=is_dm(destination), now=now)
        except Exception as exc:  # one unrenderable row must not hold up every other message
            log.exception("rendering %d notification(s) for %s failed", len(live), destination)
            await self._failed(live, now, _describe(exc))
            stats.failed += len(live)
            return
        try:
            response = await client.chat_postMessage(
                channel=destination,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts(destination, live),
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            await self._failed(live, now, _describe(exc))
            stats.failed += len(live)
            log.warning("posting %d notification(s) to %s failed: %s", len(live), destination, exc)
            return
        posted = _Posted(live, now, response.get("channel") or destination, response.get("ts"))
        try:
            await self._sent(posted.rows, posted.now, posted.channel, posted.ts)
        except DatabaseUnavailable:
            # Posting more now would only grow what this process alone knows was posted.
            self._unrecorded.append(posted)
            log.warning("posted to %s but cannot record it until the database is back", destination)
            raise
        stats.posts += 1
        stats.sent += len(live)

    async def _record_unrecorded(self) -> None:
        """Mark sent what an earlier flush posted while the database was away."""
        while self._unrecorded:
            posted = self._unrecorded[0]
            await self._sent(posted.rows, posted.now, posted.channel, posted.ts)
            self._unrecorded.pop(0)

    async def _sent(
        self, rows: Sequence[Notification], now: datetime, channel: str, ts: str | None
    ) -> None:
        """Mark rows sent; an announcement also becomes the thread for its booking's updates.

        Whoever holds the claim by now, these rows *were* posted: recording that (unless another
        worker already did) is what keeps them from being posted again.
        """
        ids = [r.id for r in rows]
        announced = [r.booking_id for r in rows if r.kind == NoticeKind.ANNOUNCED and r.booking_id]
        async with self.db.write() as session:
            await session.execute(
                update(Notification)
                .where(Notification.id.in_(ids), Notification.sent_at.is_(None))
                .values(
                    sent_at=now,
                    slack_ts=ts,
                    lease_until=None,
                    last_error=None,
                    attempts=Notification.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if announced and ts:
                await session.execute(
                    update(Booking)
                    .where(Booking.id.in_(announced), Booking.announce_ts.is_(None))
                    .values(announce_channel=channel, announce_ts=ts)
                    .execution_options(synchronize_session=False)
                )

    async def _failed(self, rows: Sequence[Notification], now: datetime, error: str) -> None:
        """Give the rows back with a later ``due_at``: a later flush retries them.

        Only rows this worker still holds: if a slow post outlived the lease, another worker
        has claimed (or sent) them since, and its claim must stand.
        """
        async with self.db.write() as session:
            for row in rows:
                attempts = row.attempts + 1
                await session.execute(
                    update(Notification)
                    .where(
                        Notification.id == row.id,
                        Notification.claimed_by == self.worker_id,
                        Notification.sent_at.is_(None),
                    )
                    .values(
                        attempts=attempts,
                        last_error=error,
                        claimed_by=None,
                        lease_until=None,
                        due_at=now + retry_delay(attempts),
                    )
                    .execution_options(synchronize_session=False)
                )

    async def _skip(
        self, rows: Sequence[Notification], now: datetime, reason: str = SKIPPED_OBSOLETE
    ) -> int:
        """Close rows with nothing left to say (a reminder for a booking already over) or no
        one left to say it to (an uninstalled workspace)."""
        async with self.db.write() as session:
            await session.execute(
                update(Notification)
                .where(Notification.id.in_([r.id for r in rows]))
                .values(sent_at=now, lease_until=None, last_error=reason)
                .execution_options(synchronize_session=False)
            )
        return len(rows)

    async def _release(self, ids: Sequence[int]) -> int:
        """Hand claimed rows back untouched so the next flush (here or elsewhere) takes them."""
        async with self.db.write() as session:
            await session.execute(
                update(Notification)
                .where(Notification.id.in_(list(ids)), Notification.claimed_by == self.worker_id)
                .values(claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        return len(ids)


def _describe(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if response is not None:
        error = response.get("error") if hasattr(response, "get") else None
        status = getattr(response, "status_code", "?")
        return f"HTTP {status}: {error or exc}"[:_ERROR_LIMIT]
    return f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
