"""The booking service's rules: who may do what, policies, state, GPU admin, queries, audit, outbox.

Runs on SQLite and PostgreSQL. Time only moves through the FrozenClock. Statuses move from
upcoming to active in a lifecycle sweep that these tests do not run, so an ACTIVE booking is made
by booking with ``start=now``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.booking import Actor, BookingChange, BookingService
from bot.booking.journal import Journal
from bot.core.clock import FrozenClock
from bot.core.errors import (
    CapacityError,
    InputError,
    InvalidState,
    NotFound,
    PermissionDenied,
    PolicyViolation,
)
from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import AuditAction, BookingStatus, NoticeKind
from storage.models import DEFAULT_CHANNEL, AuditEntry, Booking
from tests.conftest import ADMIN, T0, at, refused, said
from tests.test_service_scenarios import (
    ALICE,
    BOB,
    CARD,
    GB,
    add_gpu,
    all_bookings,
    audit_actions,
    book,
    holding_peak,
    notifications,
    unchanged,
)

WORKSPACE_ADMIN = Actor("UWSADMIN", is_workspace_admin=True)
CONFIG_ADMIN = Actor(ADMIN)
HOUR = timedelta(hours=1)


@pytest.fixture
async def rtx(service: BookingService) -> BookingService:
    await add_gpu(service)
    return service


def with_policy(service: BookingService, **changes: object) -> BookingService:
    """The same database and clock under a different policy."""
    policy = dataclasses.replace(service.policy, **changes)
    return BookingService(
        service.db, dataclasses.replace(service.config, policy=policy), service.clock
    )


async def active_booking(
    service: BookingService, actor: Actor = ALICE, memory: str = "4GB"
) -> BookingInfo:
    booking = await book(service, actor, memory, T0, at(10))
    assert booking.status == BookingStatus.ACTIVE
    return booking


# ---------------------------------------------------------------------------- authorisation

Operation = Callable[[BookingService, Actor, int], Awaitable[BookingInfo]]
OPERATIONS: dict[str, tuple[bool, Operation]] = {
    # name: (acts on an active booking?, operation)
    "cancel": (False, lambda s, a, i: s.cancel(a, i)),
    "extend": (False, lambda s, a, i: s.extend(a, i, HOUR)),
    "update": (False, lambda s, a, i: s.update(a, i, BookingChange(memory="2GB", task="x"))),
    "release": (True, lambda s, a, i: s.release(a, i)),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize(
    ("actor", "allowed"),
    [(ALICE, True), (BOB, False), (CONFIG_ADMIN, True), (WORKSPACE_ADMIN, True)],
    ids=["owner", "other-user", "config-admin", "workspace-admin"],
)
async def test_only_the_owner_or_an_admin_changes_a_booking(
    rtx: BookingService, operation: str, actor: Actor, allowed: bool
) -> None:
    on_active, run = OPERATIONS[operation]
    booking = await (active_booking(rtx) if on_active else book(rtx, ALICE, "4GB", at(10), at(12)))
    if not allowed:
        async with unchanged(rtx):
            with refused(PermissionDenied, f"#{booking.id} belongs to <@UALICE>"):
                await run(rtx, actor, booking.id)
        return
    after = await run(rtx, actor, booking.id)
    assert after != booking
    changed = [n for n in await notifications(rtx) if n.kind == "changed"]
    assert len(changed) == (0 if actor == ALICE else 1)


GPU_ADMIN_OPERATIONS: dict[str, Callable[[BookingService, Actor], Awaitable[object]]] = {
    "add": lambda s, a: s.add_gpu(a, "rtx-9", "8GB"),
    "edit": lambda s, a: s.edit_gpu(a, CARD, size="48GB"),
    "retire": lambda s, a: s.retire_gpu(a, CARD),
    "channel": lambda s, a: s.set_channel(a, "CNEW"),
    "audit": lambda s, a: s.audit_log(a),
    "book-for-someone": lambda s, a: s.create(
        a, gpu=CARD, memory="1GB", start=at(10), end=at(11), task="t", user_id="UBOB"
    ),
}


@pytest.mark.parametrize("operation", list(GPU_ADMIN_OPERATIONS))
async def test_gpu_administration_is_for_admins_only(rtx: BookingService, operation: str) -> None:
    run = GPU_ADMIN_OPERATIONS[operation]
    async with unchanged(rtx):
        with refused(PermissionDenied, "Only gpubook admins can"):
            await run(rtx, ALICE)
    await run(rtx, WORKSPACE_ADMIN)


async def test_admin_booking_on_someones_behalf_belongs_to_them_and_tells_them(
    rtx: BookingService,
) -> None:
    booking = await rtx.create(
        CONFIG_ADMIN, gpu=CARD, memory="1GB", start=at(10), end=at(11), task="t", user_id="UBOB"
    )
    assert (booking.user_id, booking.created_by) == ("UBOB", ADMIN)
    dm = [n for n in await notifications(rtx) if n.kind == "changed"]
    assert [(n.channel, n.details) for n in dm] == [("UBOB", {"action": "created", "by": ADMIN})]
    assert (await rtx.cancel(BOB, booking.id)).status == BookingStatus.CANCELLED


# ---------------------------------------------------------------------------- policies


async def test_minimum_duration(rtx: BookingService) -> None:
    async with unchanged(rtx):
        with refused(PolicyViolation, "at least 5m; this one is 4m"):
            await book(rtx, ALICE, "1GB", at(10), at(10, 4))
    assert (await book(rtx, ALICE, "1GB", at(10), at(10, 5))).duration == timedelta(minutes=5)


async def test_maximum_duration(rtx: BookingService) -> None:
    week = at(10, day=12)
    async with unchanged(rtx):
        with refused(PolicyViolation, "at most 7d; this one is 7d 1m"):
            await book(rtx, ALICE, "1GB", at(10), week + timedelta(minutes=1))
    assert (await book(rtx, ALICE, "1GB", at(10), week)).duration == timedelta(days=7)


async def test_maximum_advance(rtx: BookingService) -> None:
    limit = T0 + timedelta(days=60)
    async with unchanged(rtx):
        with refused(PolicyViolation, "at most 60d ahead"):
            await book(rtx, ALICE, "1GB", limit + timedelta(minutes=1), limit + HOUR)
    assert (await book(rtx, ALICE, "1GB", limit, limit + HOUR)).start == limit


async def test_a_start_less_than_a_minute_ago_counts_as_now(rtx: BookingService) -> None:
    booking = await book(rtx, ALICE, "1GB", T0 - timedelta(seconds=59), at(9))
    assert (booking.start, booking.status) == (T0, BookingStatus.ACTIVE)


async def test_a_start_two_minutes_ago_is_refused(rtx: BookingService) -> None:
    async with unchanged(rtx):
        with refused(InputError, r"That start is in the past \(07:58 UTC\)"):
            await book(rtx, ALICE, "1GB", T0 - timedelta(minutes=2), at(9))


async def test_extension_limit_is_on_the_total(rtx: BookingService) -> None:
    booking = await active_booking(rtx)
    await rtx.extend(ALICE, booking.id, timedelta(hours=20))
    async with unchanged(rtx):
        with refused(PolicyViolation, "at most 1d in total .*; 4h is left"):
            await rtx.extend(ALICE, booking.id, timedelta(hours=5))
    extended = await rtx.extend(ALICE, booking.id, timedelta(hours=4))
    assert (extended.end, extended.original_end) == (at(10, day=6), at(10))
    with refused(PolicyViolation, "nothing is left"):
        await rtx.extend(ALICE, booking.id, timedelta(minutes=1))
    with refused(PolicyViolation, "at most 1d in total"):
        await rtx.update(ALICE, booking.id, BookingChange(end=at(10, day=6) + HOUR))


async def test_extension_limit_per_group_and_for_admins(rtx: BookingService) -> None:
    service = with_policy(
        rtx,
        max_extension=timedelta(hours=2),
        group_extensions={"premium": timedelta(hours=8)},
        user_groups={"UBOB": "premium"},
    )
    standard = await active_booking(service, ALICE)
    premium = await active_booking(service, BOB)
    with refused(PolicyViolation, "at most 2h in total"):
        await service.extend(ALICE, standard.id, timedelta(hours=3))
    assert (await service.extend(BOB, premium.id, timedelta(hours=8))).end == at(18)
    with refused(PolicyViolation, "at most 8h in total"):
        await service.extend(BOB, premium.id, timedelta(minutes=1))
    # An admin may extend anyone's booking up to the maximum duration.
    assert (await service.extend(CONFIG_ADMIN, standard.id, timedelta(hours=30))).end == at(
        16, day=6
    )


async def test_extending_an_upcoming_booking_is_rescheduling_not_an_extension(
    rtx: BookingService,
) -> None:
    service = with_policy(rtx, max_extension=timedelta(hours=1))
    booking = await book(service, ALICE, "4GB", at(10), at(12))
    extended = await service.extend(ALICE, booking.id, timedelta(hours=5))
    assert (extended.end, extended.original_end) == (at(17), at(17))


async def test_extend_by_a_non_positive_duration_is_refused(rtx: BookingService) -> None:
    booking = await book(rtx, ALICE, "4GB", at(10), at(12))
    async with unchanged(rtx):
        with refused(InputError, "Extend by a positive duration"):
            await rtx.extend(ALICE, booking.id, timedelta(0))


# ---------------------------------------------------------------------------- state rules


async def test_cancelling_an_active_booking_advises_release(rtx: BookingService) -> None:
    booking = await active_booking(rtx)
    async with unchanged(rtx):
        with pytest.raises(InvalidState) as err:
            await rtx.cancel(ALICE, booking.id)
    assert f"release it instead (`/gpubook release {booking.id}`)" in said(err.value)


async def test_releasing_an_upcoming_booking_advises_cancel(rtx: BookingService) -> None:
    booking = await book(rtx, ALICE, "4GB", at(10), at(12))
    async with unchanged(rtx):
        with pytest.raises(InvalidState) as err:
            await rtx.release(ALICE, booking.id)
    assert f"cancel it instead (`/gpubook cancel {booking.id}`)" in said(err.value)


@pytest.mark.parametrize("finish", ["release", "cancel"])
async def test_a_finished_booking_cannot_change(rtx: BookingService, finish: str) -> None:
    if finish == "release":
        booking = await active_booking(rtx)
        await rtx.release(ALICE, booking.id)
        state = "ended"
    else:
        booking = await book(rtx, ALICE, "4GB", at(10), at(12))
        await rtx.cancel(ALICE, booking.id)
        state = "been cancelled"
    for verb, attempt in (
        ("edit", rtx.update(ALICE, booking.id, BookingChange(memory="1GB"))),
        ("extend", rtx.extend(ALICE, booking.id, HOUR)),
        ("release", rtx.release(ALICE, booking.id)),
        ("cancel", rtx.cancel(ALICE, booking.id)),
    ):
        async with unchanged(rtx):
            # Not "is cancelled, so it can't be cancelled": say what happened and what's left.
            with refused(InvalidState, f"has already {state}, so there is nothing left to {verb}"):
                await attempt


async def test_an_active_bookings_start_cannot_move(rtx: BookingService) -> None:
    booking = await active_booking(rtx)
    async with unchanged(rtx):
        with refused(InvalidState, "has already started, so its start can't move"):
            await rtx.update(ALICE, booking.id, BookingChange(start=at(9)))
    changed = await rtx.update(ALICE, booking.id, BookingChange(end=at(11), memory="6GB"))
    assert (changed.start, changed.end, changed.memory_mib) == (T0, at(11), 6 * GB)


# ---------------------------------------------------------------------------- update and extend


async def test_update_shrinks_grows_and_moves_as_if_the_booking_were_absent(
    rtx: BookingService,
) -> None:
    mine = await book(rtx, ALICE, "12GB", at(10), at(12))
    await book(rtx, BOB, "12GB", at(12), at(14))
    assert (await rtx.update(ALICE, mine.id, BookingChange(memory="4GB"))).memory_mib == 4 * GB
    assert (await rtx.update(ALICE, mine.id, BookingChange(memory="12GB"))).memory_mib == 12 * GB
    moved = await rtx.update(ALICE, mine.id, BookingChange(start=at(11), end=at(13)))
    assert (moved.start, moved.end, moved.original_end) == (at(11), at(13), at(13))
    async with unchanged(rtx):
        with refused(CapacityError, "12 GB of 24 GB .* 12 GB free, 13 GB asked"):
            await rtx.update(ALICE, mine.id, BookingChange(memory="13GB"))
    renamed = await rtx.update(ALICE, mine.id, BookingChange(task="  eval\trun  "))
    assert renamed.task == "eval run"
    assert await holding_peak(rtx) == 24 * GB


async def test_extend_into_free_memory_and_refusal_into_a_full_window(rtx: BookingService) -> None:
    mine = await active_booking(rtx, memory="8GB")
    await book(rtx, BOB, "20GB", at(11), at(12))
    assert (await rtx.extend(ALICE, mine.id, HOUR)).end == at(11)
    async with unchanged(rtx):
        with refused(CapacityError, "20 GB of 24 GB .* 4 GB free, 8 GB asked") as err:
            await rtx.extend(ALICE, mine.id, HOUR)
    assert err.value.suggestion is None and err.value.extension is None  # full from 11:00
    assert (await rtx.get(ALICE, mine.id)).end == at(11)


async def test_release_and_cancel_free_memory_at_once(
    rtx: BookingService, clock: FrozenClock
) -> None:
    active = await active_booking(rtx, memory="24GB")
    upcoming = await book(rtx, BOB, "24GB", at(10), at(12))
    clock.advance(timedelta(minutes=15))
    [status] = await rtx.status(ALICE)
    assert status.free_mib == 0
    await rtx.release(ALICE, active.id)
    [status] = await rtx.status(ALICE)
    assert (status.used_mib, status.free_mib) == (0, 24 * GB)
    await book(rtx, ALICE, "24GB", clock(), at(10))
    await rtx.cancel(BOB, upcoming.id)
    await book(rtx, ALICE, "24GB", at(10), at(12))


# ---------------------------------------------------------------------------- GPU administration


async def test_retire_refused_with_future_bookings_unless_cancel_future(
    rtx: BookingService,
) -> None:
    active = await active_booking(rtx)
    upcoming = await book(rtx, BOB, "4GB", at(10), at(12))
    async with unchanged(rtx):
        with refused(PolicyViolation, "still has 2 upcoming or active booking"):
            await rtx.retire_gpu(CONFIG_ADMIN, CARD)

    cancelled = await rtx.retire_gpu(CONFIG_ADMIN, CARD, cancel_future=True)
    assert sorted(b.id for b in cancelled) == [active.id, upcoming.id]
    after = {b.id: b for b in await all_bookings(rtx)}
    assert after[upcoming.id].status == BookingStatus.CANCELLED
    assert (after[active.id].status, after[active.id].end_reason) == (
        BookingStatus.COMPLETED,
        "retired",
    )
    changed = [
        (n.channel, n.details["action"], n.details["reason"])
        for n in await notifications(rtx)
        if n.kind == "changed"
    ]
    # The running booking ended now, the later one was cancelled; both owners hear why.
    assert sorted(changed) == [("UALICE", "released", "retired"), ("UBOB", "cancelled", "retired")]
    channel = sorted(
        (n.kind, n.details.get("reason"))
        for n in await notifications(rtx)
        if n.channel == DEFAULT_CHANNEL
    )
    assert ("cancelled", "retired") in channel and ("released", "retired") in channel
    assert await rtx.list_gpus(ALICE) == []
    with refused(NotFound, "GPU `rtx-0` is retired"):
        await book(rtx, ALICE, "1GB", at(13), at(14))


async def test_retire_without_bookings(rtx: BookingService) -> None:
    assert await rtx.retire_gpu(WORKSPACE_ADMIN, CARD) == []
    assert [g.retired for g in await rtx.list_gpus(ALICE, include_retired=True)] == [True]


async def test_edit_gpu_cannot_shrink_below_the_booked_peak(rtx: BookingService) -> None:
    await book(rtx, ALICE, "10GB", at(10), at(12))
    await book(rtx, BOB, "8GB", at(11), at(13))
    async with unchanged(rtx):
        with refused(PolicyViolation, "holding up to 18 GB at once; it can't shrink to 16 GB"):
            await rtx.edit_gpu(CONFIG_ADMIN, CARD, size="16GB")
    edited = await rtx.edit_gpu(CONFIG_ADMIN, CARD, size="18GB", new_name="rtx-small")
    assert (edited.name, edited.capacity_mib) == ("rtx-small", 18 * GB)
    with refused(CapacityError, "18 GB of 18 GB"):
        await book(rtx, ALICE, "1GB", at(11), at(12), gpu="rtx-small")


async def test_gpu_names_are_unique_and_well_formed(rtx: BookingService) -> None:
    async with unchanged(rtx):
        with refused(InputError, "A GPU named `rtx-0` already exists"):
            await rtx.add_gpu(CONFIG_ADMIN, "RTX-0", "8GB")
        with refused(InputError, "`bad name!` can't be a GPU name"):
            await rtx.add_gpu(CONFIG_ADMIN, "bad name!", "8GB")
        # Words the commands read as something else, from any interface (CLI included).
        for word in ("any", "week", "friday", "20gb", "14:00", "tomorrow"):
            with refused(InputError, f"`{word}` can't be a GPU name"):
                await rtx.add_gpu(CONFIG_ADMIN, word, "8GB")
        with refused(InputError, "I can't read `lots` as memory"):
            await rtx.add_gpu(CONFIG_ADMIN, "rtx-1", "lots")


# ---------------------------------------------------------------------------- placement and queries


async def test_any_gpu_picks_the_tightest_fit(rtx: BookingService) -> None:
    await add_gpu(rtx, "small-16", "16GB")
    await add_gpu(rtx, "big-48", "48GB")
    first = await book(rtx, ALICE, "12GB", at(10), at(12), gpu=None)
    second = await book(rtx, ALICE, "12GB", at(10), at(12), gpu=None)
    third = await book(rtx, ALICE, "24GB", at(10), at(12), gpu=None)
    assert [b.gpu_name for b in (first, second, third)] == ["small-16", CARD, "big-48"]


async def test_any_gpu_refuses_percentages(rtx: BookingService) -> None:
    async with unchanged(rtx):
        with refused(InputError, "A percentage needs a specific GPU"):
            await book(rtx, ALICE, "50%", at(10), at(12), gpu=None)
    assert (await book(rtx, ALICE, "50%", at(10), at(12))).memory_mib == 12 * GB
    # `free` across GPUs likewise: half of a 24 GB and of an 80 GB card are different requests.
    with refused(InputError, "A percentage needs a specific GPU"):
        await rtx.free(ALICE, "50%", timedelta(hours=1))


async def test_any_gpu_refusal_offers_the_soonest_window_which_is_bookable(
    rtx: BookingService,
) -> None:
    await add_gpu(rtx, "rtx-1", "16GB")
    await book(rtx, ALICE, "24GB", at(10), at(13))
    await book(rtx, ALICE, "16GB", at(10), at(12), gpu="rtx-1")
    async with unchanged(rtx):
        with refused(CapacityError, "No GPU has 8 GB free for 10:00–12:00 UTC") as err:
            await book(rtx, BOB, "8GB", at(10), at(12), gpu=None)
    slot = err.value.suggestion
    assert slot is not None and (slot.gpu_name, slot.start, slot.end) == ("rtx-1", at(12), at(14))
    await book(rtx, BOB, slot.memory_mib, slot.start, slot.end, gpu=slot.gpu_name)


async def test_list_filters_by_owner_status_gpu_window_and_limit(rtx: BookingService) -> None:
    await add_gpu(rtx, "rtx-1", "24GB")
    morning = await book(rtx, ALICE, "4GB", at(9), at(10))
    noon = await book(rtx, ALICE, "4GB", at(12), at(13), gpu="rtx-1")
    evening = await book(rtx, BOB, "4GB", at(18), at(19))
    cancelled = await book(rtx, ALICE, "4GB", at(20), at(21))
    await rtx.cancel(ALICE, cancelled.id)

    def ids(bookings: list[BookingInfo]) -> list[int]:
        return [b.id for b in bookings]

    assert ids(await rtx.list_bookings(ALICE)) == [morning.id, noon.id]
    assert ids(await rtx.list_bookings(ALICE, everyone=True)) == [morning.id, noon.id, evening.id]
    assert ids(await rtx.list_bookings(ALICE, statuses=[BookingStatus.CANCELLED])) == [cancelled.id]
    assert ids(await rtx.list_bookings(ALICE, everyone=True, gpu="rtx-1")) == [noon.id]
    # Half-open windows: 10:00–12:00 touches both the 09–10 and the 12–13 booking, overlaps neither.
    assert ids(await rtx.list_bookings(ALICE, window=(at(10), at(12)))) == []
    window = (at(9, 30), at(18, 30))
    assert ids(await rtx.list_bookings(ALICE, everyone=True, window=window, limit=2)) == [
        morning.id,
        noon.id,
    ]


async def test_free_per_gpu_and_best(rtx: BookingService) -> None:
    await add_gpu(rtx, "rtx-1", "16GB")
    await book(rtx, ALICE, "24GB", T0, at(12))
    await book(rtx, ALICE, "16GB", T0, at(10), gpu="rtx-1")
    free = await rtx.free(BOB, "8GB", timedelta(hours=2))
    per_gpu = {info.name: (slot.start, slot.end) if slot else None for info, slot in free.per_gpu}
    assert per_gpu == {CARD: (at(12), at(14)), "rtx-1": (at(10), at(12))}
    assert free.best is not None
    assert (free.best.gpu_name, free.best.start, free.memory_mib) == ("rtx-1", at(10), 8 * GB)
    only = await rtx.free(BOB, "50%", timedelta(hours=2), gpu=CARD)
    assert [(i.name, s.memory_mib if s else None) for i, s in only.per_gpu] == [(CARD, 12 * GB)]
    best = free.best
    await book(rtx, BOB, best.memory_mib, best.start, best.end, gpu=best.gpu_name)


async def test_free_breaks_ties_towards_the_tightest_fit(rtx: BookingService) -> None:
    """When several GPUs are free at once, the best offer keeps the bigger cards free."""
    await add_gpu(rtx, "a100-1", "80GB")  # sorts first, and would be offered on a plain tie
    await add_gpu(rtx, "rtx-1", "24GB")
    await book(rtx, ALICE, "8GB", at(9), at(12), gpu="rtx-1")
    free = await rtx.free(BOB, "8GB", timedelta(hours=2), not_before=at(10))
    assert {s.start for _, s in free.per_gpu if s} == {at(10)}
    assert free.best is not None and free.best.gpu_name == "rtx-1"  # 8 GB left vs 16 GB, 72 GB


async def test_free_when_nothing_fits(rtx: BookingService) -> None:
    service = with_policy(rtx, search_horizon=timedelta(days=1))
    await book(service, ALICE, "24GB", T0, at(10, day=7))
    free = await service.free(BOB, "8GB", HOUR)
    assert free.best is None and [s for _, s in free.per_gpu] == [None]
    assert free.until == T0 + timedelta(days=1)


async def test_status_numbers_and_next_change(rtx: BookingService, clock: FrozenClock) -> None:
    await active_booking(rtx, memory="10GB")  # 08:00–10:00
    await book(rtx, BOB, "8GB", at(9), at(11))
    [now] = await rtx.status(ALICE)
    assert (now.gpu.name, now.used_mib, now.free_mib, now.next_change, now.active_bookings) == (
        CARD,
        10 * GB,
        14 * GB,
        at(9),
        1,
    )
    clock.set(at(9, 30))
    [later] = await rtx.status(ALICE)
    assert (later.used_mib, later.free_mib, later.next_change, later.active_bookings) == (
        18 * GB,
        6 * GB,
        at(10),
        2,
    )
    clock.set(at(11))
    [idle] = await rtx.status(ALICE)
    assert (idle.used_mib, idle.next_change, idle.active_bookings) == (0, None, 0)


async def test_utilisation_counts_exact_gb_hours(rtx: BookingService, clock: FrozenClock) -> None:
    released = await active_booking(rtx, ALICE, memory="10GB")  # 08:00–10:00, released 09:00
    await book(rtx, BOB, "8GB", at(10), at(12))
    cancelled = await book(rtx, BOB, "4GB", at(10), at(11))
    await book(rtx, ALICE, "2GB", at(11), at(13))  # half inside the window
    await rtx.cancel(BOB, cancelled.id)
    clock.set(at(9))
    await rtx.release(ALICE, released.id)

    usage = await rtx.utilisation(CONFIG_ADMIN, at(8), at(12))
    gb_h = GB * 3600
    assert usage.total.booked_mib_s == (10 * 1 + 8 * 2 + 2 * 1) * gb_h
    assert usage.total.available_mib_s == 24 * 4 * gb_h
    assert usage.total.bookings == 3
    assert [(u.key, u.booked_mib_s, u.bookings) for u in usage.per_gpu] == [(CARD, 28 * gb_h, 3)]
    assert [(u.key, u.booked_mib_s, u.bookings) for u in usage.per_user] == [
        ("UBOB", 16 * gb_h, 1),
        ("UALICE", 12 * gb_h, 2),
    ]
    assert all(isinstance(u.booked_mib_s, int) for u in (*usage.per_gpu, *usage.per_user))
    assert usage.per_gpu[0].available_mib_s == 24 * 4 * gb_h  # 28 of 96 GB·h booked

    # Everyone's figures are for admins; each user sees their own.
    with refused(PermissionDenied, "Only gpubook admins can see utilisation"):
        await rtx.utilisation(ALICE, at(8), at(12))
    mine = await rtx.my_usage(ALICE, at(8), at(12))
    assert (mine.key, mine.booked_mib_s, mine.bookings) == ("UALICE", 12 * gb_h, 2)


# ---------------------------------------------------------------------------- audit and outbox


async def test_every_change_is_audited(rtx: BookingService) -> None:
    booking = await book(rtx, ALICE, "4GB", at(10), at(12))
    await rtx.update(ALICE, booking.id, BookingChange(memory="6GB"))
    await rtx.extend(ALICE, booking.id, HOUR)
    await rtx.cancel(ALICE, booking.id)
    active = await active_booking(rtx)
    await rtx.release(ALICE, active.id)
    await rtx.edit_gpu(CONFIG_ADMIN, CARD, description="the big one")
    await rtx.set_channel(CONFIG_ADMIN, "CNEW")
    await rtx.retire_gpu(CONFIG_ADMIN, CARD)
    assert await audit_actions(rtx) == [
        ("gpu_add", None),
        ("create", booking.id),
        ("update", booking.id),
        ("extend", booking.id),
        ("cancel", booking.id),
        ("create", active.id),
        ("release", active.id),
        ("gpu_edit", None),
        ("set_channel", None),
        ("gpu_retire", None),
    ]
    [update] = [e for e in await rtx.audit_log(CONFIG_ADMIN) if e.action == "update"]
    assert (
        update.actor,
        update.details["before"]["memory_mib"],
        update.details["after"]["memory_mib"],
    ) == (
        "UALICE",
        4 * GB,
        6 * GB,
    )


async def test_outbox_rows_for_announce_release_cancel(rtx: BookingService) -> None:
    upcoming = await book(rtx, ALICE, "4GB", at(10), at(12))
    active = await active_booking(rtx)
    await rtx.cancel(ALICE, upcoming.id)
    await rtx.release(ALICE, active.id)
    rows = [
        (n.kind, n.booking_id, n.channel, n.due_at, n.sent_at) for n in await notifications(rtx)
    ]
    assert rows == [
        ("announced", upcoming.id, DEFAULT_CHANNEL, T0, None),
        ("announced", active.id, DEFAULT_CHANNEL, T0, None),
        ("cancelled", upcoming.id, DEFAULT_CHANNEL, T0, None),
        ("released", active.id, DEFAULT_CHANNEL, T0, None),
    ]


async def test_outbox_goes_to_the_gpu_channel_then_the_workspace_channel(
    rtx: BookingService,
) -> None:
    await rtx.set_channel(CONFIG_ADMIN, "CTEAM")
    await book(rtx, ALICE, "1GB", at(10), at(11))
    await rtx.set_channel(CONFIG_ADMIN, "CCARD", gpu=CARD)
    await book(rtx, ALICE, "1GB", at(10), at(11))
    assert [n.channel for n in await notifications(rtx)] == ["CTEAM", "CCARD"]


async def test_a_batched_journal_writes_nothing_until_stored_then_its_rows_in_order(
    rtx: BookingService,
) -> None:
    """``create``'s journal: its rows wait for ``store`` (no flush writes them), then go in."""
    booking = await book(rtx, ALICE, "1GB", at(10), at(11))
    async with rtx.db.write() as session:
        row = await session.get(Booking, booking.id)
        assert row is not None
        journal = Journal(session, T0, batched=True)
        journal.audit(ADMIN, AuditAction.UPDATE, row, {"n": 1})
        journal.tell_owner(NoticeKind.CHANGED, row, {"n": 2})
        journal.audit(ADMIN, AuditAction.UPDATE, row, {"n": 3})
        assert not session.new
        await journal.store()
        assert not session.new
    async with rtx.db.read() as session:
        audits = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.action, e.booking_id, e.details) for e in audits[-2:]] == [
        ("update", booking.id, {"n": 1}),
        ("update", booking.id, {"n": 3}),
    ]
    told = (await notifications(rtx))[-1]
    assert (told.kind, told.channel, told.details) == ("changed", "UALICE", {"n": 2})


