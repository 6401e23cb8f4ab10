"""The reconciliation in the lifecycle sweep: findings become episodes, each told once.

The pure rules are :func:`bot.core.reconcile.reconcile`; this module feeds them each bound card's
latest reports, the active bookings and the logins' links, and keeps one
:class:`storage.models.UsageEpisode` per finding. A new finding opens an episode and queues its
DM (and, when someone over-uses into memory others hold, a channel message) in the same
transaction; while the episode exists nobody is told again; a finding that clears on a card that
reports deletes it, so the next one is a new episode. The transaction first locks the bound GPUs
(the lock every booking change takes), so two replicas sweeping together take turns and the
second finds the episodes the first opened: exactly once, like every other notice.

The sweep reads every bound card each time — 4,000 for a fleet of 500 hosts of 8 — on the event
loop that answers the hosts' reports and people's commands, so it reads plain columns, not ORM
entities, in slices of :data:`SLICE` with the loop free between them; parses a card's per-login
times only for the logins it is asked about; and finds a workspace's bookings and episodes by
workspace rather than by a list of thousands of GPU ids. Done in one piece it held the loop for
a third of a second every sweep, and that was the reports' tail latency.

An idle episode nobody answered with Keep releases its booking ``idle_release`` after it opened
(when that setting is on), announced like any early release. A host that stopped reporting is
told to admins once, until it reports again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import bound_cards, queries, transitions
from bot.booking.config import ServiceConfig
from bot.booking.journal import SYSTEM_ACTOR, Journal
from bot.booking.usage import links_of
from bot.core import capacity
from bot.core.reconcile import CardState, Finding, Holding, Limits, live, reconcile
from bot.core.vocabulary import BookingStatus, EndReason, FindingKind, NoticeKind
from storage.db import Database
from storage.models import AgentHost, Booking, Gpu, UsageEpisode

#: "Book N GB until HH:MM" offers this long a window, ending on a quarter hour.
UNBOOKED_OFFER = timedelta(hours=2)
_QUARTER = timedelta(minutes=15)
#: Bound cards read per fetch; the event loop runs other work between slices.
SLICE = 500
_NOTICE = {
    FindingKind.OVERUSE: NoticeKind.OVERUSE,
    FindingKind.UNBOOKED: NoticeKind.UNBOOKED,
    FindingKind.IDLE: NoticeKind.IDLE,
}


@dataclass
class ReconcileCounts:
    opened: int = 0
    cleared: int = 0
    released: int = 0
    silent: int = 0
    #: The workspaces where an idle booking was released: memory freed there, so the queue of
    #: flexible bookings is due a pass (see :class:`bot.lifecycle.usage_sweep.UsageSweep`).
    freed_teams: set[str] = field(default_factory=set, repr=False)


class _Seen(Mapping[str, datetime]):
    """A card's ``seen`` column (login -> ISO time), each time parsed only when looked up.

    A card keeps a time for every login it ever saw (dozens on a busy card) and reconciliation
    only asks about the owners of its active bookings, so parsing them all was most of a sweep."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw

    def __getitem__(self, login: str) -> datetime:
        return datetime.fromisoformat(self._raw[login])

    def __contains__(self, login: object) -> bool:
        return login in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _card(row: Row[Any]) -> CardState:
    """A row of :func:`bot.booking.bound_cards.bound_card_columns` as the pure rules take it."""
    return CardState(
        row.id,
        row.capacity_mib,
        row.last_seen_at,
        row.first_seen_at,
        row.users,
        row.prev_users,
        _Seen(row.seen),
    )


def _whole_gb(mib: int) -> int:
    return math.ceil(mib / 1024) * 1024


def _quarter_after(at: datetime) -> datetime:
    epoch = at.replace(minute=0, second=0, microsecond=0)
    return epoch + _QUARTER * math.ceil((at - epoch) / _QUARTER)


