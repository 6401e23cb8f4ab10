"""The tables: GPUs, bookings, the audit log and the notification outbox.

Every row carries the Slack workspace (``team_id``) it belongs to, so a multi-workspace install
needs no data migration later. Memory is integer MiB and every datetime is aware UTC
(:class:`storage.types.UTCDateTime`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.core.vocabulary import BookingStatus
from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with named constraints (Alembic's batch mode on SQLite needs names)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Gpu(Base):
    __tablename__ = "gpus"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_gpus_team_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    capacity_mib: Mapped[int]
    description: Mapped[str] = mapped_column(String(500), default="")
    channel_id: Mapped[str | None] = mapped_column(String(32))
    retired: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        # The overlap query: bookings on a GPU, holding memory, ending after the window starts.
        Index("ix_bookings_gpu_status_end", "gpu_id", "status", "end_at"),
        # Status: what is under way on a GPU now, and when its next booking starts.
        Index("ix_bookings_gpu_status_start", "gpu_id", "status", "start_at"),
        # The lifecycle sweep: due starts and ends across all GPUs.
        Index("ix_bookings_status_start", "status", "start_at"),
        Index("ix_bookings_status_end", "status", "end_at"),
        # Lists, a page at a time in (start, id) order: everyone's, and one user's.
        Index("ix_bookings_team_status_start", "team_id", "status", "start_at", "id"),
        Index(
            "ix_bookings_team_user_status_start", "team_id", "user_id", "status", "start_at", "id"
        ),
        # Statistics over a window: the bookings ending after it starts (everyone's, or one
        # user's), with every column the sums read, so they never visit the table.
        Index(
            "ix_bookings_team_end",
            "team_id",
            "end_at",
            "start_at",
            "status",
            "gpu_id",
            "user_id",
            "memory_mib",
        ),
        Index(
            "ix_bookings_team_user_end",
            "team_id",
            "user_id",
            "end_at",
            "start_at",
            "status",
            "gpu_id",
            "memory_mib",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    gpu_id: Mapped[int] = mapped_column(ForeignKey("gpus.id"))
    user_id: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(200))
    memory_mib: Mapped[int]
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    #: The end as first booked, before any extension or early release.
    original_end_at: Mapped[datetime]
    status: Mapped[BookingStatus] = mapped_column(
        Enum(
            BookingStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        default=BookingStatus.UPCOMING,
    )
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: How it ended (:class:`~bot.core.vocabulary.EndReason`); None while it holds memory or
    #: when cancelled.
    end_reason: Mapped[str | None] = mapped_column(String(16))
    cancelled_at: Mapped[datetime | None]
    # Lifecycle bookkeeping for notifications.
    #: Channel and message ts of the booking's announcement: start/end messages thread under it.
    announce_channel: Mapped[str | None] = mapped_column(String(32))
    announce_ts: Mapped[str | None] = mapped_column(String(32))
    #: The end time the owner was last reminded about; an extension makes a new reminder due.
    reminded_end_at: Mapped[datetime | None]

    gpu: Mapped[Gpu] = relationship(lazy="joined", innerjoin=True)


class AuditEntry(Base):
    """One row per change: who did what to which booking or GPU, when, with the details."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_team_at", "team_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(32))
    #: An :class:`~bot.core.vocabulary.AuditAction` value.
    action: Mapped[str] = mapped_column(String(32))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    gpu_id: Mapped[int | None] = mapped_column(ForeignKey("gpus.id"))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Notification(Base):
    """The outbox: a Slack message owed, written in the same transaction as the change it reports.

    Writing the message intent with the change makes "exactly once" a database question: the
    change and its notification commit together, and posting is claimed with a lease so one
    replica posts each row; a dead replica's stale lease is taken over.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    #: A :class:`~bot.core.vocabulary.NoticeKind` value.
    kind: Mapped[str] = mapped_column(String(16))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    #: A channel id, or a user id for a direct message.
    channel: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    slack_ts: Mapped[str | None] = mapped_column(String(32))

    booking: Mapped[Booking | None] = relationship(lazy="joined")


class Workspace(Base):
    """Per-workspace settings an admin changes from Slack (the default notification channel)."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]