async def test_named_and_placed_bookings_are_announced_in_the_same_channel(
    rtx: BookingService,
) -> None:
    """A booking naming its GPU reads the channel with the GPU's lock (in SQL), a placed one
    looks it up afterwards: both choose alike, an emptied channel counting as none."""
    expected = []
    for team_channel, card_channel, chosen in [
        ("CTEAM", None, "CTEAM"),
        ("CTEAM", "CCARD", "CCARD"),
        ("", "", DEFAULT_CHANNEL),
    ]:
        await rtx.set_channel(CONFIG_ADMIN, team_channel)
        if card_channel is not None:
            await rtx.set_channel(CONFIG_ADMIN, card_channel, gpu=CARD)
        for gpu in (CARD, None):
            await rtx.create(ALICE, gpu=gpu, memory="1GB", start=at(10), end=at(11), task="t")
            expected.append(chosen)
    assert [n.channel for n in await notifications(rtx)] == expected


async def test_no_announcement_when_turned_off(rtx: BookingService) -> None:
    quiet = BookingService(rtx.db, dataclasses.replace(rtx.config, announce_new=False), rtx.clock)
    await book(quiet, ALICE, "1GB", at(10), at(11))
    assert await notifications(quiet) == []


# ---------------------------------------------------------------------------- input


