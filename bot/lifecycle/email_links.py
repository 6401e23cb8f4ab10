"""Link Unix logins by e-mail: ``alice`` on the GPU hosts is the Slack member ``alice@DOMAIN``.

On with ``GPUBOOK_LINK_BY_EMAIL=true`` and ``GPUBOOK_LINK_EMAIL_DOMAIN=example.org``. Each
lifecycle sweep (before the reconciliation, so a login linked now is judged in the same sweep)
takes the logins that the latest reports show and nobody linked, and asks Slack's
``users.lookupByEmail`` for ``login@domain``. A member found (not a bot, not deactivated) gets
the login, audited like any link with the sweep as actor and ``"via": "email"``.

Why one domain and ``users.lookupByEmail`` rather than matching the local part of every member's
address (``users.list``): an exact address cannot pick the wrong person when two members share a
local part across domains (``alice@lab.example`` and ``alice@gmail.com``), and it costs one call
per unknown login instead of paging through the whole workspace on every sweep.

A link someone made always wins: the insert happens only while the login is still unlinked, in a
write transaction, and a replica that lost the race to the same insert just moves on. Logins Slack
does not know are asked again only after :data:`RETRY_AFTER` (a member may join later), and a
sweep asks about at most :data:`LOOKUPS_PER_SWEEP` logins, well inside the method's rate tier.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.booking.journal import SYSTEM_ACTOR, Journal
from bot.core.agent_report import valid_login
from bot.core.vocabulary import AuditAction
from bot.lifecycle.routing import TeamClients
from storage.db import Database
from storage.models import AgentDevice, UnixLogin

log = logging.getLogger(__name__)

#: A login Slack did not find (or a lookup that failed) is asked about again after this long.
RETRY_AFTER = timedelta(hours=6)
#: At most this many lookups per sweep (users.lookupByEmail is Tier 3: 50+ a minute).
LOOKUPS_PER_SWEEP = 20


class EmailLinker:
    """Looks up unlinked logins as ``login@domain`` and links the members found."""

    def __init__(self, db: Database, clients: TeamClients, domain: str) -> None:
        self.db = db
        self.clients = clients
        self.domain = domain
        #: When each (team, login) was last asked about without a link coming of it.
        self._asked: dict[tuple[str, str], datetime] = {}
        #: Errors already logged (a missing scope would otherwise be logged every sweep).
        self._logged: set[str] = set()

    async def run(self, now: datetime) -> int:
        """Ask about the logins due and link those found; returns how many were linked."""
        due = [
            key
            for key in await unlinked_logins(self.db)
            if now - self._asked.get(key, datetime.min.replace(tzinfo=now.tzinfo)) >= RETRY_AFTER
        ]
        linked = 0
        for team_id, login in due[:LOOKUPS_PER_SWEEP]:
            self._asked[(team_id, login)] = now
            email = f"{login}@{self.domain}"
            user_id = await self._lookup(team_id, email)
            if user_id is not None and await link_by_email(
                self.db, team_id, login, user_id, email, now
            ):
                linked += 1
        return linked

    async def _lookup(self, team_id: str, email: str) -> str | None:
        """The id of the active human member with ``email``, or None (not found, or failed)."""
        client = await self.clients.for_team(team_id)
        if client is None:
            return None
        try:
            answer = await client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error != "users_not_found" and error not in self._logged:
                self._logged.add(error)
                log.warning("linking logins by e-mail: users.lookupByEmail failed: %s", error)
            return None
        user: dict[str, Any] = answer.get("user") or {}
        if user.get("deleted") or user.get("is_bot") or not user.get("id"):
            return None
        return str(user["id"])


async def unlinked_logins(db: Database) -> list[tuple[str, str]]:
    """(team, login) for every login some card's latest report shows and nobody linked."""
    async with db.read() as session:
        devices = list(await session.execute(select(AgentDevice.team_id, AgentDevice.users)))
        linked = set(
            (await session.execute(select(UnixLogin.team_id, UnixLogin.login))).tuples().all()
        )
    found = {(team, login) for team, users in devices for login in users if valid_login(login)}
    return sorted(found - linked)


async def link_by_email(
    db: Database, team_id: str, login: str, user_id: str, email: str, now: datetime
) -> bool:
    """Link ``login`` to ``user_id`` unless someone linked it meanwhile; audited. True if linked."""
    try:
        async with db.write() as session:
            if await session.get(UnixLogin, (team_id, login), with_for_update=True) is not None:
                return False
            session.add(
                UnixLogin(
                    team_id=team_id,
                    login=login,
                    user_id=user_id,
                    created_by=SYSTEM_ACTOR,
                    created_at=now,
                )
            )
            details = {"login": login, "user": user_id, "previous": None, "via": "email"}
            Journal(session, now).audit(
                SYSTEM_ACTOR,
                AuditAction.LINK_SET,
                None,
                {**details, "email": email},
                team_id=team_id,
            )
    except IntegrityError:  # another replica linked it first: theirs stands
        return False
    return True
