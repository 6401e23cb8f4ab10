"""The booking state machine: every status change, in one place, for the service and the sweep.

    upcoming ──start──▶ active ──complete / end early──▶ completed
        └──────cancel──────▶ cancelled

Each transition changes the row and records it in the :class:`~bot.booking.journal.Journal` of
the same transaction (audit entry, channel notice, and a DM when someone other than the owner
did it). The caller holds the booking's GPU lock.
"""

from __future__ import annotations

from bot.booking.journal import SYSTEM_ACTOR, Journal
from bot.core.vocabulary import AuditAction, BookingStatus, EndReason, NoticeKind
from storage.models import Booking


async def start(journal: Journal, booking: Booking) -> None:
    """Upcoming → active, at (or after) its start."""
    now = journal.now
    booking.status, booking.updated_at = BookingStatus.ACTIVE, now
    late = int((now - booking.start_at).total_seconds())
    journal.audit(SYSTEM_ACTOR, AuditAction.START, booking, {"late_seconds": late})
    await journal.notify(NoticeKind.STARTED, booking)


async def complete(journal: Journal, booking: Booking) -> None:
    """Active → completed, at (or after) its planned end."""
    now = journal.now
    booking.status, booking.end_reason, booking.updated_at = (
        BookingStatus.COMPLETED,
        EndReason.COMPLETED,
        now,
    )
    late = int((now - booking.end_at).total_seconds())
    journal.audit(SYSTEM_ACTOR, AuditAction.COMPLETE, booking, {"late_seconds": late})
    await journal.notify(NoticeKind.ENDED, booking)


async def end_early(journal: Journal, actor: str, booking: Booking, reason: EndReason) -> None:
    """Active → completed now: its memory is free from this instant, and everyone hears."""
    now = journal.now
    planned_end = booking.end_at
    # Never past the planned end: an overrun the sweep hasn't ended yet held nothing after it.
    booking.end_at = min(max(now, booking.start_at), planned_end)
    booking.status, booking.end_reason, booking.updated_at = BookingStatus.COMPLETED, reason, now
    details = {"planned_end": planned_end.isoformat(), "reason": reason.value}
    journal.audit(actor, AuditAction.RELEASE, booking, details)
    await journal.notify(NoticeKind.RELEASED, booking, details)
    journal.tell_owner_if_not(actor, booking, "released", reason=reason.value)


async def cancel(
    journal: Journal, actor: str, booking: Booking, reason: EndReason | None = None
) -> None:
    """Upcoming → cancelled: it never held memory, and never will."""
    now = journal.now
    booking.status, booking.cancelled_at, booking.updated_at = BookingStatus.CANCELLED, now, now
    details = {"reason": reason.value} if reason else {}
    journal.audit(actor, AuditAction.CANCEL, booking, details)
    await journal.notify(NoticeKind.CANCELLED, booking, details)
    journal.tell_owner_if_not(actor, booking, "cancelled", reason=reason.value if reason else None)


async def remind(journal: Journal, booking: Booking) -> None:
    """Tell the owner their booking ends soon, remembering which end they were told about: an
    extension makes a new reminder due."""
    booking.reminded_end_at = booking.end_at
    journal.tell_owner(NoticeKind.REMINDER, booking, {"end": booking.end_at.isoformat()})