async def test_task_text_is_cleaned(rtx: BookingService) -> None:
    booking = await book(rtx, ALICE, "1GB", at(10), at(11), task="  a\x00b\x1b[31mc\x7f\n\nd  ")
    assert booking.task == "a b [31mc d"
    assert (await book(rtx, ALICE, "1GB", at(10), at(11), task="x" * 200)).task == "x" * 200
    async with unchanged(rtx):
        with refused(InputError, "The task is 201 characters long"):
            await book(rtx, ALICE, "1GB", at(10), at(11), task="x" * 201)
        with refused(InputError, "Give the task a name"):
            await book(rtx, ALICE, "1GB", at(10), at(11), task="\x00\x01\n")


async def test_unknown_gpu_names_the_known_ones(rtx: BookingService) -> None:
    await add_gpu(rtx, "a100", "80GB")
    async with unchanged(rtx):
        with refused(NotFound, r"GPU `h100` doesn't exist\. Known GPUs: `a100`, `rtx-0`\."):
            await book(rtx, ALICE, "1GB", at(10), at(11), gpu="h100")


async def test_unknown_booking_id(rtx: BookingService) -> None:
    for attempt in (
        rtx.get(ALICE, 999),
        rtx.cancel(ALICE, 999),
        rtx.release(ALICE, 999),
        rtx.extend(ALICE, 999, HOUR),
        rtx.update(ALICE, 999, BookingChange(memory="1GB")),
    ):
        async with unchanged(rtx):
            with refused(NotFound, "There is no booking #999"):
                await attempt


