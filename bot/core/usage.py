"""Snapshots of live usage: agent tokens, reporting devices, and what a report changed.

Plain values, like :mod:`bot.core.snapshots`, built from rows in :mod:`bot.booking.agents`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.core.errors import InputError
from bot.core.gpu_names import validate_gpu_name
from bot.core.host_bookings import HostBookings
from bot.core.vocabulary import FindingKind


@dataclass(frozen=True)
class TokenInfo:
    """An agent token as admins see it: never the secret, which is shown once at creation."""

    id: int
    host: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class HostIdentity:
    """Who a valid bearer token says is reporting."""

    token_id: int
    team_id: str
    host: str


@dataclass(frozen=True)
class DeviceInfo:
    """A card an agent reports, as admins see it when binding it to a GPU."""

    uuid: str
    host: str
    index: int
    name: str
    total_mib: int
    used_mib: int
    last_seen_at: datetime

    @property
    def suggested_gpu_name(self) -> str:
        """A GPU name for the card that the commands accept: ``<host>-<index>``, or
        ``gpu-<index>`` when the host's name can't be one."""
        plain = re.sub(r"[^a-z0-9._-]+", "-", self.host.lower()).strip("-._")
        for candidate in (f"{plain[:27]}-{self.index}", f"gpu-{self.index}"):
            try:
                return validate_gpu_name(candidate)
            except InputError:
                continue
        return f"gpu-{self.index}"


@dataclass(frozen=True)
class IngestResult:
    """What one stored report came to: how many cards, and which of them no GPU is bound to."""

    devices: int
    unbound: tuple[str, ...]
    #: The host's cards and bookings, for its agent (``gpubook run``).
    host_bookings: HostBookings = HostBookings()


@dataclass(frozen=True)
class LiveCard:
    """A bound GPU as its agent last measured it, beside what bookings hold on it now."""

    gpu_name: str
    held_mib: int
    capacity_mib: int
    #: Memory in use on the card at its last report.
    used_mib: int
    reported_at: datetime
    #: No report for longer than the silence threshold: ``used_mib`` is stale.
    silent: bool
    #: In use beyond what is held by more than the tolerance.
    over: bool
    #: Unix logins with processes on the card that no Slack user is linked to.
    unlinked: tuple[str, ...] = ()


def needs_a_look(used_mib: int, held_mib: int, silent: bool, tolerance_mib: int) -> bool:
    """Whether a card's measured use is beyond what bookings hold by more than the tolerance
    (never for a silent card: its numbers are stale)."""
    return not silent and used_mib > held_mib + tolerance_mib


@dataclass(frozen=True)
class LoginLink:
    """A Unix login on the GPU hosts, and the Slack user it is."""

    login: str
    user_id: str


@dataclass(frozen=True)
class UsageEpisodeInfo:
    """A reconciliation finding someone answered: which, whose, and the booking (idle)."""

    id: int
    kind: FindingKind
    user_id: str
    booking_id: int | None
