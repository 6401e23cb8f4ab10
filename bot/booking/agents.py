"""Host agents: their tokens, and the reports they send about each card.

A token is printed once and only its SHA-256 is stored: tokens are 256 random bits, so a plain
hash is as good as a slow one here and costs nothing per report. A report is stored in one write
transaction — the host's last report time, each card's latest reading (:class:`AgentDevice`, what
the reconciliation reads) and one compact sample per card (:class:`UsageSample`, what statistics
read) — or, when it is refused, not at all.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.base import ServiceBase
from bot.core.actor import Actor
from bot.core.agent_report import Report
from bot.core.errors import InputError, NotFound, PermissionDenied
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.usage import DeviceInfo, HostIdentity, IngestResult, TokenInfo
from bot.core.vocabulary import AuditAction
from storage.models import AgentDevice, AgentHost, AgentToken, Gpu, UsageSample

TOKEN_PREFIX = "gpb_"
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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
            return [_token_info(t) for t in tokens]

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

    async def ingest_report(self, identity: HostIdentity, report: Report) -> IngestResult:
        """Store ``report`` from the host ``identity`` names; a report about another host is
        refused (a token speaks for its own host only)."""
        if report.host != identity.host:
            raise PermissionDenied(
                Code.REPORT_WRONG_HOST,
                token_host=Quote(identity.host),
                host=Quote(report.host),
            )
        now = self.clock()
        team = identity.team_id
        gap_cap = int(self.config.usage.silent_after.total_seconds())
        uuids = [d.uuid for d in report.devices]
        async with self.db.write() as session:
            await self._touch_host(session, team, report.host, now)
            await session.execute(
                update(AgentToken)
                .where(AgentToken.id == identity.token_id)
                .values(last_used_at=now)
            )
            known = {
                d.uuid: d
                for d in await session.scalars(
                    select(AgentDevice).where(
                        AgentDevice.team_id == team, AgentDevice.uuid.in_(uuids)
                    )
                )
            }
            samples = []
            for reading in report.devices:
                users = reading.per_user()
                device = known.get(reading.uuid)
                if device is None:
                    device = AgentDevice.first_seen(team, reading.uuid, now)
                    session.add(device)
                    seconds = 0
                else:
                    seconds = min(int((now - device.last_seen_at).total_seconds()), gap_cap)
                    device.prev_users = dict(device.users)
                device.host, device.index, device.name = report.host, reading.index, reading.name
                device.total_mib, device.used_mib = reading.total_mib, reading.used_mib
                device.users = users
                device.seen = {**device.seen, **dict.fromkeys(users, now.isoformat())}
                device.last_seen_at = now
                samples.append((device, seconds, reading.used_mib, users))
            await session.flush()
            session.add_all(
                UsageSample(device_id=d.id, at=now, seconds=s, used_mib=u, users=users)
                for d, s, u, users in samples
            )
            bound = set(
                await session.scalars(
                    select(Gpu.device_uuid).where(Gpu.team_id == team, Gpu.device_uuid.in_(uuids))
                )
            )
        return IngestResult(len(uuids), tuple(u for u in uuids if u not in bound))

    @staticmethod
    async def _touch_host(session: AsyncSession, team: str, host: str, now: datetime) -> None:
        row = await session.get(AgentHost, (team, host), with_for_update=True)
        if row is None:
            session.add(AgentHost(team_id=team, host=host, last_report_at=now))
        else:
            row.last_report_at, row.silence_noticed_at = now, None

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
