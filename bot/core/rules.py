"""The booking rules that need no database: windows, lengths, limits, memory and free text.

Each check raises a typed refusal (:mod:`bot.core.errors`) or returns the normalised value. The
service calls them inside its transactions; being pure, they are tested without one.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.core.errors import InputError, PolicyViolation
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.sentence import Span, When
from bot.core.units import parse_size

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_text(text: str, limit: int, what: str, *, required: bool = False) -> str:
    """One line of text: control characters and runs of spaces folded, length bounded."""
    text = _CONTROL.sub(" ", text or "").strip()
    text = re.sub(r" {2,}", " ", text)
    if required and not text:
        raise InputError(Code.TEXT_REQUIRED, field=what, what=what)
    if len(text) > limit:
        raise InputError(Code.TEXT_TOO_LONG, field=what, what=what, length=len(text), limit=limit)
    return text


def require_aware(*values: datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the service works in aware UTC")


def check_window(
    policy: Policy, start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """Validate a new window; a start less than a minute ago counts as now.

    "Now" is cut to the whole second, so a booking made "now" has an end that survives a round
    trip through a form showing its duration in whole seconds.
    """
    require_aware(start, end)
    if start < now - policy.past_grace:
        raise InputError(Code.START_IN_PAST, field="start", start=When(start))
    if start < now:
        start = now.replace(microsecond=0)
    check_end(policy, start, end, now)
    return start, end


def check_end(policy: Policy, start: datetime, end: datetime, now: datetime) -> None:
    require_aware(start, end)
    if end <= start:
        raise InputError(Code.END_BEFORE_START, field="end")
    if end <= now:
        raise InputError(Code.END_IN_PAST, field="end")
    check_length(policy, start, end)


def check_length(policy: Policy, start: datetime, end: datetime) -> None:
    length = end - start
    if length < policy.min_duration:
        raise PolicyViolation(
            Code.TOO_SHORT, field="duration", limit=Span(policy.min_duration), length=Span(length)
        )
    if length > policy.max_duration:
        raise PolicyViolation(
            Code.TOO_LONG, field="duration", limit=Span(policy.max_duration), length=Span(length)
        )


def latest_start(policy: Policy, now: datetime) -> datetime:
    """The latest start a new booking may have."""
    return now + policy.max_advance


def check_advance(policy: Policy, start: datetime, now: datetime) -> None:
    if start > latest_start(policy, now):
        raise PolicyViolation(Code.TOO_FAR_AHEAD, field="start", limit=Span(policy.max_advance))


def search_until(policy: Policy, not_before: datetime, now: datetime) -> datetime:
    """The latest start worth offering for a request from ``not_before``: within the search
    horizon, and never past what :func:`check_advance` allows — an offer must book as given."""
    return min(not_before + policy.search_horizon, latest_start(policy, now))


def check_extension(
    booking_id: int, limit: timedelta, original_end: datetime, end: datetime, new_end: datetime
) -> None:
    """An active booking's end may move past its original end only within ``limit``.

    The limit is on the total, so repeated small extensions cannot add up past it.
    """
    if new_end - original_end <= limit:
        return
    left = max(limit - (end - original_end), timedelta(0))
    raise PolicyViolation(
        Code.EXTENSION_LIMIT, field="duration", id=booking_id, limit=Span(limit), left=Span(left)
    )


def refuse_percentage_without_gpu(memory: int | str) -> None:
    """Half of *which* card? Across several GPUs a percentage is a different size on each."""
    if isinstance(memory, str) and memory.strip().endswith("%"):
        raise InputError(Code.PERCENT_ACROSS_GPUS, field="memory")


def memory_mib(memory: int | str, capacity_mib: int | None) -> int:
    """MiB from an int or the text typed (a percentage is of ``capacity_mib``)."""
    mib = parse_size(memory, capacity_mib=capacity_mib) if isinstance(memory, str) else memory
    if mib <= 0:
        raise InputError(Code.MEMORY_NOT_POSITIVE, field="memory")
    return mib
