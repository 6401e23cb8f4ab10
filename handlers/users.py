"""Who a Slack user is, as far as gpubook cares: their time zone and whether they administer the
workspace — read from ``users.info`` and cached.

Every request needs this (times are typed and shown in the user's zone), but ``users.info`` is a
Web API round trip that must never delay an ``ack()`` or let a modal's ``trigger_id`` expire. So
answers are cached per user for a while, concurrent lookups of one user share a single call, a
lookup can be given a deadline (the caller then proceeds with UTC while the call keeps filling the
cache), and any failure degrades to UTC / non-admin instead of failing the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class UserProfile:
    tz: ZoneInfo
    is_workspace_admin: bool
    #: False when ``tz`` is UTC only because Slack did not tell us the zone (a failed or slow
    #: lookup, an unknown zone name): replies then say their times were read in UTC. It says how
    #: the profile was obtained, not who the user is, so it takes no part in equality.
    zone_known: bool = field(default=True, compare=False)
    #: What people call them (display name, else real name, else user name), for pictures
    #: where a mention cannot be drawn; ``None`` when Slack did not say.
    name: str | None = field(default=None, compare=False)


#: What a user is taken to be when Slack cannot tell us.
UNKNOWN = UserProfile(UTC_ZONE, False, zone_known=False)
#: Profiles kept at most: every person of a large workspace (or of every workspace installed)
#: without growing for as long as the process runs.
MAX_CACHED_USERS = 20_000


class UserDirectory:
    """Cached ``users.info`` per (team, user).

    ``ttl`` bounds how stale a zone or admin flag may get (people travel, admins change);
    failures are cached for ``failure_ttl`` only, so a Slack hiccup is retried soon.
    ``max_entries`` bounds the cache: past it the profile fetched longest ago is dropped (an
    expired profile is never read again, so it would otherwise stay for good).
    ``monotonic`` is injectable so tests control expiry without sleeping.
    """

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        failure_ttl: float = 60.0,
        max_entries: int = MAX_CACHED_USERS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        #: (expiry, profile) in the order fetched: the first is the one fetched longest ago.
        self._cache: dict[tuple[str, str], tuple[float, UserProfile]] = {}
        self._pending: dict[tuple[str, str], asyncio.Task[UserProfile]] = {}

    async def get(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        *,
        max_wait: float | None = None,
    ) -> UserProfile:
        """The user's profile; with ``max_wait`` (seconds), :data:`UNKNOWN` if Slack is slower than that."""
        key = (team_id, user_id)
        cached = self.cached(team_id, user_id)
        if cached is not None:
            return cached
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(client, key))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        try:
            # shield: a caller giving up must not cancel the lookup others (and the cache) await.
            return await asyncio.wait_for(asyncio.shield(task), max_wait)
        except TimeoutError:
            log.warning("users.info for %s took over %.1fs; using UTC for now", user_id, max_wait)
            return UNKNOWN

    def cached(self, team_id: str, user_id: str) -> UserProfile | None:
        """The user's profile if a fresh one is cached, without asking Slack (``None`` otherwise)."""
        cached = self._cache.get((team_id, user_id))
        return cached[1] if cached is not None and cached[0] > self._monotonic() else None

    def forget(self, team_id: str, user_id: str) -> None:
        """Drop a cached profile (e.g. after a ``user_change`` event)."""
        self._cache.pop((team_id, user_id), None)

    async def close(self) -> None:
        """Cancel lookups still in flight (at shutdown)."""
        for task in list(self._pending.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _fetch(self, client: AsyncWebClient, key: tuple[str, str]) -> UserProfile:
        try:
            response = await client.users_info(user=key[1])
            profile = _profile(response.get("user") or {})
            ttl = self.ttl
        except Exception:  # any Slack or network failure: fall back, retry after failure_ttl
            log.warning("users.info failed for %s; using UTC", key[1], exc_info=True)
            profile, ttl = UNKNOWN, self.failure_ttl
        self._cache.pop(key, None)  # a refetched profile moves to the end
        self._cache[key] = (self._monotonic() + ttl, profile)
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]
        return profile


def _profile(user: dict) -> UserProfile:
    """Zone, admin flag and name from a ``users.info`` user; a missing or unknown zone name
    means UTC."""
    admin = bool(user.get("is_admin") or user.get("is_owner"))
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("name") or None
    try:
        return UserProfile(ZoneInfo(user["tz"]), admin, name=name)
    except (KeyError, TypeError, ZoneInfoNotFoundError, ValueError):
        return UserProfile(UTC_ZONE, admin, zone_known=False, name=name)
