"""What the operator configures for the booking service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.policy import Policy

#: A host is silent after this many report intervals without a report.
SILENT_INTERVALS = 3


@dataclass(frozen=True)
class UsageConfig:
    """Live usage: how often agents report, how long samples are kept, what counts as misuse."""

    #: How often each agent reports (the agents' GPUBOOK_AGENT_INTERVAL).
    agent_interval: timedelta = timedelta(seconds=15)
    #: Samples are kept at full resolution this long, then as hourly aggregates.
    retention: timedelta = timedelta(days=7)
    #: Use beyond what is booked by more than this is over-use.
    tolerance_mib: int = 512
    #: A booking whose owner had no process on its card this long is idle.
    idle_after: timedelta = timedelta(minutes=30)
    #: An idle booking is released this long after its owner was asked; None: never.
    idle_release: timedelta | None = None
    #: Link a Unix login nobody linked to the Slack user whose e-mail is ``login@`` this domain
    #: (GPUBOOK_LINK_BY_EMAIL with GPUBOOK_LINK_EMAIL_DOMAIN); None: off.
    link_email_domain: str | None = None

    @property
    def silent_after(self) -> timedelta:
        """No report for this long: the host is silent (and a gap in its samples is this long
        at most when measured memory-time is summed)."""
        return self.agent_interval * SILENT_INTERVALS


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
    usage: UsageConfig = field(default_factory=UsageConfig)
