"""Fair share in the service: groups, limits per group, and every booking path checking them.

Runs on SQLite and PostgreSQL. A refusal names the limit, the numbers and when it frees, and
changes nothing; an admin may book past a limit with an explicit override, which is audited.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from bot.booking import Actor, BookingChange, BookingService
from bot.core.errors import CapacityError, InputError, NotFound, PermissionDenied, PolicyViolation
from bot.core.limits import LimitName, parse_value, standing_sentences
from handlers.wording import mrkdwn
from tests.conftest import ADMIN, T0, at, refused
from tests.test_service_rules import with_policy
from tests.test_service_scenarios import ALICE, BOB, GB, add_gpu, book, unchanged

ADMIN_ACTOR = Actor(ADMIN)
HOUR = timedelta(hours=1)


@pytest.fixture
async def two_cards(service: BookingService) -> BookingService:
    await add_gpu(service, "rtx-0", "24GB")
    await add_gpu(service, "rtx-1", "24GB")
    return service


async def set_limit(service: BookingService, group: str, name: LimitName, text: str) -> None:
    await service.set_limit(ADMIN_ACTOR, group, name, parse_value(name, text))


async def test_groups_are_added_listed_and_removed(service: BookingService) -> None:
    group = await service.add_to_group(ADMIN_ACTOR, "Premium", ["UANA", "UBEN", "UANA"])
    assert (group.name, group.members) == ("premium", ("UANA", "UBEN"))
    await set_limit(service, "premium", LimitName.MAX_HELD, "96GB")
    listed = {g.name: g for g in await service.groups(ADMIN_ACTOR)}
    assert list(listed)[0] == "everyone"
    assert listed["premium"].settings == {LimitName.MAX_HELD: 96 * GB}
    assert (await service.remove_from_group(ADMIN_ACTOR, "premium", ["UANA"])).members == ("UBEN",)
    removed = await service.remove_from_group(ADMIN_ACTOR, "premium")
    assert (removed.members, dict(removed.settings)) == ((), {})
    with refused(NotFound, "There is no group `premium`"):
        await service.remove_from_group(ADMIN_ACTOR, "premium")
    with refused(InputError, "Everyone is in `everyone` already"):
        await service.add_to_group(ADMIN_ACTOR, "everyone", ["UANA"])
    with refused(PermissionDenied, "Only gpubook admins can change groups"):
        await service.add_to_group(ALICE, "premium", ["UALICE"])
    with refused(PermissionDenied, "Only gpubook admins can set limits"):
        await service.set_limit(ALICE, "premium", LimitName.MAX_HELD, None)


async def test_max_held_spans_cards_and_names_when_it_fits(two_cards: BookingService) -> None:
    service = two_cards
    await set_limit(service, "everyone", LimitName.MAX_HELD, "24GB")
    await book(service, ALICE, "20GB", at(9), at(12), gpu="rtx-0")
    async with unchanged(service):
        with refused(
            PolicyViolation,
            r"hold 30 GB at once across all GPUs \(20 GB already held .* plus 10 GB\); "
            r"the max-held limit is 24 GB\. Within the limit it fits from .*12:00",
        ):
            await book(service, ALICE, "10GB", at(10), at(11), gpu="rtx-1")
    # Held at the same instant, not summed over time: after 12:00 it fits.
    await book(service, ALICE, "10GB", at(12), at(13), gpu="rtx-1")
    # Someone else's bookings do not count against Alice.
    await book(service, BOB, "20GB", at(9), at(12), gpu="rtx-1")


async def test_a_group_grants_more_and_the_most_generous_group_wins(
    two_cards: BookingService,
) -> None:
    service = two_cards
    await set_limit(service, "everyone", LimitName.MAX_HELD, "8GB")
    await set_limit(service, "premium", LimitName.MAX_HELD, "16GB")
    await set_limit(service, "big", LimitName.MAX_HELD, "40GB")
    await service.add_to_group(ADMIN_ACTOR, "premium", ["UALICE", "UBOB"])
    await service.add_to_group(ADMIN_ACTOR, "big", ["UBOB"])
    with refused(PolicyViolation, "the max-held limit is 16 GB.*comes from the group `premium`"):
        await book(service, ALICE, "20GB", at(9), at(10))
    await book(service, BOB, "20GB", at(9), at(10))
    standing = await service.standing(BOB)
    assert standing.limits[LimitName.MAX_HELD].value == 40 * GB


async def test_max_open_counts_upcoming_and_active_bookings(two_cards: BookingService) -> None:
    service = two_cards
    await set_limit(service, "everyone", LimitName.MAX_OPEN, "2")
    first = await book(service, ALICE, "1GB", T0, at(9))
    await book(service, ALICE, "1GB", at(10), at(11))
    with refused(
        PolicyViolation,
        r"already has 2 upcoming or active .* max-open limit is 2\. "
        r"The next one ends .*09:00",
    ):
        await book(service, ALICE, "1GB", at(12), at(13))
    # Editing a booking is not a new one.
    await service.update(ALICE, first.id, BookingChange(memory="2GB"))
    await service.release(ALICE, first.id)
    await book(service, ALICE, "1GB", at(12), at(13))


async def test_max_gbh_counts_this_weeks_past_and_all_ahead(two_cards: BookingService) -> None:
    service = two_cards
    clock = service.clock
    await set_limit(service, "everyone", LimitName.MAX_GBH, "100")
    used = await book(service, ALICE, "10GB", T0, at(14))  # 60 GB·h
    clock.advance(timedelta(hours=6))  # type: ignore[attr-defined]
    with refused(
        PolicyViolation,
        r"bring <@UALICE> to 110 GB·h .* \(60 GB·h used or booked, plus 50 GB·h .*\); "
        r"the max-gbh limit is 100 GB·h\. Within the limit it fits from Mon 12 Jan 09:00",
    ):
        await book(service, ALICE, "10GB", at(15), at(20))
    await book(service, ALICE, "10GB", at(15), at(19))  # 40 GB·h: exactly 100
    # Extending is checked too, and a shorter edit frees GB·h.
    with refused(PolicyViolation, "max-gbh"):
        await service.extend(ALICE, used.id, HOUR)
    # Past use ages out: a week later the 60 GB·h no longer count.
    clock.advance(timedelta(days=7, hours=8))  # type: ignore[attr-defined]
    await book(service, ALICE, "10GB", clock() + HOUR, clock() + 6 * HOUR)


async def test_per_group_duration_advance_and_extension_limits(two_cards: BookingService) -> None:
    service = with_policy(two_cards, max_duration=timedelta(hours=8))
    with refused(PolicyViolation, "at most 8h"):
        await book(service, ALICE, "1GB", at(9), at(18))
    await set_limit(service, "premium", LimitName.MAX_DURATION, "12h")
    await set_limit(service, "premium", LimitName.MAX_EXTENSION, "30m")
    await set_limit(service, "premium", LimitName.MAX_ADVANCE, "1d")
    await service.add_to_group(ADMIN_ACTOR, "premium", ["UALICE"])
    long = await book(service, ALICE, "1GB", T0, at(19))
    with refused(PolicyViolation, "at most 30m in total"):
        await service.extend(ALICE, long.id, HOUR)
    with refused(PolicyViolation, "at most 1d ahead"):
        await book(service, ALICE, "1GB", at(9, day=7), at(10, day=7))
    # Bob, in no group, keeps everyone's (the environment's) limits.
    await book(service, BOB, "1GB", at(9, day=7), at(10, day=7))


async def test_offers_and_free_windows_keep_within_the_askers_own_advance(
    two_cards: BookingService,
) -> None:
    """A group's shorter max-advance bounds what a refusal offers and what `free` finds: a
    window past it could not be booked as offered. Someone in no group gets everyone's."""
    service = two_cards
    await set_limit(service, "short", LimitName.MAX_ADVANCE, "1d")
    await service.add_to_group(ADMIN_ACTOR, "short", ["UALICE"])
    for gpu in ("rtx-0", "rtx-1"):
        await book(service, BOB, "24GB", T0, T0 + timedelta(days=2), gpu=gpu)
    for gpu in ("rtx-0", None):
        with pytest.raises(CapacityError) as alice:
            await book(service, ALICE, "1GB", at(10), at(11), gpu=gpu)
        assert (alice.value.suggestion, alice.value.alternative) == (None, None)
    free = await service.free(ALICE, "1GB", HOUR)
    assert (free.best, free.until) == (None, T0 + timedelta(days=1))
    with refused(CapacityError, "fits on no GPU it may use before"):
        await service.create_flexible(ALICE, memory="1GB", duration=HOUR, task="queued")
    with pytest.raises(CapacityError) as bob:
        await book(service, BOB, "1GB", at(10), at(11))
    assert bob.value.suggestion is not None
    assert bob.value.suggestion.start == T0 + timedelta(days=2)
    assert (await service.free(BOB, "1GB", HOUR)).best is not None


