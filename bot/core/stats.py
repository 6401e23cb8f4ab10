"""How utilisation statistics read, line by line: the same words in Slack, the console and the
command line, each edge only rendering the line's subject (a mention, a code span, plain text).

GB·hours are exact decimals (``Decimal``, half-even to a tenth), never float sums. A measured
figure, when host agents report for what the line is about, follows the booked one with the
share of it that was really used: "booked 80.0 GB·h … used 28.0 GB·h (35.0% of booked)".
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from bot.core.formats import count_of
from bot.core.snapshots import Usage

#: The longest window statistics cover, in days (Slack and the command line alike).
MAX_STATS_DAYS = 3650

_MIB_S_PER_GB_H = Decimal(1024 * 3600)
_TENTH = Decimal("0.1")

#: What the figures mean, said once under every rendering of the statistics.
STATS_NOTE = (
    "GB·h = memory held × hours; GB = 1024 MiB. Cancelled bookings count for nothing. "
    "Used: what host agents measured on bound cards in the same window "
    "(hours older than the sample retention count whole, by their start)."
)


def gb_hours(mib_s: int) -> str:
    """MiB·seconds as GB·hours with one decimal, computed exactly (no float rounding)."""
    return str((Decimal(mib_s) / _MIB_S_PER_GB_H).quantize(_TENTH, rounding=ROUND_HALF_EVEN))


def percent(part: int, whole: int | None) -> str:
    if not whole:
        return "—"
    return f"{(Decimal(part) * 100 / Decimal(whole)).quantize(_TENTH, rounding=ROUND_HALF_EVEN)}%"


def _measured(u: Usage) -> str:
    if u.measured_mib_s is None:
        return ""
    share = f" ({percent(u.measured_mib_s, u.booked_mib_s)} of booked)" if u.booked_mib_s else ""
    return f" · used {gb_hours(u.measured_mib_s)} GB·h{share}"


def gpu_line(u: Usage, subject: str) -> str:
    """A GPU's (or the total's) line: booked of available, bookings, then measured."""
    available = gb_hours(u.available_mib_s) if u.available_mib_s is not None else "—"
    return (
        f"{subject} {gb_hours(u.booked_mib_s)} / {available} GB·h "
        f"({percent(u.booked_mib_s, u.available_mib_s)}) · {count_of(u.bookings, 'booking')}"
        + _measured(u)
    )


def user_line(u: Usage, subject: str) -> str:
    """A person's line: booked, bookings, then measured through their linked logins."""
    return f"{subject} {gb_hours(u.booked_mib_s)} GB·h · {count_of(u.bookings, 'booking')}" + (
        _measured(u)
    )


def unlinked_line(u: Usage, subject: str) -> str:
    """Use measured for a Unix login nobody linked."""
    return f"{subject} used {gb_hours(u.measured_mib_s or 0)} GB·h"
