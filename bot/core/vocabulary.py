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
    # live usage (no booking, or about how one is used)
    OVERUSE = "overuse"
    OVERUSE_CHANNEL = "overuse_channel"
    UNBOOKED = "unbooked"
    IDLE = "idle"
    SILENT_HOST = "silent_host"
    # watches (a person waiting for room; no booking yet)
    WATCH_OPEN = "watch_open"
    WATCH_EXPIRED = "watch_expired"


#: Notices of the live-usage reconciliation: they may concern no booking at all.
USAGE_NOTICES = frozenset(
    {
        NoticeKind.OVERUSE,
        NoticeKind.OVERUSE_CHANNEL,
        NoticeKind.UNBOOKED,
        NoticeKind.IDLE,
        NoticeKind.SILENT_HOST,
    }
)


#: Notices of watches: a window opened (with its Book button), or the watch expired.
WATCH_NOTICES = frozenset({NoticeKind.WATCH_OPEN, NoticeKind.WATCH_EXPIRED})

#: Notices that concern no booking (their row has none): each is rendered from its details.
NOTICES_WITHOUT_BOOKING = USAGE_NOTICES | WATCH_NOTICES


class WatchEnd(enum.StrEnum):
    """Why a watch closed: it told its owner of a window, ran past its deadline, or was
    cancelled. An open watch has none."""

    NOTIFIED = "notified"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class FindingKind(enum.StrEnum):
    """What the reconciliation of bookings against measured use finds (one episode each)."""

    OVERUSE = "overuse"
    UNBOOKED = "unbooked"
    IDLE = "idle"


#: Kinds that reply in the thread of the booking's announcement when it has one.
THREADED_KINDS = frozenset(
    {NoticeKind.STARTED, NoticeKind.ENDED, NoticeKind.RELEASED, NoticeKind.CANCELLED}
)


class EndReason(enum.StrEnum):
    """Why a booking ended (or was cancelled): stored in ``end_reason`` and notice details."""

    COMPLETED = "completed"
    RELEASED = "released"
    RETIRED = "retired"
    #: Released by the reconciliation: its owner had no process on the card for too long.
    IDLE = "idle"


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
    AGENT_TOKEN_CREATE = "agent_token_create"
    AGENT_TOKEN_REVOKE = "agent_token_revoke"
    LINK_SET = "link_set"
    LINK_CLEAR = "link_clear"
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