async def test_naive_datetimes_are_a_programming_error(rtx: BookingService) -> None:
    async with unchanged(rtx):
        with pytest.raises(ValueError, match="naive datetime"):
            await book(rtx, ALICE, "1GB", datetime(2026, 1, 5, 10), datetime(2026, 1, 5, 11))


async def test_decimal_sizes_fill_the_card_exactly(rtx: BookingService) -> None:
    sizes = ["8.1GB", "7.9GB", "8.0GB"]
    booked = [await book(rtx, ALICE, size, at(10), at(12)) for size in sizes]
    assert sum(b.memory_mib for b in booked) == 24 * GB
    # Each rounds once to whole MiB (8294.4, 8089.6, 8192) and the three still sum to 24 GB.
    assert [b.memory_mib for b in booked] == [8294, 8090, 8192]
    async with unchanged(rtx):
        # One unit in one sentence: 1 MiB would read "0 GB", so every size is in MiB.
        with refused(CapacityError, "24576 MiB of 24576 MiB .* 0 MiB free, 1 MiB asked"):
            await book(rtx, BOB, 1, at(10), at(12))


# ---------------------------------------------------------------------------- workspaces


async def test_workspaces_do_not_see_each_other(rtx: BookingService) -> None:
    t1_alice = Actor("UALICE", team_id="T1")
    t2_bob = Actor("UBOB", team_id="T2")
    for team in ("T1", "T2"):
        await rtx.add_gpu(Actor(ADMIN, team_id=team), CARD, "24GB")
    theirs = await book(rtx, t2_bob, "24GB", at(10), at(12))
    mine = await book(rtx, t1_alice, "24GB", at(10), at(12))  # same name and window, other card

    assert [b.id for b in await rtx.list_bookings(t1_alice, everyone=True)] == [mine.id]
    with refused(NotFound, f"There is no booking #{theirs.id}"):
        await rtx.get(t1_alice, theirs.id)
    with pytest.raises(NotFound):
        await rtx.cancel(Actor(ADMIN, team_id="T1"), theirs.id)
    calendar = await rtx.calendar(t1_alice, CARD, at(8), at(16))
    assert [b.id for b in calendar.bookings] == [mine.id]
    assert [s.used_mib for s in (await rtx.status(t1_alice))] == [0]
    assert [e.booking_id for e in await rtx.audit_log(Actor(ADMIN, team_id="T1"))] == [
        mine.id,
        None,
    ]
    assert (await rtx.get(t2_bob, theirs.id)).status == BookingStatus.UPCOMING


