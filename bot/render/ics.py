"""A calendar feed as iCalendar (RFC 5545) bytes, built with the ``icalendar`` library.

Every value is given explicitly (``Calendar.new()``/``Event.new()`` would add a random UID and
the current time as DTSTAMP), so the same bookings always give the same bytes: the HTTP route
can use a hash of them as the ETag. Times are UTC (``…Z``). Events are marked transparent:
a GPU booking does not make anyone busy.

The library folds lines character by character (about 0.15 ms per event here), so each
event's rendering is kept in a small cache keyed by the booking as read (its values, revision
and last change): a feed of a thousand bookings then costs what changed since the last request.
The cached events are placed inside the calendar exactly as ``Calendar.to_ical`` places
subcomponents.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from icalendar import Calendar, Event, vDatetime, vDuration, vInt, vText

from bot.core.feeds import Feed, FeedEntry, event_data, feed_name

PRODID = "-//gpubook//calendar feed//EN"
#: What subscribing programs are asked to wait between refreshes (most choose their own).
REFRESH = timedelta(hours=1)
#: Rendered events kept (a few hundred bytes each).
EVENT_CACHE = 16_384
_END = b"END:VCALENDAR\r\n"


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


@lru_cache(maxsize=EVENT_CACHE)
def _event_ics(team_id: str, entry: FeedEntry) -> bytes:
    """One booking's VEVENT. Values are given as their iCalendar types (``Event.add`` would
    infer each one's type: a third of the time here). DTSTAMP is when the booking last changed,
    as RFC 5545 defines it for a published calendar, so it doubles as LAST-MODIFIED."""
    data = event_data(team_id, entry)
    event = Event()
    event["UID"] = vText(data.uid)
    event["DTSTAMP"] = vDatetime(data.stamp)
    event["DTSTART"] = vDatetime(data.start)
    event["DTEND"] = vDatetime(data.end)
    event["SUMMARY"] = vText(data.summary)
    event["DESCRIPTION"] = vText(data.description)
    event["SEQUENCE"] = vInt(data.sequence)
    event["STATUS"] = vText("CANCELLED" if data.cancelled else "CONFIRMED")
    event["TRANSP"] = vText("TRANSPARENT")
    return event.to_ical()
