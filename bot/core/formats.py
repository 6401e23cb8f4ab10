"""How amounts read: memory in GB, lengths of time and counts of things, as people say them.

Kept apart from :mod:`bot.core.units` (which reads what people type, and refuses what it can't)
so that rendering a sentence never depends on the code that raises refusals.
"""

from __future__ import annotations

import enum
from datetime import timedelta

_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class SizeUnit(enum.StrEnum):
    """The unit sizes are shown in; sizes shown together share one (see :func:`size_unit`)."""

    GB = "GB"
    MIB = "MiB"


def _tenths_of_gb(mib: int) -> int:
    """``mib`` in tenths of a GB, rounded half to even, in integers (exact, and a feed of a
    thousand bookings formats three thousand sizes)."""
    tenths, rest = divmod(mib * 10, 1024)
    if 2 * rest > 1024 or (2 * rest == 1024 and tenths % 2):
        tenths += 1
    return tenths


def size_unit(*mibs: int) -> SizeUnit:
    """The one unit for sizes read together (one sentence, one line): "0 GB free" beside "24 GB",
    never "0 MiB". GB, unless every non-zero size is under a gigabyte or one would read "0 GB"
    though it is not nothing; then MiB, exact.
    """
    shown = [mib for mib in mibs if mib]
    if shown and (max(shown) < 1024 or any(_tenths_of_gb(mib) == 0 for mib in shown)):
        return SizeUnit.MIB
    return SizeUnit.GB


def format_size(mib: int, unit: SizeUnit | None = None) -> str:
    """Show MiB the way users type them: "24 GB", "7.5 GB", or "512 MiB" below a gigabyte.

    ``unit`` is the unit of the sizes shown beside this one (:func:`size_unit`); alone, a size
    picks its own. One decimal is enough to tell bookings apart in a message; exact figures live
    in the database.
    """
    if (unit or size_unit(mib)) is SizeUnit.MIB:
        return f"{mib} MiB"
    whole, fraction = divmod(_tenths_of_gb(mib), 10)
    return f"{whole} GB" if fraction == 0 else f"{whole}.{fraction} GB"


def typed_size(mib: int) -> str:
    """Memory as exact text a person could type back: ``40GB`` when whole, else ``1234MiB``."""
    return f"{mib // 1024}GB" if mib % 1024 == 0 else f"{mib}MiB"


def count_of(count: int, singular: str, plural: str | None = None) -> str:
    """A count and its noun agreeing: ``1 booking``, ``0 bookings``, ``1,000 bookings``; an
    irregular plural is given (``count_of(n, "entry", "entries")``). Every count people read goes
    through here, in messages and in the wording table's ``{n:noun}`` marks alike."""
    noun = singular if count == 1 else plural or f"{singular}s"
    return f"{count:,} {noun}"


def format_duration(td: timedelta) -> str:
    """Show a duration compactly, largest unit first: "1h 30m", "2d 3h", "45s".

    Every non-zero unit is shown, so the text reads back to the same duration with
    :func:`parse_duration`. Fractions of a second are dropped; nobody books those.
    """
    if td < timedelta(0):
        raise ValueError(f"cannot format a negative duration: {td!r}")
    remaining = td // timedelta(seconds=1)
    pieces = []
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _SECONDS[unit])
        if count:
            pieces.append(f"{count}{unit}")
    return " ".join(pieces) or "0s"
