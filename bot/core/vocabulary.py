"""The words the domain is made of, as enums: one spelling each, stored as their values.

Statuses, notice kinds, end reasons and audit actions are written to the database as these
strings, and read by the sweep, the notifier and the renderers; an enum makes a typo an
AttributeError instead of a silently unmatched string.
"""

from __future__ import annotations

import enum


class BookingStatus(enum.StrEnum):
    """Where a booking is in its life: upcoming → active → completed, or upcoming → cancelled."""

    UPCOMING = "upcoming"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


#: Statuses whose memory counts against capacity.
HOLDING_STATUSES = (BookingStatus.UPCOMING, BookingStatus.ACTIVE)


class NoticeKind(enum.StrEnum):
    """What a queued notification (an outbox row) tells: one renderer per kind."""

    ANNOUNCED = "announced"
    STARTED = "started"
    ENDED = "ended"
    RELEASED = "released"
    CANCELLED = "cancelled"
    REMINDER = "reminder"
    CHANGED = "changed"
    MOVED = "moved"


#: Kinds that reply in the thread of the booking's announcement when it has one.
THREADED_KINDS = frozenset(
    {NoticeKind.STARTED, NoticeKind.ENDED, NoticeKind.RELEASED, NoticeKind.CANCELLED}
)


class EndReason(enum.StrEnum):
    """Why a booking ended (or was cancelled): stored in ``end_reason`` and notice details."""

    COMPLETED = "completed"
    RELEASED = "released"
    RETIRED = "retired"


class AuditAction(enum.StrEnum):
    """What an audit entry records."""

    CREATE = "create"
    UPDATE = "update"
    EXTEND = "extend"
    RELEASE = "release"
    CANCEL = "cancel"
    START = "start"
    COMPLETE = "complete"
    GPU_ADD = "gpu_add"
    GPU_EDIT = "gpu_edit"
    GPU_RETIRE = "gpu_retire"
    SET_CHANNEL = "set_channel"
    GROUP_ADD = "group_add"
    GROUP_REMOVE = "group_remove"
    LIMIT_SET = "limit_set"
    MOVE = "move"
    PIN = "pin"


class ChangeVerb(enum.StrEnum):
    """What someone may do to a booking; the owner is told when someone else did it."""

    EDIT = "edit"
    EXTEND = "extend"
    RELEASE = "release"
    CANCEL = "cancel"
