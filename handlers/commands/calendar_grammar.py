"""The grammar of `calendar link` (private calendar feeds) and `chart` (a picture by DM)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.errors import InputError
from bot.core.phrases import Code
from bot.core.timeparse import parse_day
from handlers.commands.grammar import is_day
from handlers.commands.syntax import CalendarLink, CalendarLinkRevoke, Chart


def parse_calendar_link(args: list[str], now: datetime, tz: ZoneInfo) -> CalendarLink:
    """`calendar link` (your bookings) or `calendar link a100-1` (everyone's on that GPU)."""
    if len(args) > 1:
        raise InputError(Code.CALENDAR_LINK_USAGE, field="command")
    return CalendarLink(args[0].lower() if args else None)


def parse_calendar_link_revoke(args: list[str], now: datetime, tz: ZoneInfo) -> CalendarLinkRevoke:
    if args:
        raise InputError(Code.CALENDAR_LINK_USAGE, field="command")
    return CalendarLinkRevoke()


def parse_chart(args: list[str], now: datetime, tz: ZoneInfo) -> Chart:
    """`chart [gpu] [day|week] [date]`, in any order: `day`/`week` pick the view, a word that
    reads as a day is the date, anything else the GPU; each at most once."""
    parts: dict[str, str] = {}
    for word in (arg.lower() for arg in args):
        kind = "view" if word in ("day", "week") else "date" if is_day(word, now, tz) else "gpu"
        if kind in parts:
            raise InputError(Code.CHART_USAGE, field="command")
        parts[kind] = word
    day = parse_day(parts["date"], now=now, tz=tz) if "date" in parts else None
    return Chart(parts.get("gpu"), day, parts.get("view") == "week")
