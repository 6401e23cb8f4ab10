"""Where each outbox row goes and who posts it: the workspace's client, the destination (a
channel, or a user id for a DM), the thread, and whether the row still has anything to say.

Split from the notifier, which claims, posts and records; these are the decisions it makes about
rows it has loaded, with no database or Slack call of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.slack_ids import is_user_id
from bot.core.vocabulary import NOTICES_WITHOUT_BOOKING, THREADED_KINDS, BookingStatus, NoticeKind
from storage.models import DEFAULT_CHANNEL, Notification


class TeamClients(Protocol):
    """The Web API client that posts for a workspace; ``None`` when it has no token any more."""

    def for_team(self, team_id: str) -> Awaitable[AsyncWebClient | None]: ...


class OneClient:
    """The one client of a bot that serves one workspace, whatever the row's team."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        return self.client


def is_dm(destination: str) -> bool:
    """Rows for DMs carry the user id; Slack posts to a user id in the app's DM with them."""
    return is_user_id(destination)


def by_destination(
    rows: Sequence[Notification], default_channel: str | None
) -> list[tuple[tuple[str, str], list[Notification]]]:
    """Rows by (workspace, channel): one message each, posted with that workspace's token. Rows
    for the default channel go under ``default_channel`` (with the rows already bound for it);
    ``DEFAULT_CHANNEL`` still when this process has none."""
    groups: dict[tuple[str, str], list[Notification]] = {}
    for row in rows:
        destination = row.channel or default_channel or DEFAULT_CHANNEL
        groups.setdefault((row.team_id, destination), []).append(row)
    return list(groups.items())


def obsolete(row: Notification) -> bool:
    """A reminder whose booking ended, or whose end moved (a new reminder covers the new end);
    a booking's notice without its booking. Live-usage and watch notices may concern none."""
    if row.booking is None:
        return row.kind not in NOTICES_WITHOUT_BOOKING
    if row.kind != NoticeKind.REMINDER:
        return False
    booking = row.booking
    return booking.status != BookingStatus.ACTIVE or booking.end_at.isoformat() != row.details.get(
        "end"
    )


def thread_ts(destination: str, rows: Sequence[Notification]) -> str | None:
    """A lone start/end update replies under its booking's announcement, if it was posted here."""
    if len(rows) != 1 or rows[0].kind not in THREADED_KINDS or rows[0].booking is None:
        return None
    booking = rows[0].booking
    return booking.announce_ts if booking.announce_channel == destination else None
