"""Fair share: the limits a person books under, how groups combine them, and their arithmetic.

Limits belong to groups of people; the group ``everyone`` holds the defaults. A person's limit is
the most generous value among the groups they are in that set it, and ``everyone``'s value when
none of their groups sets it: a group's value replaces the default for its members (so a group
may be stricter than everyone, as ``GPUBOOK_MAX_EXTENSION_<NAME>`` always allowed), and being in
one more group never takes anything away. A limit nobody sets is unlimited.

Values are integers in base units — MiB, MiB·seconds, a count, seconds — so nothing rounds. The
GB·hours a person uses are counted over the last seven days and everything ahead: what they used
this week, what runs now and what is booked. As the week rolls on, old use ages out, so a refused
request fits again at a computable instant (:func:`gbh_fits_at`). Memory held at once across all
cards is the capacity question with the person's limit as the card (:mod:`bot.core.capacity`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from bot.core.capacity import Span
from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence, Size, User, When, say
from bot.core.sentence import Span as Length
from bot.core.units import parse_duration, parse_size

#: The group whose limits are everyone's defaults (every person is in it).
EVERYONE = "everyone"
#: How far back used GB·hours count.
GBH_WINDOW = timedelta(days=7)
#: MiB·seconds in one GB·hour (GB is 1024 MiB, as everywhere in gpubook).
MIB_SECONDS_PER_GBH = 1024 * 3600
#: Words that clear a group's setting (back to the default, or unlimited for ``everyone``).
CLEAR_WORDS = frozenset({"none", "default", "unlimited", "off"})
_GROUP_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_GBH = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:gb[·*.]?h|gbh)?", re.IGNORECASE)


class LimitName(enum.StrEnum):
    """Each limit, spelled as admins type it and as it is stored."""

    MAX_HELD = "max-held"
    MAX_GBH = "max-gbh"
    MAX_OPEN = "max-open"
    MAX_DURATION = "max-duration"
    MAX_EXTENSION = "max-extension"
    MAX_ADVANCE = "max-advance"


#: Limits whose value is a length of time (stored in seconds).
DURATION_LIMITS = frozenset(
    {LimitName.MAX_DURATION, LimitName.MAX_EXTENSION, LimitName.MAX_ADVANCE}
)

#: Settings per group: group name → limit → value (absent: not set by that group).
Settings = Mapping[str, Mapping[LimitName, int]]


@dataclass(frozen=True)
class Limit:
    """One effective limit: its value (``None``: unlimited) and the group it comes from."""

    value: int | None
    group: str | None


@dataclass(frozen=True)
class Limits:
    """A person's effective limits."""

    values: Mapping[LimitName, Limit]

    def __getitem__(self, name: LimitName) -> Limit:
        return self.values.get(name, Limit(None, None))

    def duration(self, name: LimitName, default: timedelta) -> timedelta:
        value = self[name].value
        return default if value is None else timedelta(seconds=value)


def effective(groups: Iterable[str], settings: Settings) -> Limits:
    """The limits of a member of ``groups``: per limit, the most generous value among those
    groups that set it, else ``everyone``'s, else unlimited."""
    mine = sorted(set(groups) - {EVERYONE})
    values: dict[LimitName, Limit] = {}
    for name in LimitName:
        set_by = [(settings[g][name], g) for g in mine if name in settings.get(g, {})]
        if set_by:
            value, group = max(set_by, key=lambda pair: pair[0])
            values[name] = Limit(value, group)
        elif name in settings.get(EVERYONE, {}):
            values[name] = Limit(settings[EVERYONE][name], EVERYONE)
    return Limits(values)


def validate_group(name: str) -> str:
    """A group name: lower-case letters, digits, ``-`` and ``_``, starting with a letter."""
    cleaned = name.strip().lower()
    if not _GROUP_NAME.fullmatch(cleaned):
        raise InputError(Code.GROUP_NAME_INVALID, field="group", name=Quote(name))
    return cleaned


def parse_limit(name: str) -> LimitName:
    try:
        return LimitName(name.strip().lower())
    except ValueError:
        names = ", ".join(limit.value for limit in LimitName)
        raise InputError(
            Code.LIMIT_UNKNOWN, field="limit", typed=Quote(name), names=names
        ) from None


