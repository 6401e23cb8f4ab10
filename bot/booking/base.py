"""What every part of the booking service shares: its dependencies and who may do what."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.booking.config import ServiceConfig
from bot.booking.journal import Journal
from bot.booking.totals import SettledDays
from bot.core.actor import Actor
from bot.core.clock import Clock, system_clock
from bot.core.errors import InvalidState, PermissionDenied
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.sentence import User
from bot.core.usage import HostIdentity
from bot.core.vocabulary import HOLDING_STATUSES, BookingStatus, ChangeVerb
from storage.db import Database
from storage.models import Booking

#: How a finished booking's state reads in "has already …, so there is nothing left to …".
_HOW_IT_ENDED = {
    BookingStatus.COMPLETED: "ended",
    BookingStatus.CANCELLED: "been cancelled",
}


class ServiceBase:
    """The database, the operator's configuration and the clock; the permission rules."""

    def __init__(
        self, db: Database, config: ServiceConfig | None = None, clock: Clock = system_clock
    ) -> None:
        self.db = db
        self.config = config or ServiceConfig()
        self.clock = clock
        #: Host agents' valid tokens by digest (see AgentHosts.reporting_host).
        self.remembered_tokens: dict[str, HostIdentity] = {}
        #: Statistics' settled days (:mod:`bot.booking.totals`), kept by this process.
        self.settled_days = SettledDays()

    @property
    def policy(self) -> Policy:
        return self.config.policy

    def is_admin(self, actor: Actor) -> bool:
        return actor.is_workspace_admin or actor.user_id in self.config.admins

    def one_read(self) -> AbstractAsyncContextManager[None]:
        """The reads made within share one read transaction (a page built from several answers
        pays for one); see :meth:`storage.db.Database.one_read`."""
        return self.db.one_read()

    def journal(self, session: AsyncSession, now: datetime, *, batched: bool = False) -> Journal:
        return Journal(session, now, batched=batched)

    def require_admin(self, actor: Actor, what: str) -> None:
        if not self.is_admin(actor):
            raise PermissionDenied(Code.ADMIN_ONLY, what=what)

    def require_owner(self, actor: Actor, booking: Booking, verb: ChangeVerb) -> None:
        if booking.user_id != actor.user_id and not self.is_admin(actor):
            raise PermissionDenied(
                Code.NOT_OWNER, id=booking.id, owner=User(booking.user_id), verb=str(verb)
            )

    @staticmethod
    def require_holding(booking: Booking, verb: ChangeVerb) -> None:
        if booking.status not in HOLDING_STATUSES:
            raise InvalidState(
                Code.NOT_HOLDING,
                id=booking.id,
                how=_HOW_IT_ENDED[BookingStatus(booking.status)],
                verb=str(verb),
            )

    async def locked_booking(
        self, session: AsyncSession, actor: Actor, booking_id: int, verb: ChangeVerb
    ) -> Booking:
        """The booking with its GPU locked, after checking the actor may ``verb`` it."""
        booking = await queries.booking(session, actor.team_id, booking_id)
        self.require_owner(actor, booking, verb)
        await queries.lock_gpu_ids(session, [booking.gpu_id])
        await session.refresh(booking)
        return booking
