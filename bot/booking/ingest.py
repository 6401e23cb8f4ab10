"""Storing host agents' reports: several in one transaction, each checked on its own.

A fleet reports all the time (500 hosts × 8 cards every 15 s is 33 reports a second), and every
report writes the same few rows: its token's and host's times, each card's latest reading
(:class:`AgentDevice`, what the reconciliation reads) and one compact sample per card
(:class:`UsageSample`, what statistics read). :func:`store_reports` writes any number of reports of
one workspace with the statements one report needs — the tokens, the hosts, the known cards and
the samples each touched by one statement for all of them — so reports that arrive together share
a transaction, its commit and (on SQLite) one turn of the writer (:mod:`bot.booking.group_commit`).

Every report is checked before anything is written, and one that is refused (its token revoked
since this process remembered it, or a card another host still reports) gets its refusal and has
nothing stored, while the others are stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.booking.host_runs import forget_token, host_bookings
from bot.core.agent_report import Report
from bot.core.errors import GpubookError, PermissionDenied
from bot.core.host_bookings import HostBookings
from bot.core.phrases import Code
from bot.core.sentence import Quote, Span, When
from bot.core.usage import HostIdentity, IngestResult
from storage.models import AgentDevice, AgentHost, AgentToken, Gpu, UsageSample

# Reports are written with Core statements on the tables, each built once with bound parameters
# (lists as expanding ones): SQLAlchemy's ORM bulk paths cost milliseconds a report in Python
# (measured with cProfile), and building a statement and its cache key on every report cost more
# than running it (py-spy, bench/README.md agent_bench).
_DEVICES = AgentDevice.__table__
_GPUS = Gpu.__table__
_HOSTS = AgentHost.__table__
_SAMPLES = UsageSample.__table__
_TOKENS = AgentToken.__table__
#: A token's last use is written when it is older than this: a host reports every interval
#: (15 s), and `gpubook agent token list` shows it to the minute.
TOKEN_USE_EVERY = timedelta(minutes=1)
#: Of the tokens ``ids``, those not revoked and their last use, their rows locked in id order
#: until the commit.
_LIVE_TOKENS = (
    select(_TOKENS.c.id, _TOKENS.c.last_used_at)
    .where(_TOKENS.c.id.in_(bindparam("ids", expanding=True)), _TOKENS.c.revoked_at.is_(None))
    .order_by(_TOKENS.c.id)
    .with_for_update()
)
_USE_TOKENS = (
    update(_TOKENS)
    .where(_TOKENS.c.id.in_(bindparam("ids", expanding=True)))
    .values(last_used_at=bindparam("now", type_=_TOKENS.c.last_used_at.type))
)
#: The workspace's cards among ``uuids``, with the GPU bound to each (or None).
_KNOWN_CARDS = (
    select(
        _DEVICES.c.id,
        _DEVICES.c.uuid,
        _DEVICES.c.host,
        _DEVICES.c.users,
        _DEVICES.c.seen,
        _DEVICES.c.last_seen_at,
        _GPUS.c.id.label("gpu_id"),
    )
    .select_from(_DEVICES)
    .outerjoin(
        _GPUS,
        and_(_GPUS.c.team_id == bindparam("team"), _GPUS.c.device_uuid == _DEVICES.c.uuid),
    )
    .where(
        _DEVICES.c.team_id == bindparam("team"),
        _DEVICES.c.uuid.in_(bindparam("uuids", expanding=True)),
    )
)
_HOSTS_OF_TEAM = and_(
    _HOSTS.c.team_id == bindparam("team"), _HOSTS.c.host.in_(bindparam("hosts", expanding=True))
)
#: The hosts that reported now, no longer silent.
_TOUCH_HOSTS = (
    update(_HOSTS)
    .where(_HOSTS_OF_TEAM)
    .values(
        last_report_at=bindparam("now", type_=_HOSTS.c.last_report_at.type),
        silence_noticed_at=None,
    )
)
_KNOWN_HOSTS = select(_HOSTS.c.host).where(_HOSTS_OF_TEAM)
#: A known card's latest reading: the columns set are the keys of each row given.
_UPDATE_DEVICE = update(_DEVICES).where(_DEVICES.c.id == bindparam("b_id"))
_INSERT_SAMPLES = insert(_SAMPLES)


@dataclass(frozen=True)
class Pending:
    """A report waiting to be stored, and the host its token speaks for (checked to be the
    report's own before it waits)."""

    identity: HostIdentity
    report: Report

    @property
    def uuids(self) -> list[str]:
        return [d.uuid for d in self.report.devices]


def can_join(batch: Sequence[Pending], candidate: Pending) -> bool:
    """Whether ``candidate`` may be stored in one transaction with ``batch``: of the same
    workspace, and sharing neither a host nor a card with it (two readings of one card in one
    transaction would be one sample too many and a wrong gap; the later waits for the next)."""
    if not batch:
        return True
    if candidate.identity.team_id != batch[0].identity.team_id:
        return False
    hosts = {p.report.host for p in batch}
    cards = {u for p in batch for u in p.uuids}
    return candidate.report.host not in hosts and cards.isdisjoint(candidate.uuids)


def store_reports(
    session: Session,
    batch: Sequence[Pending],
    now: datetime,
    silent_after: timedelta,
    remembered: MutableMapping[str, HostIdentity],
) -> list[IngestResult | GpubookError]:
    """Store the reports of ``batch`` (one workspace, no host or card twice: :func:`can_join`)
    in the caller's write transaction: each one's result, or its refusal (nothing of it stored).

    Sync code over a sync ``session``: the service runs it with ``AsyncSession.run_sync``, one
    greenlet for the whole transaction, in a transaction whose statements after the first run on
    the event loop's thread on SQLite (``Database.write(on_loop=True)``).

    The tokens are checked first (and their rows held until the commit, which keeps a
    revocation by any process immediate: a revoked token learns nothing, not even whose card it
    claimed), then the cards; only then is anything written."""
    team = batch[0].identity.team_id
    outcome: dict[int, IngestResult | GpubookError] = {}
    live = _live_tokens(session, sorted({p.identity.token_id for p in batch}))
    for n, pending in enumerate(batch):
        if pending.identity.token_id not in live:
            outcome[n] = forget_token(pending.identity, remembered)
    uuids = [u for n, p in enumerate(batch) if n not in outcome for u in p.uuids]
    known = _known_cards(session, team, uuids) if uuids else {}
    for n, pending in enumerate(batch):
        if n in outcome:
            continue
        try:
            _refuse_cards_elsewhere(
                (known[u] for u in pending.uuids if u in known),
                pending.report.host,
                now,
                silent_after,
            )
        except PermissionDenied as refusal:
            outcome[n] = refusal
    stored = [(n, p) for n, p in enumerate(batch) if n not in outcome]
    if not stored:
        return [outcome[n] for n in range(len(batch))]
    _use_tokens(session, live, {p.identity.token_id for _, p in stored}, now)
    _touch_hosts(session, team, [p.report.host for _, p in stored], now)
    fresh = _write_cards(session, team, [p for _, p in stored], known, now, silent_after)
    bound = {uuid for uuid, row in known.items() if row.gpu_id is not None}
    if fresh:
        bound |= set(
            session.scalars(
                select(Gpu.device_uuid).where(Gpu.team_id == team, Gpu.device_uuid.in_(fresh))
            )
        )
    totals = {d.uuid: d.total_mib for _, p in stored for d in p.report.devices}
    bookings = host_bookings(session, team, totals, now)
    for n, pending in stored:
        uuids = pending.uuids
        outcome[n] = IngestResult(
            len(uuids), tuple(u for u in uuids if u not in bound), _of_cards(bookings, uuids)
        )
    return [outcome[n] for n in range(len(batch))]


def _known_cards(session: Session, team: str, uuids: list[str]) -> dict[str, Any]:
    """The cards among ``uuids`` already known, with the GPU bound to each (or None)."""
    conn = session.connection()
    rows = conn.execute(_KNOWN_CARDS, {"team": team, "uuids": uuids})
    return {row.uuid: row for row in rows}


def _live_tokens(session: Session, token_ids: list[int]) -> dict[int, datetime | None]:
    """Those of the tokens not revoked, with their last use, their rows locked (in id order)
    until the commit."""
    found = session.connection().execute(_LIVE_TOKENS, {"ids": token_ids})
    return {token_id: last_used for token_id, last_used in found}


def _use_tokens(
    session: Session, used: Mapping[int, datetime | None], token_ids: set[int], now: datetime
) -> None:
    """The tokens of the reports stored were used now: written for those whose last use
    (``used``) is :data:`TOKEN_USE_EVERY` old, so most reports write no token at all."""
    since = now - TOKEN_USE_EVERY
    stale = sorted(t for t in token_ids if (last := used[t]) is None or last <= since)
    if stale:
        session.connection().execute(_USE_TOKENS, {"ids": stale, "now": now})


def _touch_hosts(session: Session, team: str, hosts: list[str], now: datetime) -> None:
    """The hosts reported now (and are no longer silent): one UPDATE, and an INSERT for each
    reporting for the first time."""
    conn = session.connection()
    touched = conn.execute(_TOUCH_HOSTS, {"team": team, "hosts": hosts, "now": now})
    if touched.rowcount == len(hosts):
        return
    existing = set(conn.scalars(_KNOWN_HOSTS, {"team": team, "hosts": hosts}))
    for host in hosts:
        if host not in existing:
            session.add(AgentHost(team_id=team, host=host, last_report_at=now))


def _write_cards(
    session: Session,
    team: str,
    reports: Iterable[Pending],
    known: Mapping[str, Any],
    now: datetime,
    silent_after: timedelta,
) -> list[str]:
    """Each card's latest reading and its sample: the known cards in one executemany UPDATE,
    the samples in one INSERT, a card reporting for the first time added on its own. Returns
    the new cards' UUIDs."""
    gap_cap = int(silent_after.total_seconds())
    changes, samples, fresh = [], [], []
    for pending in reports:
        host = pending.report.host
        for reading in pending.report.devices:
            users = reading.per_user()
            latest = {
                "host": host,
                "index": reading.index,
                "name": reading.name,
                "total_mib": reading.total_mib,
                "used_mib": reading.used_mib,
                "users": users,
                "last_seen_at": now,
            }
            seen = dict.fromkeys(users, now.isoformat())
            row = known.get(reading.uuid)
            if row is None:
                device = AgentDevice.first_seen(team, reading.uuid, now, seen=seen, **latest)
                session.add(device)
                fresh.append((device, reading.used_mib, users))
                continue
            seconds = min(int((now - row.last_seen_at).total_seconds()), gap_cap)
            changes.append(
                {"b_id": row.id, "prev_users": row.users, "seen": {**row.seen, **seen}, **latest}
            )
            samples.append(_sample(row.id, now, seconds, reading.used_mib, users))
    conn = session.connection()
    if changes:
        # In id order, as every writer locks rows (the roll-up locks cards in batches).
        changes.sort(key=itemgetter("b_id"))
        conn.execute(_UPDATE_DEVICE, changes)
    if fresh:
        session.flush()
        samples += [_sample(d.id, now, 0, used, users) for d, used, users in fresh]
    if samples:  # a host whose cards all fell off reports none; an empty INSERT fails
        conn.execute(_INSERT_SAMPLES, samples)
    return [d.uuid for d, _, _ in fresh]


def _of_cards(bookings: HostBookings, uuids: Iterable[str]) -> HostBookings:
    """The part of the batch's ``bookings`` on the cards ``uuids`` (one host's)."""
    mine = set(uuids)
    return HostBookings(
        tuple(c for c in bookings.cards if c.uuid in mine),
        tuple(b for b in bookings.bookings if b.uuid in mine),
    )


def _refuse_cards_elsewhere(
    known: Iterable[Any], host: str, now: datetime, silent_after: timedelta
) -> None:
    """Refuse a report listing a card that another host reported within ``silent_after``: a token
    speaks for its own host only, and claiming a card would show its bookings (and their owners'
    logins) to that host and let it book there. A card its old host has not reported for the
    silent-host window has moved, and the report carries it to the new host."""
    for row in known:
        if row.host != host and now - row.last_seen_at <= silent_after:
            raise PermissionDenied(
                Code.REPORT_DEVICE_ELSEWHERE,
                uuid=Quote(row.uuid),
                host=Quote(row.host),
                seen=When(row.last_seen_at),
                window=Span(silent_after),
            )


def _sample(
    device_id: int, at: datetime, seconds: int, used_mib: int, users: dict[str, int | None]
) -> dict[str, Any]:
    """One :class:`UsageSample` row, for the one INSERT of the samples."""
    return {
        "device_id": device_id,
        "at": at,
        "seconds": seconds,
        "used_mib": used_mib,
        "users": users,
    }