async def test_environment_groups_keep_working_under_stored_ones(rtx_env: BookingService) -> None:
    service = rtx_env
    booking = await book(service, BOB, "1GB", T0, at(9))
    await service.extend(BOB, booking.id, timedelta(hours=8))
    with refused(PolicyViolation, "at most 8h in total"):
        await service.extend(BOB, booking.id, timedelta(minutes=1))
    await set_limit(service, "premium", LimitName.MAX_EXTENSION, "9h")
    await service.extend(BOB, booking.id, timedelta(hours=1))
    listed = {g.name: g for g in await service.groups(ADMIN_ACTOR)}
    assert listed["premium"].members == ("UBOB",)


@pytest.fixture
async def rtx_env(service: BookingService) -> BookingService:
    await add_gpu(service)
    return with_policy(
        service,
        max_extension=timedelta(hours=2),
        group_extensions={"premium": timedelta(hours=8)},
        user_groups={"UBOB": "premium"},
    )


async def test_admins_override_limits_explicitly_and_it_is_audited(
    two_cards: BookingService,
) -> None:
    service = two_cards
    await set_limit(service, "everyone", LimitName.MAX_OPEN, "1")
    await book(service, ALICE, "1GB", at(9), at(10))
    with refused(PolicyViolation, "max-open"):
        await service.create(
            ADMIN_ACTOR,
            gpu=None,
            memory="1GB",
            start=at(11),
            end=at(12),
            task="t",
            user_id="UALICE",
        )
    with refused(PermissionDenied, "Only gpubook admins can override limits"):
        await service.create(
            ALICE,
            gpu=None,
            memory="1GB",
            start=at(11),
            end=at(12),
            task="t",
            override_limits=True,
        )
    made = await service.create(
        ADMIN_ACTOR,
        gpu=None,
        memory="1GB",
        start=at(11),
        end=at(12),
        task="t",
        user_id="UALICE",
        override_limits=True,
    )
    entry = (await service.audit_log(ADMIN_ACTOR, limit=1))[0]
    assert (entry.booking_id, entry.details["limits_overridden"]) == (made.id, ["max-open"])


