"""The tables: GPUs, bookings and their series, the audit log, the notification outbox, live usage
and Slack's OAuth stores.

Every row carries the Slack workspace (``team_id``) it belongs to, so a multi-workspace install
needs no data migration later. Memory is integer MiB and every datetime is aware UTC
(:class:`storage.types.UTCDateTime`).

Longer than 400 lines on purpose: it is the schema, one small declarative class per table, and
reading the tables side by side is how their keys and indexes are checked against each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
)
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
    __table_args__ = (
        UniqueConstraint("team_id", "name", name="uq_gpus_team_name"),
        UniqueConstraint("team_id", "device_uuid", name="uq_gpus_team_device_uuid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    capacity_mib: Mapped[int]
    description: Mapped[str] = mapped_column(String(500), default="")
    channel_id: Mapped[str | None] = mapped_column(String(32))
    retired: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: The NVML UUID of the card this GPU is (``GPU-…`` or ``MIG-…``): how agents' reports find it.
    device_uuid: Mapped[str | None] = mapped_column(String(96))


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
        Index("ix_bookings_series", "series_id", "start_at"),
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
        # Statistics' pieces around settled days: the bookings starting from a bound.
        Index(
            "ix_bookings_team_start",
            "team_id",
            "start_at",
            "end_at",
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
    #: How many times what the booking is (:data:`REVISED_BY`) has changed: calendar feeds
    #: publish it as the event's SEQUENCE, which subscribers compare to spot an update.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The recurring series this booking is one occurrence of, if any.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("booking_series.id"))
    # The queue (:mod:`bot.booking.queue`): a flexible booking moves earlier when memory frees.
    flexible: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: The GPUs a flexible booking may move to, as a name pattern (``a100-*``); None: any.
    gpu_pattern: Mapped[str | None] = mapped_column(String(64))
    #: A flexible booking never moves before this.
    not_before: Mapped[datetime | None]

    gpu: Mapped[Gpu] = relationship(lazy="joined", innerjoin=True)
    series: Mapped[BookingSeries | None] = relationship(lazy="joined")


class BookingSeries(Base):
    """A recurring booking: its rule (:class:`bot.core.recurrence.Recurrence` as JSON values);
    each occurrence is an ordinary booking pointing here, checked and changed like any other."""

    __tablename__ = "booking_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    rule: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


#: The columns whose change is a new revision of a booking (not its notification bookkeeping).
REVISED_BY = ("gpu_id", "user_id", "task", "memory_mib", "start_at", "end_at", "status")


@event.listens_for(Booking, "before_update")
def _count_revision(mapper: Any, connection: Any, booking: Booking) -> None:
    """Bump ``revision`` in the UPDATE of any flush that changes a :data:`REVISED_BY` column,
    whichever code path made the change (a person's edit, the sweep, a GPU's retirement)."""
    state = inspect(booking)
    if any(state.attrs[name].history.has_changes() for name in REVISED_BY):
        booking.revision = (booking.revision or 0) + 1


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


#: A notification's channel when neither its GPU nor its workspace names one: the default channel
#: of the process that posts it (``GPUBOOK_CHANNEL`` of the bot), looked up when it is posted, so
#: a booking made from the command line is announced where the bot's own bookings are.
DEFAULT_CHANNEL = ""


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
    #: A channel id, a user id for a direct message, or :data:`DEFAULT_CHANNEL`.
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


class CalendarLink(Base):
    """A private calendar (ICS) feed URL someone asked for: of their own bookings, or (with
    ``gpu_id``) of everyone's on one GPU.

    Only the SHA-256 of the URL's random token is kept, so a copy of the database gives nobody
    a working URL; revoking sets ``revoked_at`` and the URL answers 404 from then on.
    """

    __tablename__ = "calendar_links"
    __table_args__ = (Index("ix_calendar_links_team_user", "team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    #: The GPU whose bookings the feed shows; ``None``: the user's own bookings on every GPU.
    gpu_id: Mapped[int | None] = mapped_column(ForeignKey("gpus.id"))
    #: Hex SHA-256 of the token in the URL.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Workspace(Base):
    """Per-workspace settings an admin changes from Slack (the default notification channel)."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------------------- live usage


