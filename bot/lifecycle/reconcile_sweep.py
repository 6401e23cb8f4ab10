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
entities, and works a slice of :data:`SLICE` cards at a time — read, turned into the rules'
input and reconciled — with the loop free between slices; decodes a card's per-login times
only when it is asked about one of them; and finds a workspace's bookings, links and episodes
by workspace, once, rather than by a list of thousands of GPU ids. Done in one piece it held the
loop for a third of a second every sweep, and with a workspace's 4,000 cards reconciled in one
go, still for 120–250 ms (bench/README.md, agent_bench): the reports' tail latency.

An idle episode nobody answered with Keep releases its booking ``idle_release`` after it opened
(when that setting is on), announced like any early release. A host that stopped reporting is
told to admins once, until it reports again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
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
#: Bound cards read and reconciled at a time; the event loop runs other work between slices
#: (each 2-3 ms of CPU on the machine of bench/README.md: a report's every step may wait for one).
SLICE = 50
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
    """A card's ``seen`` column (login -> ISO time) as JSON text, decoded when first looked up
    and each time parsed only when looked up.

    A card keeps a time for every login it ever saw (dozens on a busy card) and reconciliation
    only asks about the owners of its active bookings — on most cards nobody's — so decoding
    them all was most of a sweep."""

    def __init__(self, raw: str) -> None:
        self._raw = raw

    @cached_property
    def _decoded(self) -> dict[str, str]:
        return json.loads(self._raw)  # type: ignore[no-any-return]

    def __getitem__(self, login: str) -> datetime:
        return datetime.fromisoformat(self._decoded[login])

    def __contains__(self, login: object) -> bool:
        return login in self._decoded

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded)

    def __len__(self) -> int:
        return len(self._decoded)


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
    """Every workspace's plan (over the bound GPUs ``only`` when given), the cards worked a
    slice at a time (see the module docstring)."""
    plans: dict[str, _Planner] = {}
    query = bound_cards.bound_card_columns()
    if only is not None:
        query = query.where(Gpu.id.in_(only))
    result = await session.stream(query)
    async for part in result.partitions(SLICE):
        by_team: dict[str, list[Row[Any]]] = {}
        for row in part:
            by_team.setdefault(row.team_id, []).append(row)
        for team, rows in by_team.items():
            if team not in plans:
                plans[team] = await _Planner.start(session, team, limits, now)
            plans[team].reconcile(rows)
    return [await plans[team].finish(session, config.usage.idle_release) for team in sorted(plans)]


@dataclass
class _Planner:
    """One workspace's plan, its cards given a slice at a time: the active bookings and the
    links are read once, before the first slice; the episodes once, after the last."""

    team: str
    bookings: dict[int, Booking]
    links: Mapping[str, str]
    limits: Limits
    now: datetime
    #: The slices' cards, their findings and those reporting, as they are given.
    gpus: dict[int, Row[Any]] = field(default_factory=dict)
    findings: dict[tuple[FindingKind, int, str], Finding] = field(default_factory=dict)
    reporting: set[int] = field(default_factory=set)

    @cached_property
    def holdings(self) -> list[Holding]:
        return [
            Holding(b.id, b.gpu_id, b.user_id, b.memory_mib, b.start_at)
            for b in self.bookings.values()
        ]

    @classmethod
    async def start(
        cls, session: AsyncSession, team: str, limits: Limits, now: datetime
    ) -> _Planner:
        active = select(Booking).where(
            Booking.team_id == team,
            Booking.status == BookingStatus.ACTIVE,
            Booking.start_at <= now,
            Booking.end_at > now,
        )
        bookings = {b.id: b for b in (await session.scalars(active)).unique()}
        return cls(team, bookings, await links_of(session, team), limits, now)

    def reconcile(self, rows: Sequence[Row[Any]]) -> None:
        """Work out the findings of a slice of the workspace's bound cards."""
        cards = [_card(row) for row in rows]
        self.gpus.update((row.id, row) for row in rows)
        for finding in reconcile(cards, self.holdings, self.links, self.now, self.limits):
            self.findings[finding.key] = finding
        self.reporting.update(c.gpu_id for c in cards if live(c, self.now, self.limits))

    async def finish(self, session: AsyncSession, release_after: timedelta | None) -> _Plan:
        """The plan: the workspace's episodes against the findings of every slice."""
        gpus, findings, now = self.gpus, self.findings, self.now
        episodes = {
            (FindingKind(e.kind), e.gpu_id, e.subject): e
            for e in await session.scalars(
                select(UsageEpisode).where(UsageEpisode.team_id == self.team)
            )
            if e.gpu_id in gpus
        }
        bookings = {i: b for i, b in self.bookings.items() if b.gpu_id in gpus}
        plan = _Plan(self.team, gpus, bookings, [], [], [])
        for key, episode in episodes.items():
            if episode.gpu_id in self.reporting and key not in findings:
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