def parse_value(name: LimitName, text: str) -> int | None:
    """The stored value of ``text`` for limit ``name``; ``None`` for a word of CLEAR_WORDS."""
    text = text.strip()
    if text.lower() in CLEAR_WORDS:
        return None
    if name in DURATION_LIMITS:
        return int(parse_duration(text).total_seconds())
    if name is LimitName.MAX_HELD:
        if text.endswith("%"):
            raise InputError(Code.LIMIT_VALUE, field="value", typed=Quote(text), limit=name.value)
        return parse_size(text)
    if name is LimitName.MAX_OPEN:
        if not text.isdigit():
            raise InputError(Code.LIMIT_VALUE, field="value", typed=Quote(text), limit=name.value)
        return int(text)
    match = _GBH.fullmatch(text)
    if match is None:
        raise InputError(Code.LIMIT_VALUE, field="value", typed=Quote(text), limit=name.value)
    try:
        gbh = Decimal(match[1])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise InputError(
            Code.LIMIT_VALUE, field="value", typed=Quote(text), limit=name.value
        ) from None
    return int((gbh * MIB_SECONDS_PER_GBH).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def format_gbh(mib_seconds: int) -> str:
    """GB·hours with one decimal when it matters: ``210 GB·h``, ``0.5 GB·h``."""
    tenths = int(
        (Decimal(mib_seconds) * 10 / MIB_SECONDS_PER_GBH).quantize(
            Decimal(1), rounding=ROUND_HALF_EVEN
        )
    )
    whole, fraction = divmod(tenths, 10)
    return f"{whole} GB·h" if fraction == 0 else f"{whole}.{fraction} GB·h"


def mib_seconds(spans: Iterable[Span], since: datetime) -> int:
    """MiB·seconds held by ``spans`` from ``since`` on (earlier parts are not counted)."""
    total = 0
    for span in spans:
        start = max(span.start, since)
        if span.end > start:
            total += span.mib * int((span.end - start).total_seconds())
    return total


def gbh_used(spans: Iterable[Span], now: datetime) -> int:
    """What counts against the GB·h limit at ``now``: the last seven days and all ahead."""
    return mib_seconds(spans, now - GBH_WINDOW)


def gbh_ages_from(spans: Iterable[Span], now: datetime) -> datetime | None:
    """When the GB·h counted at ``now`` next start to fall as the week rolls on (the start of
    the oldest use counted, a week later); ``now`` when they already fall, ``None`` if none."""
    since = now - GBH_WINDOW
    starts = [max(span.start, since) for span in spans if span.end > since]
    return max(min(starts) + GBH_WINDOW, now) if starts else None


def gbh_fits_at(spans: Sequence[Span], limit: int, need: int, now: datetime) -> datetime | None:
    """The first whole second from ``now`` when ``need`` more MiB·s fit under ``limit``, as past
    use ages out of the window and nothing new is booked; ``None`` when ``need`` alone is over.

    Use only falls as time passes, so a binary search over seconds finds the instant.
    """
    if need > limit:
        return None
    if gbh_used(spans, now) + need <= limit:
        return now
    last = max(span.end for span in spans) + GBH_WINDOW  # from here nothing counts
    low, high = 0, int((last - now).total_seconds())
    while low < high:
        middle = (low + high) // 2
        if gbh_used(spans, now + timedelta(seconds=middle)) + need <= limit:
            high = middle
        else:
            low = middle + 1
    return now + timedelta(seconds=low)


@dataclass(frozen=True)
class GroupInfo:
    """A group as admins see it: who is in it and the limits it sets (stored or from the
    environment)."""

    name: str
    members: tuple[str, ...]
    settings: Mapping[LimitName, int]


@dataclass(frozen=True)
class Standing:
    """Where a person stands against their limits at ``now``."""

    user_id: str
    now: datetime
    limits: Limits
    #: memory held right now, and the most held at once from now on (across all cards)
    held_now_mib: int
    held_peak_mib: int
    #: MiB·seconds used in the last seven days and booked ahead
    gbh_used: int
    #: when the GB·h used start to age out of the window (``None``: nothing counted)
    gbh_ages_from: datetime | None
    open_count: int


def shown(name: LimitName, value: int | None) -> object:
    """A limit's value as a sentence shows it."""
    if value is None:
        return say(Code.NO_LIMIT)
    if name in DURATION_LIMITS:
        return Length(timedelta(seconds=value))
    if name is LimitName.MAX_HELD:
        return Size(value)
    return format_gbh(value) if name is LimitName.MAX_GBH else value


def group_sentence(group: GroupInfo) -> Sentence:
    """One group: its members and the limits it sets."""
    limits = [
        say(Code.LIMIT_ENTRY, name=Quote(name.value), value=shown(name, group.settings[name]))
        for name in LimitName
        if name in group.settings
    ]
    members: object = [User(u) for u in group.members] or say(Code.NOBODY)
    if group.name == EVERYONE:
        members = say(Code.EVERYBODY)
    return say(
        Code.GROUP_SHOWN,
        group=Quote(group.name),
        members=members,
        limits=limits or say(Code.GROUP_NO_LIMITS),
    )


def standing_sentences(standing: Standing) -> tuple[Sentence, ...]:
    """Where a person stands: memory held, GB·h, open bookings and their booking rules. A limit
    that is not set gets its own sentence ("no max-held limit"), not a value reading "no limit"."""
    limits = standing.limits
    held = limits[LimitName.MAX_HELD].value
    gbh = limits[LimitName.MAX_GBH].value
    most_open = limits[LimitName.MAX_OPEN].value
    rules = {
        key: shown(name, limits[name].value)
        for key, name in (
            ("duration", LimitName.MAX_DURATION),
            ("advance", LimitName.MAX_ADVANCE),
            ("extension", LimitName.MAX_EXTENSION),
        )
    }
    used = format_gbh(standing.gbh_used)
    now, peak = Size(standing.held_now_mib), Size(standing.held_peak_mib)
    return (
        say(Code.STANDING_HELD_UNLIMITED, now=now, peak=peak)
        if held is None
        else say(Code.STANDING_HELD, now=now, peak=peak, limit=Size(held)),
        say(Code.STANDING_GBH_UNLIMITED, used=used)
        if gbh is None
        else say(
            Code.STANDING_GBH,
            used=used,
            limit=format_gbh(gbh),
            free=format_gbh(max(gbh - standing.gbh_used, 0)),
            more=say(Code.STANDING_GBH_AGES, when=When(standing.gbh_ages_from))
            if standing.gbh_ages_from and standing.gbh_ages_from > standing.now
            else None,
        ),
        say(Code.STANDING_OPEN_UNLIMITED, count=standing.open_count)
        if most_open is None
        else say(Code.STANDING_OPEN, count=standing.open_count, limit=most_open),
        say(Code.STANDING_RULES, **rules),
    )
