"""Calendar feeds, as data: the private URL's token, what a feed holds, and each booking as the
fields of one calendar event.

A feed URL is a bearer credential (whoever has it reads the bookings), so its token is random
(:data:`TOKEN_BYTES` from :mod:`secrets`) and only its SHA-256 is stored. The events are plain
values here; turning them into iCalendar bytes is :mod:`bot.render.ics`'s job. An event is
identified by a UID that never changes for a booking, and every change to the booking raises
its SEQUENCE (the booking's revision), which is how a subscribed calendar recognises an update
rather than a new event (RFC 5545 §3.8.4.7, §3.8.7.4).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.formats import format_size
from bot.core.phrases import Code
from bot.core.sentence import Quote, Size, User, say
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus
from bot.core.wording import Surface, render

#: 32 random bytes: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32
#: What the URL's token must look like before the database is asked (anything else is a 404).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
#: How far back a feed reaches; every future booking is in it.
FEED_PAST = timedelta(days=30)
#: The feed's path under the public URL; the HTTP route serves the same pattern.
FEED_PATH = "/ics/{token}.ics"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What is stored and looked up: the hex SHA-256 of the token (never the token itself)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def looks_like_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def feed_url(public_url: str, token: str) -> str:
    """The URL to subscribe to, under the bot's public base URL (``GPUBOOK_PUBLIC_URL``)."""
    return public_url.rstrip("/") + FEED_PATH.format(token=token)


@dataclass(frozen=True)
class FeedEntry:
    """A booking in a feed, with its revision and when it last changed."""

    booking: BookingInfo
    revision: int
    modified: datetime


@dataclass(frozen=True)
class Feed:
    """What one feed URL shows: a user's own bookings (``gpu_name`` None) or a GPU's."""

    team_id: str
    user_id: str
    gpu_name: str | None
    entries: list[FeedEntry]
    #: The latest change to anything in the feed (HTTP Last-Modified).
    modified: datetime


@dataclass(frozen=True)
class EventData:
    """One VEVENT's values: all a renderer needs."""

    uid: str
    summary: str
    start: datetime
    end: datetime
    stamp: datetime
    sequence: int
    cancelled: bool
    description: str


def event_data(team_id: str, entry: FeedEntry) -> EventData:
    """A booking as an event: ``rtx-0 · 20 GB · task``, in UTC, cancelled when it was.

    The UID names the workspace and the booking, so it is the same in every feed that shows
    the booking and never collides with another workspace's booking of the same number.
    """
    b = entry.booking
    return EventData(
        uid=f"booking-{b.id}-{team_id}@gpubook",
        summary=f"{b.gpu_name} · {format_size(b.memory_mib)} · {b.task}",
        start=b.start,
        end=b.end,
        stamp=entry.modified,
        sequence=entry.revision,
        cancelled=b.status == BookingStatus.CANCELLED,
        description=render(
            say(
                Code.FEED_EVENT,
                id=b.id,
                gpu=Quote(b.gpu_name),
                size=Size(b.memory_mib),
                capacity=Size(b.gpu_capacity_mib),
                owner=User(b.user_id),
            ),
            _PLAIN,
        ),
    )


def feed_name(feed: Feed) -> str:
    """The calendar's display name in a subscriber's calendar list."""
    if feed.gpu_name is None:
        return render(say(Code.FEED_NAME_OWN), _PLAIN)
    return render(say(Code.FEED_NAME_GPU, gpu=Quote(feed.gpu_name)), _PLAIN)


#: Feeds are read by calendar programs: plain text, and no times in sentences.
_PLAIN = Surface()
