"""The queue in the service: flexible bookings placed at the earliest fit — sooner where queued
ones can be shifted aside to another card at no later start — and moved earlier when memory
frees — by a release, a cancel, a shorter edit, a new or bigger GPU, a series cancelled or made
smaller, a raised max-held, a retired card — in the order they were made; fixed and pinned
bookings never move. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, time, timedelta

from bot.booking import Actor, BookingChange, BookingService
from bot.core.errors import CapacityError, InvalidState, NotFound
from bot.core.limits import LimitName
from bot.core.recurrence import WEEKDAYS, Recurrence
from bot.core.vocabulary import AuditAction, NoticeKind
from tests.conftest import ADMIN, T0, at, refused
from tests.test_service_scenarios import (
    ALICE,
    BOB,
    CARD,
    CAROL,
    GB,
    add_gpu,
    all_bookings,
    book,
    notifications,
)

HOUR = timedelta(hours=1)


async def flexible(service: BookingService, actor: Actor, size: str, hours: int, **options):  # type: ignore[no-untyped-def]
    return await service.create_flexible(
        actor, memory=size, duration=hours * HOUR, task="train-x", **options
    )


async def moved_notices(service: BookingService) -> list[tuple[int | None, str]]:
    return [
        (n.booking_id, n.channel)
        for n in await notifications(service)
        if n.kind == NoticeKind.MOVED
    ]


async def test_a_flexible_booking_moves_up_when_memory_is_released(service: BookingService) -> None:
    await add_gpu(service)
    fixed = await book(service, ALICE, "20GB", T0, at(12))
    waiting = await flexible(service, BOB, "10GB", 2)
    assert (waiting.start, waiting.end, waiting.flexible) == (at(12), at(14), True)
    await service.release(ALICE, fixed.id)
    [moved] = [b for b in await all_bookings(service) if b.id == waiting.id]
    assert (moved.start, moved.end, moved.gpu_name) == (T0, at(10), "rtx-0")
    assert await moved_notices(service) == [(waiting.id, "UBOB")]
    entries = await service.audit_log(Actor(ADMIN), limit=5)
    assert any(e.action == AuditAction.MOVE and e.booking_id == waiting.id for e in entries)


async def test_first_made_is_served_first_and_fixed_or_pinned_never_move(
    service: BookingService,
) -> None:
    await add_gpu(service)
    blocker = await book(service, ALICE, "24GB", at(9), at(12))
    first = await flexible(service, BOB, "16GB", 1)  # fits 8–9
    second = await flexible(service, CAROL, "16GB", 1, not_before=at(9))  # 12–13
    third = await flexible(service, CAROL, "8GB", 1, not_before=at(9))  # 12–13 beside it
    fixed = await book(service, BOB, "8GB", at(13), at(14))
    assert [b.start for b in (first, second, third)] == [T0, at(12), at(12)]
    await service.pin(CAROL, third.id)
    with refused(InvalidState, "is not flexible"):
        await service.pin(CAROL, third.id)
    await service.cancel(ALICE, blocker.id)
    now = {b.id: b for b in await all_bookings(service)}
    assert now[second.id].start == at(9)  # made before the third: served first
    assert now[third.id].start == at(12)  # pinned: stays
    assert now[fixed.id].start == at(13)  # fixed: never moves
    assert now[first.id].start == T0  # already at the earliest


async def test_a_new_gpu_and_a_shorter_edit_move_the_queue(service: BookingService) -> None:
    await add_gpu(service)
    long = await book(service, ALICE, "20GB", T0, at(16))
    waiting = await flexible(service, BOB, "10GB", 2, pattern="rtx-*")
    assert waiting.start == at(16)
    await service.update(ALICE, long.id, BookingChange(end=at(12)))
    assert [b.start for b in await all_bookings(service) if b.id == waiting.id] == [at(12)]
    await service.add_gpu(Actor(ADMIN), "a100-1", "80GB")  # not rtx-*: no move
    assert [b.start for b in await all_bookings(service) if b.id == waiting.id] == [at(12)]
    await service.add_gpu(Actor(ADMIN), "rtx-1", "24GB")
    [moved] = [b for b in await all_bookings(service) if b.id == waiting.id]
    assert (moved.gpu_name, moved.start) == ("rtx-1", T0)


async def test_deadlines_patterns_and_full_cards_are_refused(service: BookingService) -> None:
    await add_gpu(service)
    await book(service, ALICE, "20GB", T0, at(12))
    with refused(CapacityError, "fits on no GPU it may use before"):
        await flexible(service, BOB, "10GB", 2, deadline=at(13))
    with refused(NotFound, "No GPU matches `a100-\\*`"):
        await flexible(service, BOB, "10GB", 2, pattern="a100-*")
    assert len(await all_bookings(service)) == 1
    assert (await flexible(service, BOB, "10GB", 2, deadline=at(14))).start == at(12)


async def starts(service: BookingService, *bookings) -> list:  # type: ignore[no-untyped-def]
    now = {b.id: b.start for b in await all_bookings(service)}
    return [now[b.id] for b in bookings]


async def test_a_series_made_smaller_or_cancelled_moves_the_queue(service: BookingService) -> None:
    await add_gpu(service)
    rule = Recurrence(
        WEEKDAYS, time(9), "UTC", date(2026, 1, 5), end=time(17), last_day=date(2026, 1, 9)
    )
    weekdays = await service.create_series(
        ALICE, gpu=CARD, memory="20GB", rule=rule, task="nightly-ci"
    )
    first = await flexible(service, BOB, "10GB", 8)
    assert first.start == at(17)  # the series holds 20 of 24 GB from 9:00
    await service.update_series(ALICE, weekdays.booked[0].id, memory="12GB")
    second = await flexible(service, CAROL, "14GB", 8)
    assert await starts(service, first, second) == [T0, at(17)]
    await service.cancel_series(ALICE, weekdays.booked[0].id)
    assert await starts(service, first, second) == [T0, T0]


async def test_a_raised_max_held_moves_the_queue(service: BookingService) -> None:
    admin = Actor(ADMIN)
    await add_gpu(service)
    await service.set_limit(admin, "everyone", LimitName.MAX_HELD, 16 * GB)
    await book(service, BOB, "10GB", T0, at(12))
    waiting = await flexible(service, BOB, "10GB", 2)
    assert waiting.start == at(12)  # held back by Bob's own 16 GB limit, not by the card
    await service.set_limit(admin, "premium", LimitName.MAX_HELD, 32 * GB)
    assert await starts(service, waiting) == [at(12)]  # Bob is not in it yet
    await service.add_to_group(admin, "premium", [BOB.user_id])
    assert await starts(service, waiting) == [T0]


async def test_retiring_a_card_frees_its_bookings_owners_max_held(service: BookingService) -> None:
    admin = Actor(ADMIN)
    await add_gpu(service)
    await add_gpu(service, "rtx-1")
    await service.set_limit(admin, "everyone", LimitName.MAX_HELD, 16 * GB)
    await book(service, BOB, "10GB", T0, at(12), gpu="rtx-1")
    waiting = await flexible(service, BOB, "10GB", 2, pattern="rtx-0")
    assert waiting.start == at(12)
    await service.retire_gpu(admin, "rtx-1", cancel_future=True)
    assert await starts(service, waiting) == [T0]


async def test_a_flexible_booking_takes_the_smallest_card_free_as_early(
    service: BookingService,
) -> None:
    """The big card is left for what only it can hold: even where it would be left fuller (best
    fit alone would choose it). Moves choose by the same rule (:func:`bot.core.queue.earliest_placement`)."""
    await service.add_gpu(Actor(ADMIN), "a100-1", "80GB")
    await add_gpu(service)  # rtx-0, 24 GB, made second: not the first in order either
    await book(service, ALICE, "60GB", T0, at(16), gpu="a100-1")
    small = await flexible(service, BOB, "10GB", 2)
    assert (small.gpu_name, small.start) == ("rtx-0", T0)
    later = await flexible(service, CAROL, "20GB", 2)  # rtx-0 has room only from 10:00
    assert (later.gpu_name, later.start) == ("a100-1", T0)  # earliest first, then smallest


async def test_a_new_flexible_booking_shifts_a_queued_one_aside_at_its_start(
    service: BookingService,
) -> None:
    """Bob's 10 GB waits on the big card from 10:00; once the small card is free from 10:00 too,
    Carol's whole-card request need not wait behind him: he is shifted to rtx-0, still at 10:00
    (told so, audited), and she gets a100-1 at 10:00 instead of noon."""
    await service.add_gpu(Actor(ADMIN), "a100-1", "80GB")
    await add_gpu(service)
    await book(service, ALICE, "80GB", T0, at(10), gpu="a100-1")
    small = await book(service, ALICE, "24GB", T0, at(12))
    bob = await flexible(service, BOB, "10GB", 2)
    assert (bob.gpu_name, bob.start) == ("a100-1", at(10))
    await service.update(ALICE, small.id, BookingChange(end=at(10)))
    assert await starts(service, bob) == [at(10)]  # no earlier start: stays where it is
    carol = await flexible(service, CAROL, "80GB", 2)
    assert (carol.gpu_name, carol.start) == ("a100-1", at(10))
    [now_bob] = [b for b in await all_bookings(service) if b.id == bob.id]
    assert (now_bob.gpu_name, now_bob.start, now_bob.end) == ("rtx-0", at(10), at(12))
    assert await moved_notices(service) == [(bob.id, "UBOB")]
    entries = await service.audit_log(Actor(ADMIN), limit=5)
    assert any(e.action == AuditAction.MOVE and e.booking_id == bob.id for e in entries)


async def test_a_queued_booking_is_never_shifted_later(service: BookingService) -> None:
    """Bob's booking could make room only by starting later on rtx-0: it stays, and Carol waits."""
    await service.add_gpu(Actor(ADMIN), "a100-1", "80GB")
    await add_gpu(service)
    await book(service, ALICE, "80GB", T0, at(10), gpu="a100-1")
    await book(service, ALICE, "24GB", T0, at(11))
    bob = await flexible(service, BOB, "10GB", 2)
    carol = await flexible(service, CAROL, "80GB", 2)
    assert (carol.gpu_name, carol.start) == ("a100-1", at(12))
    assert await starts(service, bob) == [at(10)]
    assert await moved_notices(service) == []
