"""Host agents: their tokens, and the reports they send about each card.

A token is printed once and only its SHA-256 is stored: tokens are 256 random bits, so a plain
hash is as good as a slow one here and costs nothing per report. A report is stored in one write
transaction — the host's last report time, each card's latest reading (:class:`AgentDevice`, what
the reconciliation reads) and one compact sample per card (:class:`UsageSample`, what statistics
read) — or, when it is refused, not at all. The answer carries the host's bookings
(:func:`bot.booking.host_runs.host_bookings`), which ``gpubook run`` on that host goes by.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.base import ServiceBase
from bot.booking.host_runs import host_bookings, use_token
from bot.core.actor import Actor
from bot.core.agent_report import Report
from bot.core.errors import InputError, NotFound, PermissionDenied
from bot.core.phrases import Code
from bot.core.sentence import Quote, Span, When
from bot.core.usage import DeviceInfo, HostIdentity, IngestResult, TokenInfo
from bot.core.vocabulary import AuditAction
from storage.models import AgentDevice, AgentHost, AgentToken, Gpu, UsageSample

TOKEN_PREFIX = "gpb_"
#: How many valid tokens a process remembers (far above any fleet's hosts).
_REMEMBERED_TOKENS = 100_000
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Reports are written with Core statements on the tables: SQLAlchemy's ORM bulk paths cost
# milliseconds a report in Python (measured with cProfile) for rows that need none of it.
_DEVICES = AgentDevice.__table__
_GPUS = Gpu.__table__
_SAMPLES = UsageSample.__table__
#: A known card's latest reading: the columns set are the keys of each row given.
_UPDATE_DEVICE = update(_DEVICES).where(_DEVICES.c.id == bindparam("b_id"))


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_info(token: AgentToken) -> TokenInfo:
    return TokenInfo(
        token.id,
        token.host,
        token.created_by,
        token.created_at,
        token.revoked_at,
        token.last_used_at,
    )


class AgentHosts(ServiceBase):
    """Tokens (admins only), authentication and ingestion of reports, unbound devices."""

    async def create_agent_token(self, actor: Actor, host: str) -> tuple[TokenInfo, str]:
        """A new token for ``host``: its snapshot and the secret, which is never stored."""
        self.require_admin(actor, "create agent tokens")
        host = host.strip()
        if not _HOST.fullmatch(host):
            raise InputError(Code.AGENT_HOST_INVALID, field="host", host=Quote(host))
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        async with self.db.write() as session:
            token = AgentToken(
                team_id=actor.team_id,
                host=host,
                token_sha256=token_digest(secret),
                created_by=actor.user_id,
                created_at=now,
            )
            session.add(token)
            await session.flush()
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.AGENT_TOKEN_CREATE,
                None,
                {"token": token.id, "host": host},
                team_id=actor.team_id,
            )
            return _token_info(token), secret

    async def agent_tokens(self, actor: Actor) -> list[TokenInfo]:
        self.require_admin(actor, "see agent tokens")
        async with self.db.read() as session:
            query = (
                select(AgentToken)
                .where(AgentToken.team_id == actor.team_id)
                .order_by(AgentToken.host, AgentToken.id)
            )
            return [_token_info(t) for t in await session.scalars(query)]

    async def revoke_agent_token(self, actor: Actor, which: str) -> list[TokenInfo]:
        """Revoke the active token with id ``which``, or every active token of host ``which``."""
        self.require_admin(actor, "revoke agent tokens")
        now = self.clock()
        async with self.db.write() as session:
            query = select(AgentToken).where(
                AgentToken.team_id == actor.team_id, AgentToken.revoked_at.is_(None)
            )
            if which.isdigit():
                query = query.where(AgentToken.id == int(which))
            else:
                query = query.where(AgentToken.host == which)
            tokens = list(await session.scalars(query.with_for_update()))
            if not tokens:
                raise NotFound(Code.AGENT_TOKEN_UNKNOWN, field="token", which=Quote(which))
            journal = self.journal(session, now)
            for token in tokens:
                token.revoked_at = now
                journal.audit(
                    actor.user_id,
                    AuditAction.AGENT_TOKEN_REVOKE,
                    None,
                    {"token": token.id, "host": token.host},
                    team_id=actor.team_id,
                )
            revoked = [_token_info(t) for t in tokens]
        gone = {t.id for t in revoked}  # other processes learn it at the token's next use
        self.remembered_tokens = {
            d: i for d, i in self.remembered_tokens.items() if i.token_id not in gone
        }
        return revoked

    async def authenticate_agent(self, secret: str) -> HostIdentity | None:
        """The host a bearer token belongs to, or None for an unknown or revoked one."""
        async with self.db.read() as session:
            found = await session.execute(
                select(AgentToken.id, AgentToken.team_id, AgentToken.host).where(
                    AgentToken.token_sha256 == token_digest(secret),
                    AgentToken.revoked_at.is_(None),
                )
            )
            row = found.first()
        return HostIdentity(*row) if row is not None else None

    async def reporting_host(self, secret: str) -> HostIdentity | None:
        """:meth:`authenticate_agent` for ``POST /agent/report``, remembering valid tokens.

        A host reports every interval, so its token is looked up once, then remembered by
        digest (unknown ones never are: a flood of forged tokens costs a lookup each and fills
        nothing). Revocation stays immediate, whatever process revoked it: storing a report or a
        booking checks, in its own transaction, that the token is still not revoked
        (:func:`~bot.booking.host_runs.use_token`; refused then, storing nothing), and the
        revoking process forgets the token at once."""
        digest = token_digest(secret)
        identity = self.remembered_tokens.get(digest)
        if identity is None:
            identity = await self.authenticate_agent(secret)
            if identity is not None:
                if len(self.remembered_tokens) >= _REMEMBERED_TOKENS:
                    self.remembered_tokens.clear()  # far more than hosts: start again
                self.remembered_tokens[digest] = identity
        return identity

    async def ingest_report(self, identity: HostIdentity, report: Report) -> IngestResult:
        """Store ``report`` from the host ``identity`` names; a report about another host is
        refused (a token speaks for its own host only).

        Every host sends one every interval (500 hosts × 8 cards every 15 s is 33 reports a
        second), so this is written for few statements, whatever the cards: the host and the
        token are touched by one UPDATE each, the cards already known are read with their
        binding in one SELECT and updated in one executemany, the samples inserted in one;
        only a card reporting for the first time costs its own INSERT.
        """
        if report.host != identity.host:
            raise PermissionDenied(
                Code.REPORT_WRONG_HOST,
                token_host=Quote(identity.host),
                host=Quote(report.host),
            )
        now = self.clock()
        team = identity.team_id
        silent_after = self.config.usage.silent_after
        gap_cap = int(silent_after.total_seconds())
        uuids = [d.uuid for d in report.devices]
        async with self.db.write() as session:
            await use_token(session, identity, now, self.remembered_tokens)
            await self._touch_host(session, team, report.host, now)
            conn = await session.connection()
            known = {
                row.uuid: row
                for row in await conn.execute(
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
                        _GPUS, and_(_GPUS.c.team_id == team, _GPUS.c.device_uuid == _DEVICES.c.uuid)
                    )
                    .where(_DEVICES.c.team_id == team, _DEVICES.c.uuid.in_(uuids))
                )
            }
            _refuse_cards_elsewhere(known.values(), report.host, now, silent_after)
            changes, samples, fresh = [], [], []
            for reading in report.devices:
                users = reading.per_user()
                latest = {
                    "host": report.host,
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
                    {
                        "b_id": row.id,
                        "prev_users": row.users,
                        "seen": {**row.seen, **seen},
                        **latest,
                    }
                )
                samples.append(_sample(row.id, now, seconds, reading.used_mib, users))
            if changes:
                # In id order, as every writer locks rows (the roll-up locks cards in batches).
                changes.sort(key=itemgetter("b_id"))
                await conn.execute(_UPDATE_DEVICE, changes)
            if fresh:
                await session.flush()
                samples += [_sample(d.id, now, 0, used, users) for d, used, users in fresh]
            if samples:  # a host whose cards all fell off reports none; an empty INSERT fails
                await conn.execute(insert(_SAMPLES), samples)
            bound = {uuid for uuid, row in known.items() if row.gpu_id is not None}
            if fresh:
                bound |= set(
                    await session.scalars(
                        select(Gpu.device_uuid).where(
                            Gpu.team_id == team,
                            Gpu.device_uuid.in_([d.uuid for d, _, _ in fresh]),
                        )
                    )
                )
            totals = {d.uuid: d.total_mib for d in report.devices}
            bookings = await host_bookings(session, team, totals, now)
        return IngestResult(len(uuids), tuple(u for u in uuids if u not in bound), bookings)

    @staticmethod
    async def _touch_host(session: AsyncSession, team: str, host: str, now: datetime) -> None:
        """The host reported now (and is no longer silent): one UPDATE, or its first INSERT."""
        hosts = AgentHost.__table__
        touched = await (await session.connection()).execute(
            update(hosts)
            .where(hosts.c.team_id == team, hosts.c.host == host)
            .values(last_report_at=now, silence_noticed_at=None)
        )
        if touched.rowcount == 0:
            session.add(AgentHost(team_id=team, host=host, last_report_at=now))

    async def unbound_devices(self, actor: Actor) -> list[DeviceInfo]:
        """Cards that report but that no GPU is bound to (admins bind or add them)."""
        self.require_admin(actor, "see unbound devices")
        async with self.db.read() as session:
            bound = select(Gpu.device_uuid).where(
                Gpu.team_id == actor.team_id, Gpu.device_uuid.is_not(None)
            )
            query = (
                select(AgentDevice)
                .where(AgentDevice.team_id == actor.team_id, AgentDevice.uuid.not_in(bound))
                .order_by(AgentDevice.host, AgentDevice.index)
            )
            return [
                DeviceInfo(d.uuid, d.host, d.index, d.name, d.total_mib, d.used_mib, d.last_seen_at)
                for d in await session.scalars(query)
            ]


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
    """One :class:`UsageSample` row, for the one INSERT of a report's samples."""
    return {
        "device_id": device_id,
        "at": at,
        "seconds": seconds,
        "used_mib": used_mib,
        "users": users,
    }
