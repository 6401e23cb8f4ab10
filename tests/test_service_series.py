"""Recurring bookings through the service, on SQLite and PostgreSQL: all or nothing under one GPU
lock, the refusal naming each occurrence that does not fit, "book the ones that fit", the advance
limit, DST, cancelling one occurrence or the rest of the series, and two series racing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.booking import Actor, BookingService
from bot.core.clock import FrozenClock
from bot.core.errors import SeriesRefused
from bot.core.limits import LimitName, parse_value
from bot.core.recurrence import EVERY_DAY, WEEKDAYS, Recurrence
from bot.core.vocabulary import BookingStatus
from bot.lifecycle.sweep import Lifecycle
from tests.conftest import said
from tests.test_service_limits import set_limit
from tests.test_service_scenarios import CARD, GB, add_gpu, all_bookings, book, holding_peak

ALICE, BOB = Actor("UALICE"), Actor("UBOB")
BERLIN = Actor("UBERLIN")


def weekdays_9_to_17(first: date, last: date, zone: str = "UTC") -> Recurrence:
    return Recurrence(WEEKDAYS, time(9), zone, first, end=time(17), last_day=last)


async def series(
    service: BookingService, actor: Actor, rule: Recurrence, memory: str = "8GB", **kwargs
):
    return await service.create_series(
        actor, gpu=CARD, memory=memory, rule=rule, task="nightly-ci", **kwargs
    )


async def test_a_series_books_every_occurrence_in_one_go(service: BookingService) -> None:
    await add_gpu(service)
    result = await series(service, ALICE, weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 16)))
    assert [b.start.date() for b in result.booked] == [
        date(2026, 1, d) for d in (5, 6, 7, 8, 9, 12, 13, 14, 15, 16)
    ]
    assert {b.series_id for b in result.booked} == {result.series_id}
    assert all(b.end - b.start == timedelta(hours=8) for b in result.booked)
    assert result.skipped == []


async def test_one_full_day_refuses_the_whole_series_naming_that_day(
    service: BookingService,
) -> None:
    await add_gpu(service)
    await book(
        service,
        BOB,
        "20GB",
        datetime(2026, 1, 7, 10, tzinfo=UTC),
        datetime(2026, 1, 7, 12, tzinfo=UTC),
    )
    rule = weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 9))
    with pytest.raises(SeriesRefused) as refusal:
        await series(service, ALICE, rule)
    text = said(refusal.value)
    assert text.startswith("1 of the 5 occurrences don't fit, so nothing was booked:")
    assert "20 GB of 24 GB on `rtx-0` already held at the peak, 4 GB free, 8 GB asked" in text
    assert "2026-01-07" in text or "Wed 7 Jan" in text
    assert "Tue 6 Jan" not in text
    assert refusal.value.offer is not None and refusal.value.offer.fits == 4
    assert len(await all_bookings(service)) == 1  # nothing of the series was written

    # "Book the 4 that fit": the same request, partial.
    offer = refusal.value.offer
    result = await service.create_series(
        ALICE,
        gpu=offer.gpu_name,
        memory=offer.memory_mib,
        rule=Recurrence.from_dict(offer.rule),
        task=offer.task,
        partial=True,
    )
    assert [b.start.day for b in result.booked] == [5, 6, 8, 9]
    assert [s.day for s, _ in result.skipped] == [7]
    assert await holding_peak(service) <= 24 * GB


async def test_a_series_that_never_fits_offers_nothing(service: BookingService) -> None:
    await add_gpu(service)
    await book(
        service,
        BOB,
        "20GB",
        datetime(2026, 1, 5, 9, tzinfo=UTC),
        datetime(2026, 1, 7, 9, tzinfo=UTC),
    )
    rule = Recurrence(
        EVERY_DAY, time(10), "UTC", date(2026, 1, 5), length=timedelta(hours=1), count=2
    )
    with pytest.raises(SeriesRefused) as refusal:
        await series(service, ALICE, rule, partial=True)
    assert said(refusal.value).startswith("None of the 2 occurrences fits")
    assert refusal.value.offer is None


async def test_occurrences_past_the_advance_limit_are_named_and_left_to_the_offer(
    service: BookingService,
) -> None:
    """The default advance limit is 60 days from T0 (Mon 5 Jan 2026 08:00): the weekly Monday
    occurrences from 9 Mar on are too far ahead."""
    await add_gpu(service)
    rule = Recurrence(
        frozenset({0}), time(9), "UTC", date(2026, 1, 5), length=timedelta(hours=1), count=12
    )
    with pytest.raises(SeriesRefused) as refusal:
        await series(service, ALICE, rule)
    text = said(refusal.value)
    assert text.startswith("3 of the 12 occurrences don't fit")
    assert text.count("Bookings can start at most 60d ahead") == 3
    assert refusal.value.offer is not None and refusal.value.offer.fits == 9


async def test_a_series_keeps_to_its_owners_own_advance_limit(service: BookingService) -> None:
    """A group's shorter max-advance (2 days from Mon 08:00) refuses Wednesday to Friday for
    its member, as her single bookings would be; Bob, in no group, books all five."""
    await add_gpu(service, size="80GB")
    await service.set_limit(
        Actor("UADMIN"), "short", LimitName.MAX_ADVANCE, parse_value(LimitName.MAX_ADVANCE, "2d")
    )
    await service.add_to_group(Actor("UADMIN"), "short", [ALICE.user_id])
    rule = weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 9))
    with pytest.raises(SeriesRefused) as refusal:
        await series(service, ALICE, rule)
    text = said(refusal.value)
    assert text.startswith("3 of the 5 occurrences don't fit")
    assert text.count("Bookings can start at most 2d ahead") == 3
    assert len((await series(service, BOB, rule)).booked) == 5


async def test_dst_keeps_the_wall_clock(service: BookingService, clock: FrozenClock) -> None:
    """09:00 Berlin is 08:00 UTC before 28 Mar 2027 and 07:00 UTC after."""
    clock.set(datetime(2027, 3, 20, tzinfo=UTC))
    await add_gpu(service)
    rule = weekdays_9_to_17(date(2027, 3, 25), date(2027, 3, 30), "Europe/Berlin")
    result = await series(service, BERLIN, rule)
    assert [(b.start.day, b.start.hour, b.end.hour) for b in result.booked] == [
        (25, 8, 16),
        (26, 8, 16),
        (29, 7, 15),
        (30, 7, 15),
    ]


async def test_cancel_one_occurrence_or_the_rest_of_the_series(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    result = await series(service, ALICE, weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 9)))
    ids = [b.id for b in result.booked]
    clock.set(datetime(2026, 1, 6, 10, tzinfo=UTC))  # Tuesday's occurrence is running
    await Lifecycle(service.db, service.config, service.clock).advance()
    await service.cancel(ALICE, ids[3])  # Thursday alone
    ended = await service.cancel_series(ALICE, ids[1])  # Tuesday on: Wed and Fri remain
    assert [b.id for b in ended] == [ids[1], ids[2], ids[4]]
    states = {b.id: b.status for b in await all_bookings(service)}
    assert [states[i] for i in ids] == [
        BookingStatus.COMPLETED,  # Monday: over before the cancel
        BookingStatus.COMPLETED,  # released
        BookingStatus.CANCELLED,
        BookingStatus.CANCELLED,
        BookingStatus.CANCELLED,
    ]


async def test_only_the_owner_or_an_admin_cancels_a_series(service: BookingService) -> None:
    await add_gpu(service)
    result = await series(service, ALICE, weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 9)))
    with pytest.raises(Exception, match="belongs to"):
        await service.cancel_series(BOB, result.booked[0].id)
    single = await book(
        service,
        ALICE,
        "1GB",
        datetime(2026, 1, 20, 9, tzinfo=UTC),
        datetime(2026, 1, 20, 10, tzinfo=UTC),
    )
    with pytest.raises(Exception, match="not part of a series"):
        await service.cancel_series(ALICE, single.id)


async def test_two_series_racing_for_one_card_never_over_book_it(service: BookingService) -> None:
    """16 GB each on a 24 GB card, the same days: one series wins whole, the other is refused
    whole, whatever the interleaving (both take the GPU lock for their whole transaction)."""
    await add_gpu(service)
    rule = weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 16))
    outcomes = await asyncio.gather(
        *(series(service, Actor(f"U{i}"), rule, "16GB") for i in range(4)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, SeriesRefused)]
    assert (len(won), len(lost)) == (1, 3), outcomes
    assert len(await all_bookings(service)) == 10
    assert await holding_peak(service) == 16 * GB


async def test_editing_the_rest_of_a_series_is_all_or_nothing(
    service: BookingService, clock: FrozenClock
) -> None:
    await add_gpu(service)
    result = await series(service, ALICE, weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 9)))
    ids = [b.id for b in result.booked]
    await book(
        service,
        BOB,
        "10GB",
        datetime(2026, 1, 8, 16, tzinfo=UTC),
        datetime(2026, 1, 8, 20, tzinfo=UTC),
    )
    clock.set(datetime(2026, 1, 6, 10, tzinfo=UTC))
    await Lifecycle(service.db, service.config, service.clock).advance()  # Tuesday runs
    with pytest.raises(SeriesRefused) as refusal:
        await service.update_series(ALICE, ids[1], memory="16GB")
    text = said(refusal.value, clock())
    assert text.startswith("1 of the 3 occurrences can't take that change, so none was changed:")
    assert "10 GB of 24 GB on `rtx-0` already held at the peak, 14 GB free, 16 GB asked" in text

    edited = await service.update_series(
        ALICE, ids[1], memory="12GB", length=timedelta(hours=6), task="nightly"
    )
    assert [b.id for b in edited.booked] == ids[2:]  # not the running Tuesday
    now = {b.id: b for b in await all_bookings(service)}
    assert [(now[i].memory_mib, now[i].end.hour, now[i].task) for i in ids[1:]] == [
        (8 * GB, 17, "nightly-ci"),
        (12 * GB, 15, "nightly"),
        (12 * GB, 15, "nightly"),
        (12 * GB, 15, "nightly"),
    ]
    assert await holding_peak(service) <= 24 * GB


async def test_each_occurrence_passes_the_owners_limits_counting_the_series_itself(
    service: BookingService,
) -> None:
    """Four 8-hour days of 8 GB are 256 GB·h; with 200 GB·h a week the fourth does not fit, and
    the refusal names that occurrence and the limit. With max-held 4 GB none does."""
    await add_gpu(service)
    await set_limit(service, "everyone", LimitName.MAX_GBH, "200")
    rule = weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 8))
    with pytest.raises(SeriesRefused) as caught:
        await series(service, ALICE, rule)
    assert caught.value.render().splitlines()[1:] == [
        "• Thu 8 Jan 09:00–17:00 UTC: That would bring @UALICE to 256 GB·h over the last 7 days"
        " and ahead (192 GB·h used or booked, plus 64 GB·h for this booking); the max-gbh limit"
        " is 200 GB·h."
    ]
    assert await all_bookings(service) == []
    result = await series(service, ALICE, rule, partial=True)
    assert [b.start.date() for b in result.booked] == [date(2026, 1, d) for d in (5, 6, 7)]
    await set_limit(service, "everyone", LimitName.MAX_HELD, "4GB")
    with pytest.raises(SeriesRefused) as none_fit:
        await series(service, BOB, weekdays_9_to_17(date(2026, 1, 12), date(2026, 1, 13)))
    assert none_fit.value.render().count("the max-held limit is 4 GB") == 2


async def test_editing_the_rest_of_a_series_keeps_to_the_owners_limits(
    service: BookingService,
) -> None:
    """An edit that raises memory or length is checked against max-held and max-gbh per
    occurrence, counting the edited occurrences before it and not the old versions of the rest:
    20 GB under a 10 GB max-held is refused on every day, 9 GB passes (the 8 GB it replaces is
    not counted), and 10-hour days break 300 GB·h on the fourth day only. A refusal changes
    nothing."""
    await add_gpu(service)
    await set_limit(service, "everyone", LimitName.MAX_HELD, "10GB")
    result = await series(service, ALICE, weekdays_9_to_17(date(2026, 1, 5), date(2026, 1, 8)))
    first = result.booked[0].id
    with pytest.raises(SeriesRefused) as held:
        await service.update_series(ALICE, first, memory="20GB")
    assert held.value.render().count("the max-held limit is 10 GB") == 4
    assert {b.memory_mib for b in await all_bookings(service)} == {8 * GB}
    await service.update_series(ALICE, first, memory="9GB")
    assert {b.memory_mib for b in await all_bookings(service)} == {9 * GB}
    await set_limit(service, "everyone", LimitName.MAX_GBH, "300")
    with pytest.raises(SeriesRefused) as gbh:
        await service.update_series(ALICE, first, length=timedelta(hours=10))
    lines = gbh.value.render().splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("• Thu 8 Jan 09:00–19:00 UTC:")
    assert "the max-gbh limit is 300 GB·h" in lines[0]
    assert {b.end.hour for b in await all_bookings(service)} == {17}
