"""A calendar feed as iCalendar (RFC 5545) bytes, built with the ``icalendar`` library.

Every value is given explicitly (``Calendar.new()``/``Event.new()`` would add a random UID and
the current time as DTSTAMP), so the same bookings always give the same bytes: the HTTP route
can use a hash of them as the ETag. Times are UTC (``…Z``). Events are marked transparent:
a GPU booking does not make anyone busy. A series is exported expanded, one event per
occurrence: each occurrence is a booking of its own (moved, resized or cancelled alone, with
its own revision), which an RRULE would have to restate as RECURRENCE-ID overrides.

Speed (a cold feed of a thousand bookings was ~0.2 ms of CPU per event): the values are
``icalendar``'s property types, whose ``to_ical`` does the escaping and formatting, but each
event's content lines are joined here rather than through ``Component.to_ical``, which builds
a parameter object and a content-line object per property and folds every line one character
at a time. A line shorter than the fold limit is left as it is (what folding does to it
anyway); a longer one, or one with parameters, still goes through the library's
``Contentline``. The bytes are the library's own — ``tests/test_feeds.py`` compares them with
``Event.to_ical`` — in its canonical property order. Each event's bytes are also kept in a
bounded cache keyed by the booking as read (its values, revision and last change), shared by
every feed that shows the booking: a polled feed costs what changed since the last request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from icalendar import Calendar, vDatetime, vDuration, vInt, vText
from icalendar.parser import Contentline

from bot.core.feeds import EventData, Feed, FeedEntry, event_data, feed_name

PRODID = "-//gpubook//calendar feed//EN"
#: What subscribing programs are asked to wait between refreshes (most choose their own).
REFRESH = timedelta(hours=1)
#: Rendered events kept (a few hundred bytes each).
EVENT_CACHE = 16_384
#: ``icalendar`` folds a line once it would reach this many octets (RFC 5545 §3.1: 75).
FOLD_AT = 75
_END = b"END:VCALENDAR\r\n"
_CONFIRMED = vText("CONFIRMED")
_CANCELLED = vText("CANCELLED")
_TRANSPARENT = vText("TRANSPARENT")


def feed_ics(feed: Feed) -> bytes:
    """The whole feed: the calendar's properties, then one VEVENT per booking."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    name = feed_name(feed)
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    # RFC 7986 wants VALUE=DURATION spelled out; icalendar's own helper leaves it out.
    calendar.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))  # Outlook's name for the same wish
    head = calendar.to_ical()
    events = b"".join(_event_ics(feed.team_id, entry) for entry in feed.entries)
    return head.removesuffix(_END) + events + _END


def event_properties(data: EventData) -> list[tuple[str, Any]]:
    """One booking's VEVENT properties as ``icalendar`` types, in the library's canonical
    order for an event (its ``Event.canonical_order``, then the rest alphabetically). DTSTAMP
    is when the booking last changed, as RFC 5545 defines it for a published calendar, so it
    doubles as LAST-MODIFIED."""
    return [
        ("SUMMARY", vText(data.summary)),
        ("DTSTART", vDatetime(data.start)),
        ("DTEND", vDatetime(data.end)),
        ("DTSTAMP", vDatetime(data.stamp)),
        ("UID", vText(data.uid)),
        ("SEQUENCE", vInt(data.sequence)),
        ("DESCRIPTION", vText(data.description)),
        ("STATUS", _CANCELLED if data.cancelled else _CONFIRMED),
        ("TRANSP", _TRANSPARENT),
    ]


@lru_cache(maxsize=EVENT_CACHE)
def _event_ics(team_id: str, entry: FeedEntry) -> bytes:
    return component_ics("VEVENT", event_properties(event_data(team_id, entry)))


def component_ics(kind: str, properties: Iterable[tuple[str, Any]]) -> bytes:
    """``BEGIN``, the properties' content lines, ``END``: what ``Component.to_ical`` writes
    for a component without subcomponents whose properties are given in its order."""
    lines = [b"BEGIN:" + kind.encode()]
    lines.extend(_content_line(name, value) for name, value in properties)
    lines.append(b"END:" + kind.encode())
    lines.append(b"")
    return b"\r\n".join(lines)


def _content_line(name: str, value: Any) -> bytes:
    if value.params:
        return Contentline.from_parts(name, value.params, value).to_ical()
    line = name.encode() + b":" + value.to_ical()
    if len(line) < FOLD_AT:
        return line
    return Contentline(line.decode()).to_ical()