async def reconcile_usage(db: Database, config: ServiceConfig, now: datetime) -> ReconcileCounts:
    """One reconciliation. It is first worked out in a read transaction, which takes no lock:
    most sweeps find every finding already told and nothing cleared, and then take no write
    lock at all (on SQLite the one writer's lock, which every host's report would wait behind
    while thousands of cards are read). Only when there is something to do is it worked out
    again, under the GPUs' locks, and done: what the read saw is never acted on. A card's
    findings depend on nothing but its own report, bookings and episodes (and the workspace's
    links), so only the cards the read found something on are locked and worked out again:
    the write lock is held for those few, not for a pass over the whole fleet."""
    counts = ReconcileCounts()
    usage = config.usage
    limits = Limits(usage.tolerance_mib, usage.idle_after, usage.silent_after)
    async with db.read() as session:
        plans = await _plans(session, config, limits, now)
    due = sorted({gpu_id for plan in plans for gpu_id in plan.acted_on})
    if due:
        async with db.write() as session:
            await queries.lock_gpu_ids(session, due)
            sweep = _Sweep(session, Journal(session, now), config, now)
            for plan in await _plans(session, config, limits, now, due):
                await sweep.apply(plan, counts)
    counts.silent = await _silent_hosts(db, config, now)
    return counts


@dataclass
class _Plan:
    """What one workspace's reconciliation comes to: episodes to open, clear and release."""

    team: str
    #: The workspace's bound cards by GPU id (rows of ``bound_cards.bound_card_columns``).
    gpus: dict[int, Row[Any]]
    bookings: dict[int, Booking]
    to_open: list[Finding]
    to_clear: list[UsageEpisode]
    to_release: list[UsageEpisode]

    @property
    def acted_on(self) -> set[int]:
        """The GPUs with something to do."""
        return {f.gpu_id for f in self.to_open} | {
            e.gpu_id for e in (*self.to_clear, *self.to_release)
        }


async def _plans(
    session: AsyncSession,
    config: ServiceConfig,
    limits: Limits,
    now: datetime,
    only: Sequence[int] | None = None,
) -> list[_Plan]:
    """Every workspace's plan (over the bound GPUs ``only`` when given); the cards are read a
    slice at a time (see the module docstring)."""
    cards: dict[str, list[tuple[Row[Any], CardState]]] = {}
    query = bound_cards.bound_card_columns()
    if only is not None:
        query = query.where(Gpu.id.in_(only))
    result = await session.stream(query)
    async for part in result.partitions(SLICE):
        for row in part:
            cards.setdefault(row.team_id, []).append((row, _card(row)))
    return [await _plan(session, team, cards[team], config, limits, now) for team in sorted(cards)]


async def _plan(
    session: AsyncSession,
    team: str,
    rows: Sequence[tuple[Row[Any], CardState]],
    config: ServiceConfig,
    limits: Limits,
    now: datetime,
) -> _Plan:
    gpus = {row.id: row for row, _ in rows}
    cards = [card for _, card in rows]
    active = select(Booking).where(
        Booking.team_id == team,
        Booking.status == BookingStatus.ACTIVE,
        Booking.start_at <= now,
        Booking.end_at > now,
    )
    bookings = {b.id: b for b in (await session.scalars(active)).unique() if b.gpu_id in gpus}
    holdings = [
        Holding(b.id, b.gpu_id, b.user_id, b.memory_mib, b.start_at) for b in bookings.values()
    ]
    findings = {
        f.key: f for f in reconcile(cards, holdings, await links_of(session, team), now, limits)
    }
    reporting = {card.gpu_id for card in cards if live(card, now, limits)}
    episodes = {
        (FindingKind(e.kind), e.gpu_id, e.subject): e
        for e in await session.scalars(select(UsageEpisode).where(UsageEpisode.team_id == team))
        if e.gpu_id in gpus
    }
    release_after = config.usage.idle_release
    plan = _Plan(team, gpus, bookings, [], [], [])
    for key, episode in episodes.items():
        if episode.gpu_id in reporting and key not in findings:
            plan.to_clear.append(episode)
    for key, finding in findings.items():
        episode = episodes.get(key)
        if episode is None:
            plan.to_open.append(finding)
        elif (
            finding.kind == FindingKind.IDLE
            and release_after is not None
            and episode.settled_at is None
            and episode.started_at + release_after <= now
        ):
            plan.to_release.append(episode)
    return plan


