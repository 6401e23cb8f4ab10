"""Host agents: their tokens, and the reports they send about each card.

A token is printed once and only its SHA-256 is stored: tokens are 256 random bits, so a plain
hash is as good as a slow one here and costs nothing per report. Reports are stored by
:mod:`bot.booking.ingest` — with the others that arrived meanwhile, in one transaction — or, when
one is refused, not at all. The answer carries the host's bookings
(:func:`bot.booking.host_runs.host_bookings`), which ``gpubook run`` on that host goes by.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

from sqlalchemy import select

from bot.booking.base import ServiceBase
from bot.booking.group_commit import GroupCommit
from bot.booking.ingest import Pending, can_join, store_reports
from bot.core.actor import Actor
from bot.core.agent_report import Report
from bot.core.errors import GpubookError, InputError, NotFound, PermissionDenied
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.usage import DeviceInfo, HostIdentity, IngestResult, TokenInfo
from bot.core.vocabulary import AuditAction
from storage.db import DatabaseUnavailable
from storage.models import AgentDevice, AgentToken, Gpu

TOKEN_PREFIX = "gpb_"
#: How many valid tokens a process remembers (far above any fleet's hosts).
_REMEMBERED_TOKENS = 100_000
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: At most this many reports in one transaction: 32 hosts of 8 cards is 256 rows a statement,
#: and a batch holds SQLite's writer (which every other write waits for) for tens of ms at most.
REPORTS_PER_TRANSACTION = 32
#: Report transactions written at once, by backend. SQLite has one writer. On PostgreSQL reports
#: of different hosts lock different rows, and a transaction is a round trip a statement, each a
#: wait for the event loop: with one at a time, a report arriving during one waited for all of it
#: before its own began (bench/README.md, agent_bench).
REPORT_TRANSACTIONS_AT_ONCE = {"postgresql": 2}


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

    #: The reports waiting to be stored together (made on the first report, in the running loop).
    _reports: GroupCommit[Pending, IngestResult] | None = None

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
        (:func:`bot.booking.ingest.store_reports`, :func:`~bot.booking.host_runs.use_token`;
        refused then, storing nothing), and the revoking process forgets the token at once."""
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
        second), so reports that arrive while another is being stored wait for it and are then
        stored together, in one transaction (:mod:`bot.booking.group_commit`), each checked on
        its own (:func:`bot.booking.ingest.store_reports`); this returns once this report is
        committed, or raises its refusal with nothing of it stored."""
        if report.host != identity.host:
            raise PermissionDenied(
                Code.REPORT_WRONG_HOST,
                token_host=Quote(identity.host),
                host=Quote(report.host),
            )
        if self._reports is None:
            self._reports = GroupCommit(
                self._store_reports,
                can_join,
                REPORTS_PER_TRANSACTION,
                shared=lambda error: isinstance(error, DatabaseUnavailable),
                writers=REPORT_TRANSACTIONS_AT_ONCE.get(self.db.backend, 1),
            )
        return await self._reports.submit(Pending(identity, report))

    async def _store_reports(
        self, batch: Sequence[Pending]
    ) -> Sequence[IngestResult | GpubookError]:
        now = self.clock()
        # First among this process's writers: a fleet's reports wait for at most one other write;
        # on the loop once the write lock is held (a report's statements are small); and not
        # waiting for PostgreSQL's flush to disk: a crash of the database server can lose the
        # last fraction of a second of reports (whole ones, and nothing but them), each host's
        # next report coming within an interval anyway. Waiting for the flush was the commonest
        # wait of reports' transactions under a fleet (bench/README.md, agent_bench).
        async with self.db.write(first=True, on_loop=True, durable=False) as session:
            return await session.run_sync(
                store_reports, batch, now, self.config.usage.silent_after, self.remembered_tokens
            )

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
