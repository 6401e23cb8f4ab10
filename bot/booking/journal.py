"""The journal: the audit entry and the notifications a change owes, written with the change.

Every write — a person's through the service, or the lifecycle sweep's — records through one
:class:`Journal` bound to its open transaction, so a change, its audit entry and its outbox rows
commit together or not at all. That is what makes notifications exactly-once: the notifier only
delivers rows that committed, and a second replica finds nothing left to record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking.queries import notification_channel
from bot.core.vocabulary import AuditAction, NoticeKind
from storage.models import AuditEntry, Base, Booking, Gpu, Notification

#: The actor recorded in the audit log for automatic transitions.
SYSTEM_ACTOR = "gpubook"


class Journal:
    """Audit entries and outbox rows for one transaction, at one instant.

    Rows go into the session, written by its next flush. A ``batched`` journal keeps them
    instead, for :meth:`store` to insert with one statement per row and no flush: for a
    transaction with no flush due otherwise (``create``, whose booking is inserted directly),
    where the session's unit of work would cost more than the inserts themselves.
    """

    def __init__(self, session: AsyncSession, now: datetime, *, batched: bool = False) -> None:
        self.session = session
        self.now = now
        self._batch: list[tuple[type[Base], dict[str, Any]]] | None = [] if batched else None

    def _add(self, model: type[Base], values: dict[str, Any]) -> None:
        if self._batch is None:
            self.session.add(model(**values))
        else:
            self._batch.append((model, values))

    async def store(self) -> None:
        """Insert what a ``batched`` journal recorded (in order; nothing is left to flush). An
        unbatched journal has added its rows to the session already: nothing to do."""
        if self._batch is None:
            return
        batch, self._batch = self._batch, []
        for model, values in batch:
            await self.session.execute(insert(model.__table__), values)

    def audit(
        self,
        actor: str,
        action: AuditAction,
        booking: Booking | None,
        details: dict[str, Any],
        *,
        gpu: Gpu | None = None,
        team_id: str | None = None,
    ) -> None:
        """Who did what to which booking or GPU (``team_id`` only when neither is given)."""
        team = team_id or (booking.team_id if booking else gpu.team_id if gpu else None)
        assert team is not None, "an audit entry belongs to a workspace"
        self._add(
            AuditEntry,
            dict(
                team_id=team,
                at=self.now,
                actor=actor,
                action=action,
                booking_id=booking.id if booking else None,
                gpu_id=gpu.id if gpu else (booking.gpu_id if booking else None),
                details=details,
            ),
        )

    async def notify(
        self,
        kind: NoticeKind,
        booking: Booking,
        details: dict[str, Any] | None = None,
        *,
        channel: str | None = None,
    ) -> None:
        """Queue a channel message about ``booking``, for its GPU's or workspace's channel, else for
        the default channel of whichever process posts it (none: nobody is told).

        ``channel``: that choice, when already read in this transaction (with the GPU's lock).
        """
        if channel is None:
            channel = await notification_channel(
                self.session, booking.team_id, booking.gpu.channel_id
            )
        self._outbox(kind, booking, channel, details)

    def tell_owner(
        self, kind: NoticeKind, booking: Booking, details: dict[str, Any] | None = None
    ) -> None:
        """Queue a direct message to the booking's owner."""
        self._outbox(kind, booking, booking.user_id, details)

    def tell_owner_if_not(
        self, actor: str, booking: Booking, action: str, *, reason: str | None = None
    ) -> None:
        """Tell the owner when someone else (an admin, the CLI) changed their booking."""
        if actor != booking.user_id:
            details = {"action": action, "by": actor}
            if reason:
                details["reason"] = reason
            self.tell_owner(NoticeKind.CHANGED, booking, details)

    def tell(
        self,
        kind: NoticeKind,
        team_id: str,
        destination: str,
        details: dict[str, Any],
        booking: Booking | None = None,
    ) -> None:
        """Queue a message that may concern no booking (live usage): to a user or a channel."""
        self._add(
            Notification,
            dict(
                team_id=team_id,
                kind=kind,
                booking_id=booking.id if booking else None,
                channel=destination,
                details=details,
                created_at=self.now,
                due_at=self.now,
            ),
        )

    def _outbox(
        self, kind: NoticeKind, booking: Booking, channel: str, details: dict[str, Any] | None
    ) -> None:
        self._add(
            Notification,
            dict(
                team_id=booking.team_id,
                kind=kind,
                booking_id=booking.id,
                channel=channel,
                details=details or {},
                created_at=self.now,
                due_at=self.now,
            ),
        )
