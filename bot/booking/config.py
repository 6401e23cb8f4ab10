"""What the operator configures for the booking service."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.policy import Policy


@dataclass(frozen=True)
class ServiceConfig:
    policy: Policy = field(default_factory=Policy)
    #: Slack user ids with admin rights, besides workspace admins.
    admins: frozenset[str] = frozenset()
    #: Channel for notifications when neither the GPU nor the workspace names one: the notifier
    #: of this process posts there (see ``storage.models.DEFAULT_CHANNEL``).
    default_channel: str | None = None
    #: Whether new bookings are announced in the channel.
    announce_new: bool = True
