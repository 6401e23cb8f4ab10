"""Plain-text times for sentences (errors, CLI, console), in the reader's own zone.

Slack messages that many people read use ``<!date^…>`` tokens instead (see ``handlers.blocks``);
these plain forms are their fallback text and what one-person replies and the CLI show.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo

_INSTANT = timedelta(microseconds=1)

#: Every zone's UTC offset lies in [-12:00, +14:00] and is a whole number of quarter hours.
_QUARTER_HOUR_S = 15 * 60


def format_time(dt: datetime, tz: tzinfo, now: datetime, *, dated: bool = False) -> str:
    """``14:00`` today, ``Tue 1 Dec 14:00`` on another day (or ``dated``), with the year when it
    differs."""
    local, today = dt.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date() and not dated:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return f"{local:%a} {local.day} {local:%b %H:%M}"
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"


def format_window(
    start: datetime, end: datetime, tz: tzinfo, now: datetime, *, dash: str = "–"
) -> str:
    """``10:00–12:00``, or both ends with their dates when the window crosses into another day
    (``Sun 22 Nov 17:08 – Sun 29 Nov 17:08``, even when one end is today). ``dash`` joins the
    ends of a one-day window."""
    if start.astimezone(tz).date() == end.astimezone(tz).date():
        return f"{format_time(start, tz, now)}{dash}{end.astimezone(tz):%H:%M}"
    return f"{format_time(start, tz, now, dated=True)} – {format_time(end, tz, now, dated=True)}"


def may_span_dates(start: datetime, end: datetime) -> bool:
    """Whether ``start`` and ``end`` fall on different dates in *some* reader's zone.

    For a reader whose zone is unknown (a Slack ``<!date>`` token is rendered by each client).
    Offsets span 26 hours, so at every whole UTC hour some zone has its midnight (and at some
    half and quarter hours too): counting every quarter hour as a possible midnight, the dates
    may differ exactly when ``(start, end]`` holds one.
    """
    return int(end.timestamp()) // _QUARTER_HOUR_S > int(start.timestamp()) // _QUARTER_HOUR_S


def zoned_window(start: datetime, end: datetime, tz: tzinfo, now: datetime) -> str:
    """:func:`format_window` followed by the zone it is read in (``10:00–12:00 CET``)."""
    return f"{format_window(start, end, tz, now)} {zone_label(tz, start)}"


def zone_name(tz: tzinfo) -> str:
    """The zone's name as people set it (``Europe/Berlin``), to say which clock a reader's
    times are shown in; a zone without one (a fixed offset) by its abbreviation."""
    return getattr(tz, "key", None) or tz.tzname(None) or "UTC"


def zone_label(tz: tzinfo, at: datetime) -> str:
    """The zone's abbreviation at ``at`` (``CET``, ``UTC``) so a sentence says which clock it means."""
    return at.astimezone(tz).tzname() or "UTC"


def zone_labels(tz: tzinfo, start: datetime, end: datetime) -> list[str]:
    """Every abbreviation ``tz`` uses over ``[start, end)``, in order: ``["CET"]``, or
    ``["CET", "CEST"]`` over a DST change, so a view of that span can name both clocks.

    Sampled each hour and at the last instant: an offset stays for months, so none is missed."""
    hours = math.ceil((end - start) / timedelta(hours=1))
    samples = [start + timedelta(hours=h) for h in range(hours)] + [end - _INSTANT]
    return list(dict.fromkeys(zone_label(tz, at) for at in samples))
