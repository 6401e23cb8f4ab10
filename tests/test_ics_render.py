"""The feed renderer joins content lines itself for speed: its bytes must stay ``icalendar``'s.

Each event here is also built the library's way (an ``Event`` whose properties are set in a
shuffled order, serialized by ``Event.to_ical``) and the two must be byte-identical: same
canonical property order, escaping, and folding, including lines right at the fold limit,
multi-byte characters and escapes across it, and a property with parameters.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event, vDatetime

from bot.core.feeds import EventData
from bot.render.ics import FOLD_AT, component_ics, event_properties

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def data(summary: str, description: str = "Booking #1.", *, cancelled: bool = False) -> EventData:
    return EventData(
        uid="booking-1-T1@gpubook",
        summary=summary,
        start=START,
        end=START + timedelta(hours=2),
        stamp=START - timedelta(days=1),
        sequence=7,
        cancelled=cancelled,
        description=description,
    )


def library_way(properties: list[tuple[str, object]]) -> bytes:
    event = Event()
    shuffled = list(properties)
    random.Random(5).shuffle(shuffled)
    for name, value in shuffled:
        event[name] = value
    return event.to_ical()


# "SUMMARY:" is 8 octets: these summaries put the line just under, at, and over the limit.
EDGES = ["x" * (FOLD_AT - 9), "x" * (FOLD_AT - 8), "x" * (FOLD_AT - 7), "x" * 300]
CASES = [
    data("rtx-0 · 20 GB · fine-tune"),
    data("rtx-0 · 20 GB · cancelled", cancelled=True),
    *(data(summary) for summary in EDGES),
    data("é" * 100),
    data("rtx-0 · 20 GB · 日本語のタスク名" * 4),
    data("a;b,c\\d", "line one\nline two, with; every\\escape " * 5),
    data("x" * (FOLD_AT - 10) + ",,,,", "y" * (FOLD_AT - 14) + "\n\n"),
]


@pytest.mark.parametrize("event", CASES)
def test_an_event_is_the_librarys_bytes(event: EventData) -> None:
    properties = event_properties(event)
    assert component_ics("VEVENT", properties) == library_way(properties)


def test_a_property_with_parameters_goes_through_the_library() -> None:
    zoned = START.astimezone(ZoneInfo("Europe/Paris"))
    properties = [
        (name, vDatetime(zoned) if name == "DTSTART" else value)
        for name, value in event_properties(data("zoned"))
    ]
    rendered = component_ics("VEVENT", properties)
    assert b"DTSTART;TZID=Europe/Paris:20260302T100000" in rendered
    assert rendered == library_way(properties)


def test_long_lines_are_folded_and_parse_back() -> None:
    event = data("rtx-0 · 20 GB · " + "é" * 80, "a, b; c\n" * 30)
    rendered = component_ics("VEVENT", event_properties(event))
    assert all(len(line) <= FOLD_AT for line in rendered.split(b"\r\n"))
    calendar = b"BEGIN:VCALENDAR\r\n" + rendered + b"END:VCALENDAR\r\n"
    [parsed] = Calendar.from_ical(calendar).walk("VEVENT")
    assert str(parsed["SUMMARY"]) == event.summary
    assert str(parsed["DESCRIPTION"]) == event.description
