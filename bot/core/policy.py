"""Booking policies: limits an admin tunes with environment variables.

Defaults suit a lab sharing a handful of cards: bookings of 5 minutes to 7 days, up to 60 days
ahead, extended by at most 24 hours in total beyond the end first booked. Extension limits can
differ per group of users (the seed system had standard/premium/admin tiers):

    GPUBOOK_GROUP_PREMIUM=U123,U456      # members of the group "premium"
    GPUBOOK_MAX_EXTENSION_PREMIUM=8h     # their extension limit

Admins may extend up to the maximum duration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.units import parse_duration

_GROUP_PREFIX = "GPUBOOK_GROUP_"
_EXTENSION_PREFIX = "GPUBOOK_MAX_EXTENSION_"


@dataclass(frozen=True)
class Policy:
    min_duration: timedelta = timedelta(minutes=5)
    max_duration: timedelta = timedelta(days=7)
    max_advance: timedelta = timedelta(days=60)
    max_extension: timedelta = timedelta(hours=24)
    #: group name -> extension limit for its members
    group_extensions: Mapping[str, timedelta] = field(default_factory=dict)
    #: user id -> group name
    user_groups: Mapping[str, str] = field(default_factory=dict)
    #: a start this far in the past counts as "now" (the time it took to type the command)
    past_grace: timedelta = timedelta(minutes=1)
    #: how far ahead suggestions look for a window that fits
    search_horizon: timedelta = timedelta(days=30)
    max_task_chars: int = 200

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Policy:
        """Read the policy from ``env``; a malformed value raises InputError naming the variable."""
        defaults = cls()
        groups: dict[str, str] = {}
        extensions: dict[str, timedelta] = {}
        for key, value in env.items():
            if key.startswith(_GROUP_PREFIX) and value.strip():
                name = key[len(_GROUP_PREFIX) :].lower()
                for user in value.split(","):
                    if user.strip():
                        groups[user.strip()] = name
            elif key.startswith(_EXTENSION_PREFIX) and value.strip():
                extensions[key[len(_EXTENSION_PREFIX) :].lower()] = _duration(env, key)
        policy = cls(
            min_duration=_duration(env, "GPUBOOK_MIN_DURATION", defaults.min_duration),
            max_duration=_duration(env, "GPUBOOK_MAX_DURATION", defaults.max_duration),
            max_advance=_duration(env, "GPUBOOK_MAX_ADVANCE", defaults.max_advance),
            max_extension=_duration(env, "GPUBOOK_MAX_EXTENSION", defaults.max_extension),
            group_extensions=extensions,
            user_groups=groups,
        )
        if policy.min_duration > policy.max_duration:
            raise InputError(Code.SETTING_MIN_OVER_MAX)
        return policy


def _duration(env: Mapping[str, str], key: str, default: timedelta | None = None) -> timedelta:
    raw = env.get(key, "").strip()
    if not raw:
        if default is None:
            raise InputError(Code.SETTING_EMPTY_DURATION, key=key)
        return default
    try:
        return parse_duration(raw)
    except InputError as exc:
        raise InputError(Code.SETTING_NOT_DURATION, key=key, value=repr(raw)) from exc