class AgentToken(Base):
    """A host's credential for ``POST /agent/report``: only its SHA-256 is kept, so a leaked
    database lets nobody report; revoking sets ``revoked_at`` (the row stays, for the audit)."""

    __tablename__ = "agent_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(128))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AgentHost(Base):
    """A host that reports: when it last did, and whether admins were told it went silent."""

    __tablename__ = "agent_hosts"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_report_at: Mapped[datetime]
    #: Set when admins were told the host went silent; cleared by its next report.
    silence_noticed_at: Mapped[datetime | None]


class AgentDevice(Base):
    """A card some host reports, bound to a GPU or not: its latest reading, kept small so the
    reconciliation reads one row per card instead of scanning samples.

    ``users`` and ``prev_users`` are the last two reports' memory per Unix login (``None`` where
    NVML could not tell; ``"?"`` for processes whose owner is unknown). ``seen`` is when each
    login last had a process here (ISO 8601), which is what "idle for 30 minutes" is measured on.
    ``rolled_to`` is how far its samples are summed into hourly rows
    (:mod:`bot.lifecycle.usage_rollup`); ``None`` until the first roll-up.
    """

    __tablename__ = "agent_devices"
    __table_args__ = (UniqueConstraint("team_id", "uuid", name="uq_agent_devices_team_uuid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(128))
    uuid: Mapped[str] = mapped_column(String(96))
    index: Mapped[int]
    name: Mapped[str] = mapped_column(String(96))
    total_mib: Mapped[int]
    used_mib: Mapped[int]
    users: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_users: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    seen: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    rolled_to: Mapped[datetime | None]

    @classmethod
    def first_seen(cls, team_id: str, uuid: str, now: datetime, **fields: Any) -> AgentDevice:
        """A card reporting for the first time at ``now``: nobody seen on it yet; ``fields``
        set its reading (or override any other column)."""
        new: dict[str, Any] = {
            "team_id": team_id,
            "uuid": uuid,
            "users": {},
            "prev_users": None,
            "seen": {},
            "first_seen_at": now,
            "last_seen_at": now,
        }
        return cls(**(new | fields))


class UnixLogin(Base):
    """A Unix login on the GPU hosts and the Slack user it is: one user per login."""

    __tablename__ = "unix_logins"
    __table_args__ = (Index("ix_unix_logins_team_user", "team_id", "user_id"),)

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


#: 64-bit ids and sums on PostgreSQL; SQLite's INTEGER is 64-bit and must stay the rowid.
_BIG = BigInteger().with_variant(Integer(), "sqlite")


class UsageSample(Base):
    """One card in one report, at full resolution: total and per-login memory (MiB).

    ``seconds`` is the time since the card's previous report (capped, 0 for the first), so
    measured memory-time is ``Σ used_mib × seconds`` without reading neighbouring rows.
    """

    __tablename__ = "usage_samples"
    __table_args__ = (Index("ix_usage_samples_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(_BIG, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("agent_devices.id"))
    at: Mapped[datetime]
    seconds: Mapped[int]
    used_mib: Mapped[int]
    users: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UsageHour(Base):
    """Samples rolled up per card and hour (MiB·seconds): every sample taken before the card's
    ``rolled_to``; the hour that is under way may be partly summed.

    ``cum_used_mib_s`` and ``cum_users`` are running totals: everything the card measured up to
    the end of this row (this hour included). A window's use is then the difference of two rows
    per card, whatever its length — a month of 200 cards reads 400 rows, not 144,000.
    """

    __tablename__ = "usage_hourly"

    device_id: Mapped[int] = mapped_column(ForeignKey("agent_devices.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    samples: Mapped[int]
    seconds: Mapped[int]
    used_mib_s: Mapped[int] = mapped_column(_BIG)
    max_used_mib: Mapped[int]
    users: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cum_used_mib_s: Mapped[int] = mapped_column(_BIG, default=0)
    cum_users: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UsageEpisode(Base):
    """A finding of the reconciliation someone was told about (over-use, unbooked use, an idle
    booking): while its row exists nobody is told again; it is deleted once the finding clears.
    The unique key makes "told once" hold across replicas."""

    __tablename__ = "usage_episodes"
    __table_args__ = (
        UniqueConstraint("team_id", "kind", "gpu_id", "subject", name="uq_usage_episodes_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    #: A :class:`~bot.core.vocabulary.FindingKind` value.
    kind: Mapped[str] = mapped_column(String(16))
    gpu_id: Mapped[int] = mapped_column(ForeignKey("gpus.id"))
    #: Whom it is about: a Slack user id, or a booking id for an idle booking.
    subject: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    #: Set when the person chose Dismiss / Keep: nothing more is done until the finding clears.
    settled_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class GroupMember(Base):
    """One person in one group of a workspace (groups carry limits: :mod:`bot.core.limits`)."""

    __tablename__ = "group_members"
    __table_args__ = (
        UniqueConstraint("team_id", "group_name", "user_id", name="uq_group_members_member"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    group_name: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime]


class GroupLimit(Base):
    """One limit a group sets, in base units (MiB, MiB·seconds, a count or seconds)."""

    __tablename__ = "group_limits"
    __table_args__ = (
        UniqueConstraint("team_id", "group_name", "limit_name", name="uq_group_limits_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    group_name: Mapped[str] = mapped_column(String(32))
    #: A :class:`~bot.core.limits.LimitName` value.
    limit_name: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class UserLock(Base):
    """The per-person lock row: limits that span cards (memory held at once, GB·h, open
    bookings) are checked under it, so two bookings by one person on two GPUs serialise."""

    __tablename__ = "user_locks"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class Watch(Base):
    """A person waiting for room: memory for a length of time on matching GPUs, in a window
    that ends by a deadline. Closed (``ended``) once it told them of a window, expired or was
    cancelled; the check that closes it writes the DM in the same transaction (exactly once)."""

    __tablename__ = "watches"
    __table_args__ = (
        Index("ix_watches_open", "ended", "team_id", "id"),
        Index("ix_watches_team_user", "team_id", "user_id", "ended"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    memory_mib: Mapped[int]
    duration_s: Mapped[int]
    #: GPU name or pattern (``a100-*``); ``None``: any GPU.
    gpu_pattern: Mapped[str | None] = mapped_column(String(64))
    deadline: Mapped[datetime]
    #: The task the booking gets from the DM's Book button (``None``: ``watch #<id>``).
    task: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    #: A :class:`~bot.core.vocabulary.WatchEnd` value; ``None`` while it waits.
    ended: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None]


class HomeView(Base):
    """When a person last opened their App Home: a Home unopened for long is not rebuilt after
    every change (Slack asks for it again when it is next opened), so a booking costs little."""

    __tablename__ = "home_views"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[datetime]


# Slack's OAuth tables (many-workspace mode): installations, bot tokens, OAuth states. slack-sdk's
# own table builders define them, so its stores (``bot.runtime.oauth``) find exactly the columns
# they expect; built on this metadata, the migrations are checked against them like every table.
SLACK_INSTALLATIONS = AsyncSQLAlchemyInstallationStore.build_installations_table(
    Base.metadata, AsyncSQLAlchemyInstallationStore.default_installations_table_name
)
SLACK_BOTS = AsyncSQLAlchemyInstallationStore.build_bots_table(
    Base.metadata, AsyncSQLAlchemyInstallationStore.default_bots_table_name
)
SLACK_OAUTH_STATES = AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(
    Base.metadata, AsyncSQLAlchemyOAuthStateStore.default_table_name
)