async def test_calendar_window_must_be_positive(rtx: BookingService) -> None:
    with refused(InputError, "must end after it starts"):
        await rtx.calendar(ALICE, CARD, at(12), at(12))


async def test_aware_non_utc_input_is_stored_as_the_same_instant(rtx: BookingService) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    booking = await book(
        rtx,
        ALICE,
        "1GB",
        datetime(2026, 1, 5, 11, tzinfo=berlin),
        datetime(2026, 1, 5, 13, tzinfo=berlin),
    )
    stored = await rtx.get(ALICE, booking.id)
    assert (stored.start, stored.end) == (at(10), at(12))
    assert stored.start.tzinfo == UTC


async def test_release_after_the_planned_end_keeps_the_planned_end(
    rtx: BookingService, clock: FrozenClock
) -> None:
    """Until the lifecycle sweep has ended it, an overrun booking is still ACTIVE; releasing it
    then must not stretch it to "now" (it would count hours it never held in utilisation)."""
    booking = await active_booking(rtx, memory="10GB")  # 08:00–10:00
    clock.set(at(11))
    released = await rtx.release(ALICE, booking.id)
    assert (released.start, released.end) == (T0, at(10))
    usage = await rtx.utilisation(CONFIG_ADMIN, at(8), at(12))
    assert usage.total.booked_mib_s == 10 * GB * 2 * 3600
