"""Acceptance scenarios 1–12, 14 and 15 (/work/shared/design/scenarios.md) at service level.

Every test runs on SQLite and on PostgreSQL (the ``service`` fixture is parametrized by
``backend``). The 24 GB card is ``rtx-0``; "GB" is 1024 MiB. Refusals are checked for their exact
numbers and for leaving every table untouched. The small helpers here (``add_gpu``, ``book``,
``unchanged``, ``holding_peak``) are shared with the other service-level test modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.booking import Actor, BookingChange, BookingService
from bot.core import capacity
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
from bot.core.vocabulary import BookingStatus
from storage.db import Database
from storage.models import AuditEntry, Booking, Gpu, Notification, Workspace
from tests.conftest import ADMIN, T0, at, refused, said

GB = 1024
CARD = "rtx-0"
ALICE, BOB, CAROL, DAVE, ERIN = (Actor(u) for u in ("UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"))


# ---------------------------------------------------------------------------- shared helpers


async def add_gpu(service: BookingService, name: str = CARD, size: str = "24GB") -> None:
    await service.add_gpu(Actor(ADMIN), name, size)


async def book(
    service: BookingService,
    actor: Actor,
    memory: int | str,
    start: datetime,
    end: datetime,
    *,
    gpu: str | None = CARD,
    task: str = "train",
) -> BookingInfo:
    """Book ``memory`` (MiB or typed text) on ``gpu`` for ``actor``."""
    return await service.create(actor, gpu=gpu, memory=memory, start=start, end=end, task=task)


async def table_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: "the database" for unchanged-checks."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as session:
        for model in (Gpu, Booking, AuditEntry, Notification, Workspace):
            table = model.__table__
            query = select(*table.columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in await session.execute(query)]
    return rows


@asynccontextmanager
async def unchanged(service: BookingService) -> AsyncIterator[None]:
    """Assert that the block (a refusal) leaves every table exactly as it was."""
    before = await table_rows(service.db)
    yield
    assert await table_rows(service.db) == before


async def all_bookings(service: BookingService) -> list[BookingInfo]:
    return await service.list_bookings(Actor(ADMIN), everyone=True, statuses=list(BookingStatus))


async def holding_peak(service: BookingService, gpu: str = CARD) -> int:
    """The most memory the holding bookings on ``gpu`` hold at any instant (the invariant)."""
    spans = [
        capacity.Span(b.start, b.end, b.memory_mib)
        for b in await service.list_bookings(Actor(ADMIN), everyone=True, gpu=gpu)
    ]
    if not spans:
        return 0
    return capacity.peak(spans, min(s.start for s in spans), max(s.end for s in spans)).mib


async def notifications(service: BookingService) -> list[Notification]:
    async with service.db.read() as session:
        return list(
            (await session.scalars(select(Notification).order_by(Notification.id))).unique()
        )


async def audit_actions(service: BookingService) -> list[tuple[str, int | None]]:
    """(action, booking id) of every audit entry, oldest first."""
    entries = await service.audit_log(Actor(ADMIN), limit=10_000)
    return [(e.action, e.booking_id) for e in reversed(entries)]


@pytest.fixture
async def rtx(service: BookingService) -> BookingService:
    """The service with the 24 GB card ``rtx-0``."""
    await add_gpu(service)
    return service


# ---------------------------------------------------------------------------- scenarios 1–3


async def test_1_one_booking_within_capacity_allowed_and_one_over_capacity_refused(
    rtx: BookingService,
) -> None:
    ok = await book(rtx, ALICE, "20GB", at(10), at(12))
    assert (ok.memory_mib, ok.status, ok.gpu_name) == (20 * GB, BookingStatus.UPCOMING, CARD)

    async with unchanged(rtx):
        with pytest.raises(CapacityError) as err:
            await book(rtx, BOB, "25GB", at(14), at(16))
    assert said(err.value) == "`rtx-0` has only 24 GB, and no GPU has more; you asked for 25 GB."
    assert (err.value.capacity_mib, err.value.requested_mib) == (24 * GB, 25 * GB)
    assert err.value.suggestion is None

    # With a bigger card around, the refusal says where the request does fit.
    await rtx.add_gpu(Actor(ADMIN), "a100-1", "80GB")
    with pytest.raises(CapacityError) as err:
        await book(rtx, BOB, "25GB", at(14), at(16))
    assert "`rtx-0` has only 24 GB; you asked for 25 GB." in said(err.value)
    assert "It fits on `a100-1`: 14:00–16:00 UTC." in said(err.value)
    assert err.value.alternative is not None and err.value.alternative.gpu_name == "a100-1"


async def test_2_two_bookings_totalling_75_percent_allowed_third_refused(
    rtx: BookingService,
) -> None:
    await book(rtx, ALICE, "10GB", at(10), at(12))
    await book(rtx, BOB, "8GB", at(10), at(12))
    async with unchanged(rtx):
        with pytest.raises(CapacityError) as err:
            await book(rtx, CAROL, "7GB", at(10), at(12))
    assert "18 GB of 24 GB already held at the peak (10:00–12:00), 6 GB free, 7 GB asked" in said(
        err.value
    )
    assert (err.value.peak_mib, err.value.requested_mib) == (18 * GB, 7 * GB)


async def test_3_exact_capacity_allowed_one_more_refused(rtx: BookingService) -> None:
    await book(rtx, ALICE, "9GB", at(10), at(12))
    await book(rtx, BOB, "8GB", at(10), at(12))
    async with unchanged(rtx):
        with refused(CapacityError, "17 GB of 24 GB .* 7 GB free, 8 GB asked"):
            await book(rtx, CAROL, "8GB", at(10), at(12))
    await book(rtx, CAROL, "7GB", at(10), at(12))
    async with unchanged(rtx):
        with refused(CapacityError, "24 GB of 24 GB already held"):
            await book(rtx, DAVE, "1GB", at(10), at(12))
    assert await holding_peak(rtx) == 24 * GB


# ---------------------------------------------------------------------------- scenarios 4–5


async def _seed_scenario_1(service: BookingService) -> None:
    for actor, memory in ((ALICE, "10GB"), (BOB, "8GB"), (CAROL, "5GB")):
        await book(service, actor, memory, at(10), at(12))


async def test_4_seed_scenario_1_refusal_names_free_memory_and_calendar_shows_23_of_24(
    rtx: BookingService,
) -> None:
    await _seed_scenario_1(rtx)
    async with unchanged(rtx):
        with pytest.raises(CapacityError) as err:
            await book(rtx, DAVE, "2GB", at(10), at(12))
    message = said(err.value)
    assert "1 GB free" in message
    assert "23 GB of 24 GB" in message
    assert "Earliest fit on `rtx-0`: 12:00–14:00 UTC" in message

    calendar = await rtx.calendar(ALICE, CARD, at(8), at(16))
    assert [(s.start, s.end, s.used_mib) for s in calendar.steps] == [
        (at(8), at(10), 0),
        (at(10), at(12), 23 * GB),
        (at(12), at(16), 0),
    ]
    assert sorted(b.user_id for b in calendar.bookings) == ["UALICE", "UBOB", "UCAROL"]
    assert calendar.gpu.capacity_mib == 24 * GB


async def test_5_seed_scenario_2_non_overlapping_windows_do_not_count(
    rtx: BookingService,
) -> None:
    await _seed_scenario_1(rtx)
    d = await book(rtx, DAVE, "24GB", at(12), at(14))
    e = await book(rtx, ERIN, "20GB", at(14), at(16))
    assert (d.memory_mib, e.memory_mib) == (24 * GB, 20 * GB)
    steps = (await rtx.calendar(ALICE, CARD, at(10), at(16))).steps
    assert [s.used_mib for s in steps] == [23 * GB, 24 * GB, 20 * GB]


# ---------------------------------------------------------------------------- scenarios 6–7


async def test_6_extension_into_a_full_window_refused_into_free_memory_allowed(
    rtx: BookingService,
) -> None:
    mine = await book(rtx, ALICE, "10GB", at(10), at(11))
    await book(rtx, BOB, "16GB", at(12), at(14))

    extended = await rtx.extend(ALICE, mine.id, timedelta(hours=1))
    assert extended.end == at(12)

    async with unchanged(rtx):
        with refused(CapacityError, "16 GB of 24 GB .* 8 GB free, 10 GB asked"):
            await rtx.extend(ALICE, mine.id, timedelta(hours=1))
    assert (await rtx.get(ALICE, mine.id)).end == at(12)


async def test_7_update_is_checked_as_if_the_booking_were_absent(rtx: BookingService) -> None:
    mine = await book(rtx, ALICE, "20GB", at(10), at(12))
    # Alone on the card, it may grow to the whole card and move over its own window.
    grown = await rtx.update(ALICE, mine.id, BookingChange(memory="24GB"))
    moved = await rtx.update(ALICE, mine.id, BookingChange(start=at(11), end=at(13)))
    assert (grown.memory_mib, moved.start, moved.end) == (24 * GB, at(11), at(13))

    await rtx.update(ALICE, mine.id, BookingChange(memory="20GB"))
    await book(rtx, BOB, "4GB", at(12), at(14))
    async with unchanged(rtx):
        with refused(CapacityError, "4 GB of 24 GB .* 20 GB free, 21 GB asked"):
            await rtx.update(ALICE, mine.id, BookingChange(memory="21GB"))


# ---------------------------------------------------------------------------- scenarios 8–10


async def test_8_peak_not_sum(rtx: BookingService) -> None:
    await book(rtx, ALICE, "16GB", at(10), at(11))
    await book(rtx, BOB, "16GB", at(11), at(12))
    async with unchanged(rtx):
        with refused(CapacityError, "16 GB of 24 GB .* 8 GB free, 9 GB asked"):
            await book(rtx, CAROL, "9GB", at(10), at(12))
    allowed = await book(rtx, CAROL, "8GB", at(10), at(12))
    assert allowed.memory_mib == 8 * GB
    assert await holding_peak(rtx) == 24 * GB


async def test_9_back_to_back_full_card_bookings(rtx: BookingService) -> None:
    await book(rtx, ALICE, "24GB", at(10), at(12))
    await book(rtx, BOB, "24GB", at(12), at(14))
    assert await holding_peak(rtx) == 24 * GB


async def test_10_refusal_offers_same_card_and_other_card_windows_both_bookable(
    rtx: BookingService,
) -> None:
    await add_gpu(rtx, "rtx-1", "16GB")
    await book(rtx, ALICE, "24GB", at(10), at(12))
    await book(rtx, BOB, "16GB", at(10), at(11), gpu="rtx-1")

    with pytest.raises(CapacityError) as err:
        await book(rtx, CAROL, "8GB", at(10), at(12))
    same, other = err.value.suggestion, err.value.alternative
    assert same is not None and other is not None
    assert (same.gpu_name, same.start, same.end, same.memory_mib) == (CARD, at(12), at(14), 8 * GB)
    assert (other.gpu_name, other.start, other.end) == ("rtx-1", at(11), at(13))
    assert "Earliest fit on `rtx-0`: 12:00–14:00 UTC" in said(err.value)
    assert "Sooner on `rtx-1`: 11:00–13:00 UTC" in said(err.value)

    for slot in (other, same):
        booked = await book(rtx, CAROL, slot.memory_mib, slot.start, slot.end, gpu=slot.gpu_name)
        assert (booked.gpu_name, booked.start, booked.end) == (slot.gpu_name, slot.start, slot.end)


async def test_10_suggestion_on_the_only_card_is_bookable(rtx: BookingService) -> None:
    await _seed_scenario_1(rtx)
    await book(rtx, DAVE, "20GB", at(12), at(13))
    with pytest.raises(CapacityError) as err:
        await book(rtx, ERIN, "6GB", at(10, 30), at(11, 30))
    slot = err.value.suggestion
    assert slot is not None and err.value.alternative is None
    # 23 GB until 12:00, 20 GB until 13:00: the first hour with 6 GB free starts at 13:00.
    assert (slot.start, slot.end) == (at(13), at(14))
    await book(rtx, ERIN, slot.memory_mib, slot.start, slot.end, gpu=slot.gpu_name)


# ---------------------------------------------------------------------------- scenario 12


async def test_12_cancel_frees_memory_at_once(rtx: BookingService) -> None:
    held = await book(rtx, ALICE, "24GB", at(10), at(12))
    with pytest.raises(CapacityError):
        await book(rtx, BOB, "1GB", at(11), at(12))
    await rtx.cancel(ALICE, held.id)
    assert (await book(rtx, BOB, "24GB", at(10), at(12))).memory_mib == 24 * GB


async def test_12_release_frees_memory_at_once(rtx: BookingService, clock: FrozenClock) -> None:
    held = await book(rtx, ALICE, "24GB", T0, at(12))
    assert held.status == BookingStatus.ACTIVE
    with pytest.raises(CapacityError):
        await book(rtx, BOB, "1GB", at(9), at(10))
    clock.advance(timedelta(minutes=30))
    released = await rtx.release(ALICE, held.id)
    assert (released.status, released.end, released.end_reason) == (
        BookingStatus.COMPLETED,
        at(8, 30),
        "released",
    )
    now = await book(rtx, BOB, "24GB", clock(), at(10))
    assert (now.start, now.status) == (at(8, 30), BookingStatus.ACTIVE)


# ---------------------------------------------------------------------------- scenario 14


async def test_14_a_user_cannot_touch_another_users_booking(rtx: BookingService) -> None:
    upcoming = await book(rtx, ALICE, "4GB", at(10), at(12))
    active = await book(rtx, ALICE, "4GB", T0, at(9))
    attempts = [
        lambda: rtx.cancel(BOB, upcoming.id),
        lambda: rtx.extend(BOB, upcoming.id, timedelta(hours=1)),
        lambda: rtx.update(BOB, upcoming.id, BookingChange(memory="1GB")),
        lambda: rtx.release(BOB, active.id),
        lambda: rtx.extend(BOB, active.id, timedelta(hours=1)),
    ]
    for attempt in attempts:
        async with unchanged(rtx):
            with refused(PermissionDenied, "belongs to <@UALICE>; only they or an admin"):
                await attempt()


async def test_14_an_admin_can_change_anyone_s_booking(rtx: BookingService) -> None:
    admin = Actor(ADMIN)
    upcoming = await book(rtx, ALICE, "4GB", at(10), at(12))
    active = await book(rtx, ALICE, "4GB", T0, at(9))
    assert (await rtx.update(admin, upcoming.id, BookingChange(memory="2GB"))).memory_mib == 2 * GB
    assert (await rtx.extend(admin, upcoming.id, timedelta(hours=1))).end == at(13)
    assert (await rtx.cancel(admin, upcoming.id)).status == BookingStatus.CANCELLED
    assert (await rtx.extend(admin, active.id, timedelta(hours=1))).end == at(10)
    assert (await rtx.release(admin, active.id)).status == BookingStatus.COMPLETED
    dms = [
        (n.channel, n.details["action"]) for n in await notifications(rtx) if n.kind == "changed"
    ]
    assert dms == [
        ("UALICE", action) for action in ("edited", "extended", "cancelled", "extended", "released")
    ]


# ---------------------------------------------------------------------------- scenario 15


BAD_INPUTS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "unknown gpu",
        {"gpu": "rtx-9"},
        NotFound,
        "GPU `rtx-9` doesn't exist. Known GPUs: `rtx-0`.",
    ),
    ("0GB", {"memory": "0GB"}, InputError, "at least 1 MiB"),
    ("-5GB", {"memory": "-5GB"}, InputError, "The memory must be positive"),
    ("1e9GB", {"memory": "1e9GB"}, InputError, "Write `1e9GB` without an exponent"),
    ("abc", {"memory": "abc"}, InputError, "I can't read `abc` as memory"),
    ("zero MiB", {"memory": 0}, InputError, "Ask for a positive amount of memory"),
    (
        "end before start",
        {"start": at(12), "end": at(10)},
        InputError,
        "The end must be after the start",
    ),
    ("start in the past", {"start": at(7), "end": at(9)}, InputError, "That start is in the past"),
    (
        "longer than policy",
        {"start": at(10), "end": at(10, day=13)},
        PolicyViolation,
        "Bookings last at most 7d; this one is 8d",
    ),
    ("empty task", {"task": " \t\n "}, InputError, "Give the task a name"),
    (
        "10,000-character task",
        {"task": "x" * 10_000},
        InputError,
        "The task is 10,000 characters long; keep it to 200 or fewer",
    ),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
async def test_15_bad_input_gets_a_specific_message_and_changes_nothing(
    rtx: BookingService, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    await book(rtx, ALICE, "4GB", at(10), at(12))
    request: dict[str, Any] = {
        "gpu": CARD,
        "memory": "4GB",
        "start": at(10),
        "end": at(12),
        "task": "train",
    }
    async with unchanged(rtx):
        with pytest.raises(error) as err:
            await rtx.create(BOB, **(request | change))
    assert message in said(err.value)


async def test_15_bad_input_to_update_changes_nothing(rtx: BookingService) -> None:
    mine = await book(rtx, ALICE, "4GB", at(10), at(12))
    for change, error in (
        (BookingChange(memory="abc"), InputError),
        (BookingChange(end=at(9)), InputError),
        (BookingChange(start=at(7)), InputError),
        (BookingChange(task=""), InputError),
        (BookingChange(end=at(10, day=20)), PolicyViolation),
    ):
        async with unchanged(rtx):
            with pytest.raises(error):
                await rtx.update(ALICE, mine.id, change)


async def test_15_cannot_act_on_finished_bookings(rtx: BookingService) -> None:
    cancelled = await book(rtx, ALICE, "4GB", at(10), at(12))
    await rtx.cancel(ALICE, cancelled.id)
    for attempt in (
        lambda: rtx.cancel(ALICE, cancelled.id),
        lambda: rtx.extend(ALICE, cancelled.id, timedelta(hours=1)),
        lambda: rtx.update(ALICE, cancelled.id, BookingChange(memory="1GB")),
    ):
        async with unchanged(rtx):
            with refused(InvalidState, "has already been cancelled, so there is nothing left to"):
                await attempt()
