"""A GPU's calendar: peak memory held hour by hour (a day) or day by day (a week), its bookings,
and buttons to move between days and weeks.

Slack rejects a block whose buttons repeat an ``action_id``, so the three navigation buttons
carry a suffix each; one listener takes them all through :data:`CALENDAR_NAV_ACTION`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.core.capacity import Step
from bot.core.formats import count_of, format_size
from bot.core.snapshots import BookingInfo, BookingStatus, CalendarData
from bot.core.timefmt import zone_labels
from bot.core.timeparse import day_bounds
from bot.core.usage import LiveCard
from handlers import ids
from handlers.blocks.bookings import booking_line
from handlers.blocks.common import (
    MAX_SECTION_TEXT,
    bar,
    button,
    clip,
    context,
    escape,
    header,
    pack_lines,
    section,
    usage,
)
from handlers.blocks.usage import in_use, live_text

#: Bookings listed under a calendar before the rest is summarised.
MAX_CALENDAR_BOOKINGS = 20
#: Action ids of the calendar's three buttons (one block may not repeat an action id).
CALENDAR_PREV = f"{ids.CALENDAR_NAV}:prev"
CALENDAR_NEXT = f"{ids.CALENDAR_NAV}:next"
CALENDAR_TOGGLE = f"{ids.CALENDAR_NAV}:toggle"
#: Register the calendar listener with this pattern: it matches all three buttons.
CALENDAR_NAV_ACTION = re.compile(rf"^{re.escape(ids.CALENDAR_NAV)}(:[a-z]+)?$")


def peak_in(steps: Iterable[Step], start: datetime, end: datetime) -> int:
    """The most memory held at any instant of ``[start, end)`` according to ``steps``."""
    return max((s.used_mib for s in steps if s.start < end and s.end > start), default=0)


def _strip(
    cal: CalendarData, tz: tzinfo, week: bool, now: datetime, live: LiveCard | None
) -> list[str]:
    """The held-memory strip: one line per hour of the day, or per day of the week (peaks);
    the line holding "now" carries what the card measures, when an agent reports for it."""
    cap = cal.gpu.capacity_mib
    buckets: list[tuple[str, datetime, datetime]] = []
    if week:
        first = cal.start.astimezone(tz).date()
        for offset in range(7):
            day = first + timedelta(days=offset)
            day_start, day_end = day_bounds(day, tz)
            start, end = max(day_start, cal.start), min(day_end, cal.end)
            if start < end:
                buckets.append((f"{day:%a} {day.day:>2}", start, end))
    else:
        cursor = cal.start
        zones = zone_labels(tz, cal.start, cal.end)
        while cursor < cal.end:
            end = min(cursor + timedelta(hours=1), cal.end)
            buckets.append((_hour_label(cursor, tz, zones), cursor, end))
            cursor = end
    return [
        f"{label} {bar(peak, cap)} {usage(peak, cap)}"
        + (f" · now {in_use(live)}" if live is not None and start <= now < end else "")
        for label, start, end in buckets
        for peak in [peak_in(cal.steps, start, end)]
    ]


def _hour_label(at: datetime, tz: tzinfo, zones: list[str]) -> str:
    """``09:00``; on a day the clocks change, ``01:00 CET`` and ``03:00 CEST``, so each hour is
    read on its own clock (and the hour that happens twice is told apart)."""
    local = at.astimezone(tz)
    if len(zones) == 1:
        return f"{local:%H:%M}"
    return f"{local:%H:%M} {local.tzname():<{max(map(len, zones))}}"


def calendar_value(gpu: str, day: date, week: bool) -> str:
    """The JSON a calendar button carries: which GPU, which (local) day, day or week view."""
    return json.dumps({"gpu": gpu, "day": day.isoformat(), "week": week})


def _calendar_nav(cal: CalendarData, tz: tzinfo, week: bool) -> ActionsBlock:
    day = cal.start.astimezone(tz).date()
    step = timedelta(days=7 if week else 1)
    unit = "week" if week else "day"
    name = cal.gpu.name
    return ActionsBlock(
        block_id=f"{ids.CALENDAR_NAV}:{name}:{day.isoformat()}",
        elements=[
            button(f"◀ Previous {unit}", CALENDAR_PREV, calendar_value(name, day - step, week)),
            button(f"Next {unit} ▶", CALENDAR_NEXT, calendar_value(name, day + step, week)),
            button(
                "Day view" if week else "Week view",
                CALENDAR_TOGGLE,
                calendar_value(name, day, not week),
            ),
            button("Chart", ids.CALENDAR_CHART, calendar_value(name, day, week)),
        ],
    )


def _calendar_line(b: BookingInfo, now: datetime) -> str:
    status = " _(cancelled)_" if b.status == BookingStatus.CANCELLED else ""
    return booking_line(b, now) + status


def calendar_message(
    cal: CalendarData,
    *,
    now: datetime,
    tz: tzinfo,
    week: bool = False,
    live: LiveCard | None = None,
) -> list[Block]:
    """A GPU over a day (hour by hour) or a week (day by day): peak memory held, then the bookings.

    The strip is plain text in a code block, so it cannot use date tokens: its hours are in
    ``tz`` (the viewer's zone) and labelled so (both names, and each hour's, over a DST change).
    With ``live`` (the card's latest measurement) the hour (or day) of "now" shows it, and a line
    under the strip says it in full (held against in use, unlinked logins, a silent host).
    """
    first = cal.start.astimezone(tz)
    when = (
        f"week of {first:%a} {first.day} {first:%b %Y}"
        if week
        else f"{first:%a} {first.day} {first:%b %Y}"
    )
    strip = "\n".join(_strip(cal, tz, week, now, live))
    unit = "day" if week else "hour"
    blocks: list[Block] = [
        header(f"{cal.gpu.name} — {when}"),
        context(
            f"Peak memory held per {unit} on `{escape(cal.gpu.name)}` "
            f"({format_size(cal.gpu.capacity_mib)}), "
            f"times in {'/'.join(zone_labels(tz, cal.start, cal.end))}."
        ),
        section(f"```\n{clip(strip, MAX_SECTION_TEXT - 8)}\n```"),
    ]
    if live is not None and cal.start <= now < cal.end:
        held = usage(live.held_mib, live.capacity_mib)
        blocks.append(context(f"Now: held {held} · {live_text(live, now=now)}"))
    if cal.bookings:
        shown = [_calendar_line(b, now) for b in cal.bookings[:MAX_CALENDAR_BOOKINGS]]
        blocks.extend(pack_lines(shown, max_blocks=5))
        hidden = len(cal.bookings) - MAX_CALENDAR_BOOKINGS
        if hidden > 0:
            blocks.append(
                context(
                    f"…and {count_of(hidden, 'more booking')} in this {'week' if week else 'day'}."
                )
            )
    else:
        blocks.append(
            section(f"No bookings on `{escape(cal.gpu.name)}` in this {'week' if week else 'day'}.")
        )
    blocks.append(_calendar_nav(cal, tz, week))
    return blocks