class _Sweep:
    """One write transaction's reconciliation, workspace by workspace."""

    def __init__(
        self, session: AsyncSession, journal: Journal, config: ServiceConfig, now: datetime
    ) -> None:
        self.session, self.journal, self.config, self.now = session, journal, config, now

    async def apply(self, plan: _Plan, counts: ReconcileCounts) -> None:
        for episode in plan.to_clear:
            await self.session.delete(episode)
            counts.cleared += 1
        for finding in plan.to_open:
            await self._open(plan.team, plan.gpus[finding.gpu_id], finding, plan.bookings)
            counts.opened += 1
        for episode in plan.to_release:
            booking = plan.bookings[int(episode.subject)]
            await transitions.end_early(self.journal, SYSTEM_ACTOR, booking, EndReason.IDLE)
            await self.session.delete(episode)
            counts.released += 1
            counts.freed_teams.add(plan.team)

    async def _open(
        self, team: str, gpu: Row[Any], finding: Finding, bookings: dict[int, Booking]
    ) -> None:
        now = self.now
        details: dict[str, Any] = {
            "gpu": gpu.name,
            "user": finding.user_id,
            "used_mib": finding.used_mib,
            "booked_mib": finding.booked_mib,
        }
        episode = UsageEpisode(
            team_id=team,
            kind=finding.kind,
            gpu_id=gpu.id,
            subject=finding.subject,
            started_at=now,
            details=details,
        )
        self.session.add(episode)
        await self.session.flush()
        details = {**details, "episode": episode.id}
        booking = bookings.get(finding.booking_id) if finding.booking_id else None
        if finding.kind == FindingKind.OVERUSE and booking is not None:
            details.update(await self._raise_offer(gpu, booking, finding))
            if finding.used_mib > gpu.capacity_mib - finding.others_mib:
                channel = await queries.notification_channel(self.session, team, gpu.channel_id)
                self.journal.tell(NoticeKind.OVERUSE_CHANNEL, team, channel, details, booking)
        elif finding.kind == FindingKind.UNBOOKED:
            details["mib"] = _whole_gb(finding.used_mib)
            details["start"] = now.isoformat()
            details["end"] = _quarter_after(now + UNBOOKED_OFFER).isoformat()
        elif finding.kind == FindingKind.IDLE:
            details["idle_seconds"] = int(self.config.usage.idle_after.total_seconds())
            if self.config.usage.idle_release is not None:
                details["release_at"] = (now + self.config.usage.idle_release).isoformat()
        self.journal.tell(_NOTICE[finding.kind], team, finding.user_id, details, booking)

    async def _raise_offer(
        self, gpu: Row[Any], booking: Booking, finding: Finding
    ) -> dict[str, Any]:
        """What raising ``booking`` to cover the use would take, and whether it fits now."""
        raise_to = _whole_gb(booking.memory_mib + finding.used_mib - finding.booked_mib)
        spans = await queries.spans(
            self.session, [gpu.id], self.now, booking.end_at, exclude=booking.id
        )
        fits = capacity.fits(spans[gpu.id], gpu.capacity_mib, raise_to, self.now, booking.end_at)
        return {"booking": booking.id, "raise_to": raise_to, "fits": fits}


async def _silent_hosts(db: Database, config: ServiceConfig, now: datetime) -> int:
    """Tell admins (or, without any configured, the workspace channel) once per silence."""
    cutoff = now - config.usage.silent_after
    silent = (AgentHost.last_report_at < cutoff, AgentHost.silence_noticed_at.is_(None))
    async with db.read() as session:  # most sweeps find none: no write lock for them
        if await session.scalar(select(AgentHost.host).where(*silent).limit(1)) is None:
            return 0
    async with db.write() as session:
        hosts = list(await session.scalars(select(AgentHost).where(*silent).with_for_update()))
        journal = Journal(session, now)
        for host in hosts:
            host.silence_noticed_at = now
            details = {"host": host.host, "since": host.last_report_at.isoformat()}
            destinations = sorted(config.admins) or [
                await queries.notification_channel(session, host.team_id, None)
            ]
            for destination in destinations:
                if destination:
                    journal.tell(NoticeKind.SILENT_HOST, host.team_id, destination, details)
        return len(hosts)
