"""Private calendar feeds in the service and as iCalendar: who sees what, for how long, how a
change shows (same UID, higher SEQUENCE), and that a link is a credential only its holder has.

Runs on SQLite and PostgreSQL; every feed is parsed back with the ``icalendar`` library.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from bot.booking import Actor, BookingChange, BookingService
from bot.core.clock import FrozenClock
from bot.core.errors import NotFound
from bot.core.feeds import new_token
from bot.core.vocabulary import BookingStatus
from bot.render import ics
from bot.render.ics import feed_ics
from storage.models import Booking, CalendarLink
from tests.conftest import ADMIN, T0
from tests.test_service_scenarios import ALICE, BOB, GB, add_gpu, book

TEAM = ALICE.team_id


async def feed_of(service: BookingService, token: str) -> Calendar:
    feed = await service.calendar_feed(token)
    assert feed is not None
    return Calendar.from_ical(feed_ics(feed))


def events(calendar: Calendar) -> dict[str, dict[str, object]]:
    """Every VEVENT by UID: its decoded values."""
    found = {}
    for event in calendar.walk("VEVENT"):
        found[str(event["UID"])] = {
            "summary": str(event["SUMMARY"]),
            "start": event.decoded("DTSTART"),
            "end": event.decoded("DTEND"),
            "stamp": event.decoded("DTSTAMP"),
            "sequence": int(event["SEQUENCE"]),
            "status": str(event["STATUS"]),
            "description": str(event["DESCRIPTION"]),
            "transp": str(event["TRANSP"]),
        }
    return found


def uid(booking_id: int) -> str:
    return f"booking-{booking_id}-{TEAM}@gpubook"


async def test_a_link_is_random_and_only_its_hash_is_stored(service: BookingService) -> None:
    first = await service.issue_calendar_link(ALICE)
    second = await service.issue_calendar_link(BOB)
    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", first)  # ≥ 256 bits, URL-safe
    async with service.db.read() as session:
        rows = list(await session.scalars(select(CalendarLink).order_by(CalendarLink.id)))
    assert [r.token_sha256 for r in rows] == [
        hashlib.sha256(t.encode()).hexdigest() for t in (first, second)
    ]
    stored = " ".join(str(getattr(r, c.key)) for r in rows for c in CalendarLink.__table__.c)
    assert first not in stored and second not in stored


async def test_my_feed_has_my_bookings_from_30_days_back_and_everything_ahead(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    gone = await book(service, ALICE, 8 * GB, T0 + timedelta(days=10), T0 + timedelta(days=11))
    recent = await book(service, ALICE, 8 * GB, T0 + timedelta(days=12), T0 + timedelta(days=13))
    called_off = await book(
        service, ALICE, 4 * GB, T0 + timedelta(days=20), T0 + timedelta(days=21)
    )
    await service.cancel(ALICE, called_off.id)
    ahead = await book(service, ALICE, 20 * GB, T0 + timedelta(days=50), T0 + timedelta(days=51))
    await book(service, BOB, 2 * GB, T0 + timedelta(days=50), T0 + timedelta(days=51))
    token = await service.issue_calendar_link(ALICE)

    clock.advance(timedelta(days=41, hours=1))  # `gone` ended 30 days and 1 hour ago
    calendar = await feed_of(service, token)

    assert str(calendar["X-WR-CALNAME"]) == str(calendar["NAME"]) == "gpubook: my bookings"
    assert str(calendar["VERSION"]) == "2.0" and "gpubook" in str(calendar["PRODID"])
    refresh = calendar["REFRESH-INTERVAL"]
    assert (refresh.params["VALUE"], refresh.to_ical()) == ("DURATION", b"PT1H")
    found = events(calendar)
    assert set(found) == {uid(recent.id), uid(called_off.id), uid(ahead.id)}
    assert gone.id not in (recent.id, called_off.id, ahead.id)
    assert found[uid(ahead.id)] == {
        "summary": "rtx-0 · 20 GB · train",
        "start": ahead.start,
        "end": ahead.end,
        "stamp": T0,
        "sequence": 0,
        "status": "CONFIRMED",
        "description": f"Booking #{ahead.id} on rtx-0: 20 GB of 24 GB, booked by @UALICE.",
        "transp": "TRANSPARENT",
    }
    assert found[uid(ahead.id)]["start"].utcoffset() == timedelta(0)
    assert found[uid(called_off.id)]["status"] == "CANCELLED"


async def test_a_gpu_feed_has_everyones_bookings_on_that_gpu_only(service: BookingService) -> None:
    await add_gpu(service)
    await add_gpu(service, "rtx-1")
    mine = await book(service, ALICE, 8 * GB, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    theirs = await book(service, BOB, 8 * GB, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    await book(service, BOB, 8 * GB, T0 + timedelta(hours=1), T0 + timedelta(hours=2), gpu="rtx-1")
    token = await service.issue_calendar_link(ALICE, "rtx-0")
    calendar = await feed_of(service, token)
    assert str(calendar["X-WR-CALNAME"]) == "gpubook: rtx-0"
    found = events(calendar)
    assert set(found) == {uid(mine.id), uid(theirs.id)}
    assert found[uid(theirs.id)]["description"].endswith("booked by @UBOB.")


async def test_every_change_raises_the_sequence_under_the_same_uid(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    booking = await book(service, ALICE, 8 * GB, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    token = await service.issue_calendar_link(ALICE)
    admin = Actor(ADMIN)
    seen = []

    async def look() -> dict[str, object]:
        [(key, event)] = events(await feed_of(service, token)).items()
        assert key == uid(booking.id)
        seen.append(event["sequence"])
        return event

    await look()
    clock.advance(timedelta(minutes=5))
    await service.extend(ALICE, booking.id, timedelta(hours=1))
    assert (await look())["end"] == T0 + timedelta(hours=3)
    await service.update(ALICE, booking.id, BookingChange(task="eval"))
    assert (await look())["summary"] == "rtx-0 · 8 GB · eval"
    await service.edit_gpu(admin, "rtx-0", new_name="rtx-9")
    assert (await look())["summary"] == "rtx-9 · 8 GB · eval"
    await service.edit_gpu(admin, "rtx-9", description="no change to any booking")
    await look()
    clock.advance(timedelta(minutes=5))
    await service.cancel(ALICE, booking.id)
    cancelled = await look()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["stamp"] == T0 + timedelta(minutes=10)
    assert seen == [0, 1, 2, 3, 3, 4]


async def test_only_changes_to_what_a_booking_is_count_as_revisions(
    service: BookingService,
) -> None:
    await add_gpu(service)
    booking = await book(service, ALICE, 8 * GB, T0 + timedelta(hours=1), T0 + timedelta(hours=2))

    async def revise(**values: object) -> int:
        async with service.db.write() as session:
            row = await session.get_one(Booking, booking.id)
            for name, value in values.items():
                setattr(row, name, value)
        async with service.db.read() as session:
            return (await session.get_one(Booking, booking.id)).revision

    assert await revise(announce_ts="1.2", reminded_end_at=T0) == 0
    assert await revise(status=BookingStatus.ACTIVE) == 1
    assert await revise(memory_mib=4 * GB, task="other") == 2


async def test_asking_again_replaces_that_calendars_link_and_revoke_ends_them_all(
    service: BookingService,
) -> None:
    await add_gpu(service)
    own = await service.issue_calendar_link(ALICE)
    gpu = await service.issue_calendar_link(ALICE, "rtx-0")
    bobs = await service.issue_calendar_link(BOB)
    own_again = await service.issue_calendar_link(ALICE)
    assert await service.calendar_feed(own) is None
    for live in (gpu, bobs, own_again):
        assert await service.calendar_feed(live) is not None

    assert await service.revoke_calendar_links(ALICE) == 2
    assert await service.calendar_feed(gpu) is None
    assert await service.calendar_feed(own_again) is None
    assert await service.calendar_feed(bobs) is not None
    assert await service.revoke_calendar_links(ALICE) == 0


@pytest.mark.parametrize("token", [new_token(), "short", "../../etc/passwd", "x" * 500, ""])
async def test_guessed_or_malformed_tokens_show_nothing(
    service: BookingService, token: str
) -> None:
    await service.issue_calendar_link(ALICE)
    assert await service.calendar_feed(token) is None


async def test_a_link_to_an_unknown_gpu_is_refused_and_nothing_is_stored(
    service: BookingService,
) -> None:
    with pytest.raises(NotFound):
        await service.issue_calendar_link(ALICE, "nope")
    async with service.db.read() as session:
        assert list(await session.scalars(select(CalendarLink))) == []


async def test_a_feed_renders_the_same_bytes_for_the_same_bookings(
    service: BookingService,
) -> None:
    await add_gpu(service)
    for hour in range(1, 4):
        start = T0 + timedelta(hours=hour)
        await book(service, ALICE, GB, start, start + timedelta(minutes=30), task=f"t{hour}")
    feed = await service.calendar_feed(await service.issue_calendar_link(ALICE))
    assert feed is not None
    first = feed_ics(feed)
    ics._event_ics.cache_clear()
    assert feed_ics(feed) == first
    assert first.count(b"BEGIN:VEVENT") == 3 and first.endswith(b"END:VCALENDAR\r\n")
