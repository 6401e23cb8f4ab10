"""Primitives every builder shares: escaping, Slack date tokens, memory bars."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.timefmt import format_time, format_window
from bot.units import format_size

BAR_WIDTH = 20
FULL, EMPTY = "▓", "░"


def escape(text: str) -> str:
    """Escape user text for mrkdwn so ``<!channel>`` or ``<@U1>`` in a task pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(dt: datetime, *, now: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A ``<!date^…>`` token: every reader sees ``dt`` in their own time zone.

    The fallback (shown by clients that cannot render the token) is UTC, labelled as such.
    """
    fallback = f"{format_time(dt, UTC, now)} UTC"
    return f"<!date^{int(dt.timestamp())}^{fmt}|{fallback}>"


def slack_window(start: datetime, end: datetime, *, now: datetime) -> str:
    """``<start token> – <end token>``; the end shows only the time when it is the same UTC day."""
    end_fmt = (
        "{time}"
        if start.astimezone(UTC).date() == end.astimezone(UTC).date()
        else "{date_short_pretty} {time}"
    )
    fallback = f"{format_window(start, end, UTC, now)} UTC"
    return f"{slack_date(start, now=now)} – <!date^{int(end.timestamp())}^{end_fmt}|{fallback}>"


def bar(used_mib: int, capacity_mib: int, width: int = BAR_WIDTH) -> str:
    """A text bar of memory held: rounded to the nearest block, but any use shows at least one
    block and only a full card shows a full bar (so "almost full" never looks full)."""
    if capacity_mib <= 0:
        return EMPTY * width
    filled = (2 * used_mib * width + capacity_mib) // (2 * capacity_mib)  # round half up, integers
    if 0 < used_mib < capacity_mib:
        filled = min(max(filled, 1), width - 1)
    filled = max(0, min(width, filled))
    return FULL * filled + EMPTY * (width - filled)


def usage(used_mib: int, capacity_mib: int) -> str:
    """``23/24 GB`` style numbers beside a bar."""
    used, total = format_size(used_mib), format_size(capacity_mib)
    if used_mib == 0:
        return f"0/{total}"
    unit = total.split(" ")[-1]
    if used.endswith(f" {unit}"):
        return f"{used.removesuffix(' ' + unit)}/{total}"
    return f"{used} / {total}"