async def test_standing_reports_held_gbh_and_open(two_cards: BookingService) -> None:
    service = two_cards
    await set_limit(service, "everyone", LimitName.MAX_HELD, "64GB")
    await book(service, ALICE, "10GB", T0, at(10), gpu="rtx-0")
    await book(service, ALICE, "20GB", at(9), at(11), gpu="rtx-1")
    standing = await service.standing(ALICE)
    assert (standing.held_now_mib, standing.held_peak_mib) == (10 * GB, 30 * GB)
    assert (standing.gbh_used, standing.open_count) == (60 * GB * 3600, 2)
    assert standing.gbh_ages_from == T0 + timedelta(days=7)
    await set_limit(service, "everyone", LimitName.MAX_GBH, "300")
    text = mrkdwn(standing_sentences(await service.standing(ALICE)), now=T0)
    assert "You hold 10 GB now, and at most 30 GB at once in what you have booked" in text
    assert (
        "60 GB·h of 300 GB·h used or booked over the last 7 days and ahead; 240 GB·h free, "
        "until this week's use starts to age out Mon 12 Jan 08:00 UTC." in text
    )
    with refused(PermissionDenied, "see someone else's limits"):
        await service.standing(BOB, "UALICE")


async def test_standing_without_limits_says_there_is_none(two_cards: BookingService) -> None:
    """With no max-held, max-gbh or max-open set, each line says so in words, never "your
    max-held is no limit"."""
    service = two_cards
    await book(service, ALICE, "10GB", T0, at(10), gpu="rtx-0")
    text = mrkdwn(standing_sentences(await service.standing(ALICE)), now=T0)
    assert "at most 10 GB at once in what you have booked; no max-held limit." in text
    assert "20 GB·h used or booked over the last 7 days and ahead; no max-gbh limit." in text
    assert "1 upcoming or active booking; no max-open limit." in text
    assert " is no limit" not in text


async def test_a_change_that_adds_nothing_passes_a_lowered_limit(two_cards: BookingService) -> None:
    service = two_cards
    booking = await book(service, ALICE, "20GB", at(9), at(12))
    await set_limit(service, "everyone", LimitName.MAX_HELD, "16GB")
    await set_limit(service, "everyone", LimitName.MAX_GBH, "10")
    # Renaming, or holding less for less long, adds nothing: it passes.
    await service.update(ALICE, booking.id, BookingChange(task="renamed"))
    await service.update(ALICE, booking.id, BookingChange(memory="18GB", end=at(11)))
    with refused(PolicyViolation, "max-held limit is 16 GB"):
        await service.update(ALICE, booking.id, BookingChange(memory="19GB"))
    with refused(PolicyViolation, "max-held limit is 16 GB"):
        await service.extend(ALICE, booking.id, HOUR)
    await set_limit(service, "everyone", LimitName.MAX_HELD, "none")
    with refused(PolicyViolation, "the max-gbh limit is 10 GB·h"):
        await service.extend(ALICE, booking.id, HOUR)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_booking_reads_only_what_the_limits_in_force_need(
    two_cards: BookingService,
) -> None:
    """No group sets a limit: neither memberships nor the owner's bookings are read (a booking
    costs what it needs); once a group limits what is held, both are, and the limit holds."""
    statements: list[str] = []
    engine = two_cards.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    await book(two_cards, ALICE, "10GB", at(10), at(12), gpu="rtx-0")
    assert not [s for s in statements if "group_members" in s or "user_locks" in s]
    assert not [s for s in statements if s.startswith("SELECT bookings.id")]

    await two_cards.add_to_group(ADMIN_ACTOR, "small", [ALICE.user_id])
    await set_limit(two_cards, "small", LimitName.MAX_HELD, "16GB")
    statements.clear()
    with pytest.raises(PolicyViolation):
        await book(two_cards, ALICE, "10GB", at(11), at(12), gpu="rtx-1")
    assert [s for s in statements if "group_members" in s]
    assert [s for s in statements if s.startswith("SELECT bookings.id")]
