"""What a refusal or a `free` answer offers instead: only what would work, and it books as offered.

Every window offered (a `free` answer, a refusal's earliest and sooner windows) passes the same
rules as a booking, so each test books what it was offered. A request bigger than every GPU is
told so, naming the largest card. An edit is offered only what it could change to; an extension
that does not fit is offered the longest one that does, and that extension works.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.booking import Actor, BookingChange, BookingService
from bot.core.errors import CapacityError, PolicyViolation, SuggestedSlot
from bot.core.snapshots import Slot
from tests.conftest import ADMIN, T0, at, refused, said
from tests.test_service_rules import HOUR, active_booking, with_policy
from tests.test_service_scenarios import ALICE, BOB, CARD, GB, add_gpu, book, unchanged

DAY = timedelta(days=1)


@pytest.fixture
async def rtx(service: BookingService) -> BookingService:
    await add_gpu(service)
    return service


async def book_offer(service: BookingService, slot: Slot | SuggestedSlot) -> None:
    booked = await book(service, BOB, slot.memory_mib, slot.start, slot.end, gpu=slot.gpu_name)
    assert (booked.gpu_name, booked.start, booked.end) == (slot.gpu_name, slot.start, slot.end)


# ---------------------------------------------------------------------------- the booking rules


@pytest.mark.parametrize("length", [timedelta(days=9), timedelta(minutes=1)], ids=["long", "short"])
async def test_free_refuses_a_length_no_booking_may_have_as_book_does(
    rtx: BookingService, length: timedelta
) -> None:
    with pytest.raises(PolicyViolation) as booking:
        await book(rtx, ALICE, "10GB", T0, T0 + length)
    with pytest.raises(PolicyViolation) as free:
        await rtx.free(ALICE, "10GB", length)
    assert said(free.value) == said(booking.value)


async def test_no_window_is_offered_past_the_latest_start_a_booking_may_have(
    rtx: BookingService,
) -> None:
    service = with_policy(rtx, max_advance=2 * DAY)
    await add_gpu(service, "rtx-1")
    for gpu in (CARD, "rtx-1"):
        await book(service, ALICE, "24GB", T0, T0 + 3 * DAY, gpu=gpu)  # free again in 3 days

    free = await service.free(BOB, "8GB", 2 * HOUR)
    assert free.best is None and free.until == T0 + 2 * DAY
    with refused(CapacityError, "Nothing fits before Wed 7 Jan 08:00 UTC") as err:
        await book(service, BOB, "8GB", at(10), at(12))
    assert (err.value.suggestion, err.value.alternative) == (None, None)
    with refused(CapacityError, "Nothing fits on any GPU before Wed 7 Jan 08:00 UTC") as err:
        await book(service, BOB, "8GB", at(10), at(12), gpu=None)
    assert err.value.suggestion is None


async def test_a_window_starting_at_the_latest_start_allowed_is_offered_and_books(
    rtx: BookingService,
) -> None:
    service = with_policy(rtx, max_advance=2 * DAY)
    await book(service, ALICE, "24GB", T0, T0 + 2 * DAY)
    free = await service.free(BOB, "8GB", 2 * HOUR)
    assert free.best is not None and free.best.start == T0 + 2 * DAY
    with pytest.raises(CapacityError) as err:
        await book(service, BOB, "8GB", at(10), at(12))
    assert err.value.suggestion == SuggestedSlot(
        CARD, T0 + 2 * DAY, T0 + 2 * DAY + 2 * HOUR, 8 * GB
    )
    await book_offer(service, free.best)


async def test_every_free_window_books_as_offered(rtx: BookingService) -> None:
    await add_gpu(rtx, "rtx-1", "16GB")
    await add_gpu(rtx, "a100-1", "80GB")
    await book(rtx, ALICE, "20GB", T0, at(12))
    await book(rtx, ALICE, "16GB", T0, at(10), gpu="rtx-1")
    free = await rtx.free(BOB, "8GB", 2 * HOUR)
    slots = [slot for _, slot in free.per_gpu]
    assert all(slots) and free.best in slots
    for slot in slots:
        assert slot is not None
        await book_offer(rtx, slot)


# ---------------------------------------------------------------------------- no GPU is big enough


@pytest.fixture
async def cards(rtx: BookingService) -> BookingService:
    """rtx-0 (24 GB), rtx-1 (32 GB) and a retired 80 GB card, which counts for nothing."""
    await add_gpu(rtx, "rtx-1", "32GB")
    await add_gpu(rtx, "a100-0", "80GB")
    await rtx.retire_gpu(Actor(ADMIN), "a100-0")
    return rtx


async def test_a_request_no_gpu_can_hold_names_the_largest_gpu(cards: BookingService) -> None:
    largest = r"No GPU has 40 GB: the largest is `rtx-1` with 32 GB\.$"
    async with unchanged(cards):
        with refused(CapacityError, largest) as err:
            await cards.free(ALICE, "40GB", 4 * HOUR)
        with refused(CapacityError, f"^{largest}") as err:
            await book(cards, ALICE, "40GB", at(10), at(14), gpu=None)
        assert err.value.suggestion is None
        with refused(CapacityError, f"^`rtx-0` has only 24 GB; you asked for 40 GB. {largest}"):
            await book(cards, ALICE, "40GB", at(10), at(14))
        mine = r"^`rtx-1` has only 32 GB, and no GPU has more; you asked for 40 GB\.$"
        with refused(CapacityError, mine) as err:
            await book(cards, ALICE, "40GB", at(10), at(14), gpu="rtx-1")
        assert (err.value.suggestion, err.value.alternative) == (None, None)
        with refused(CapacityError, f"^`rtx-0` has only 24 GB; you asked for 40 GB. {largest}"):
            await cards.free(ALICE, "40GB", 4 * HOUR, gpu=CARD)


async def test_a_request_too_big_for_its_gpu_is_offered_a_bigger_one(
    cards: BookingService,
) -> None:
    with refused(CapacityError, "^`rtx-0` has only 24 GB; you asked for 30 GB. It fits on `rtx-1`"):
        await book(cards, ALICE, "30GB", at(10), at(14))
    await book(cards, ALICE, "32GB", at(10), at(14), gpu="rtx-1")
    with refused(CapacityError, "^`rtx-0` has only 24 GB; .* It fits on `rtx-1`: 14:00") as err:
        await book(cards, BOB, "30GB", at(10), at(14))
    assert err.value.alternative is not None
    await book_offer(cards, err.value.alternative)
    free = await cards.free(BOB, "30GB", 4 * HOUR)
    assert [(g.name, s is None) for g, s in free.per_gpu] == [(CARD, True), ("rtx-1", False)]
    with refused(CapacityError, r"^`rtx-0` has only 24 GB; you asked for 30 GB\.$"):
        await cards.free(BOB, "30GB", 4 * HOUR, gpu=CARD)


# ---------------------------------------------------------------------------- edits


async def test_an_upcoming_booking_s_edit_is_offered_windows_on_its_own_gpu_only(
    rtx: BookingService,
) -> None:
    await add_gpu(rtx, "rtx-1")  # empty: a new booking would be offered it, an edit cannot move
    mine = await book(rtx, ALICE, "8GB", at(10), at(12))
    await book(rtx, BOB, "16GB", at(10), at(12))
    with refused(CapacityError, "Earliest fit on `rtx-0`: 12:00–14:00 UTC.$") as err:
        await rtx.update(ALICE, mine.id, BookingChange(memory="12GB"))
    same = err.value.suggestion
    assert same is not None and err.value.alternative is None
    moved = await rtx.update(
        ALICE, mine.id, BookingChange(memory=same.memory_mib, start=same.start, end=same.end)
    )
    assert (moved.start, moved.end, moved.memory_mib) == (at(12), at(14), 12 * GB)


async def test_a_started_booking_s_edit_is_offered_no_other_window(rtx: BookingService) -> None:
    await add_gpu(rtx, "rtx-1")
    mine = await active_booking(rtx, memory="8GB")
    await book(rtx, BOB, "16GB", at(9), at(10))
    with refused(CapacityError, r"16 GB of 24 GB .* 8 GB free, 12 GB asked\.$") as err:
        await rtx.update(ALICE, mine.id, BookingChange(memory="12GB"))
    assert (err.value.suggestion, err.value.alternative) == (None, None)


# ---------------------------------------------------------------------------- extensions


async def test_an_extension_that_does_not_fit_is_offered_the_longest_that_does(
    rtx: BookingService,
) -> None:
    mine = await active_booking(rtx, memory="8GB")  # 08:00–10:00
    await add_gpu(rtx, "rtx-1")  # empty: no new booking is offered for an extension
    await book(rtx, BOB, "20GB", at(11), at(12))
    async with unchanged(rtx):
        with refused(
            CapacityError,
            r"^Booking #1 can't be extended by 3h; there is not enough memory on `rtx-0` for "
            r"10:00–13:00 UTC: 20 GB of 24 GB already held at the peak \(11:00–12:00\), 4 GB free, "
            r"8 GB asked\. The longest extension that fits is 1h, until 11:00 UTC\.$",
        ) as err:
            await rtx.extend(ALICE, mine.id, 3 * HOUR)
    offer = err.value.extension
    assert offer is not None and (offer.booking_id, offer.by, offer.end) == (mine.id, HOUR, at(11))
    assert (err.value.suggestion, err.value.alternative) == (None, None)
    assert (await rtx.extend(ALICE, mine.id, offer.by)).end == at(11)

    with refused(
        CapacityError, r"No extension fits: the memory is taken right from its end"
    ) as err:
        await rtx.extend(ALICE, mine.id, HOUR)
    assert err.value.extension is None


async def test_the_longest_extension_offered_passes_the_extension_limit(
    rtx: BookingService,
) -> None:
    service = with_policy(rtx, max_extension=2 * HOUR)
    mine = await active_booking(service, memory="8GB")  # 08:00–10:00
    await book(service, BOB, "20GB", at(11, 30), at(12))
    with refused(PolicyViolation, "at most 2h in total"):
        await service.extend(ALICE, mine.id, 3 * HOUR)  # the limit is checked first
    with pytest.raises(CapacityError) as err:
        await service.extend(ALICE, mine.id, 2 * HOUR)
    offer = err.value.extension
    assert offer is not None and offer.by == timedelta(minutes=90)
    assert (await service.extend(ALICE, mine.id, offer.by)).end == at(11, 30)
    with refused(PolicyViolation, "30m is left"):
        await service.extend(ALICE, mine.id, HOUR)


async def test_an_upcoming_booking_s_extension_is_offered_the_longest_that_fits(
    rtx: BookingService,
) -> None:
    mine = await book(rtx, ALICE, "8GB", at(10), at(12))
    await book(rtx, BOB, "20GB", at(13), at(14))
    with pytest.raises(CapacityError) as err:
        await rtx.extend(ALICE, mine.id, 2 * HOUR)
    offer = err.value.extension
    assert offer is not None and offer.by == HOUR
    extended = await rtx.extend(ALICE, mine.id, offer.by)
    assert extended.end == extended.original_end == at(13)
