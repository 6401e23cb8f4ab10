"""The service side of `gpubook run` (SQLite and PostgreSQL): the host's bookings in the answer to
each report, and booking from a host for the user linked to a login, through the normal path."""

from __future__ import annotations

from datetime import timedelta

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, Report
from bot.core.errors import (
    CapacityError,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    Unauthorized,
)
from bot.core.host_bookings import HostCard
from bot.core.limits import LimitName
from bot.core.usage import HostIdentity
from tests.conftest import T0, refused

ALICE, BOB = Actor("UALICE"), Actor("UBOB")
UUID0, UUID1, ELSEWHERE = "GPU-00000000-aaaa", "GPU-11111111-bbbb", "GPU-22222222-cccc"
HOUR = timedelta(hours=1)
GB = 1024


async def host_with_cards(service: BookingService, admin: Actor) -> HostIdentity:
    """gpu-host-1 with rtx-0 and rtx-1 bound; rtx-9 is bound to a card of another host."""
    for name, uuid in (("rtx-0", UUID0), ("rtx-1", UUID1), ("rtx-9", ELSEWHERE)):
        await service.add_gpu(admin, name, "24GB")
        await service.edit_gpu(admin, name, device_uuid=uuid)
    await service.link_login(ALICE, "alice")
    await service.link_login(ALICE, "al")
    await service.link_login(BOB, "bob")
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    identity = await service.authenticate_agent(secret)
    assert identity is not None
    return identity


def report(*uuids: str) -> Report:
    return Report(
        "gpu-host-1", T0, tuple(DeviceReading(u, i, "RTX", 24564, 0) for i, u in enumerate(uuids))
    )


async def test_the_answer_to_a_report_carries_the_hosts_bookings_with_their_logins(
    service: BookingService, admin: Actor
) -> None:
    identity = await host_with_cards(service, admin)
    mine = await service.create(ALICE, gpu="rtx-0", memory="8GB", start=T0, end=T0 + HOUR, task="t")
    soon = await service.create(
        BOB, gpu="rtx-1", memory="4GB", start=T0 + HOUR / 2, end=T0 + HOUR, task="t"
    )
    await service.create(  # beyond the lookahead: not yet the agent's business
        BOB, gpu="rtx-1", memory="4GB", start=T0 + 2 * HOUR, end=T0 + 3 * HOUR, task="t"
    )
    await service.create(  # another host's card
        BOB, gpu="rtx-9", memory="4GB", start=T0, end=T0 + HOUR, task="t"
    )
    result = await service.ingest_report(identity, report(UUID0, UUID1, "GPU-unbound-0"))
    known = result.host_bookings
    assert known.cards == (
        HostCard(UUID0, "rtx-0", 24564, 24 * GB),
        HostCard(UUID1, "rtx-1", 24564, 24 * GB),
    )
    assert [(b.id, b.uuid, b.logins, b.memory_mib) for b in known.bookings] == [
        (mine.id, UUID0, ("al", "alice"), 8 * GB),
        (soon.id, UUID1, ("bob",), 4 * GB),
    ]
    assert (known.bookings[0].start, known.bookings[0].end) == (T0, T0 + HOUR)
    assert result.unbound == ("GPU-unbound-0",)
    assert await service.bookings_on_host(identity) == known


async def test_a_cancelled_or_ended_booking_is_no_longer_sent(
    service: BookingService, admin: Actor, clock
) -> None:
    identity = await host_with_cards(service, admin)
    gone = await service.create(
        ALICE, gpu="rtx-0", memory="8GB", start=T0 + HOUR / 4, end=T0 + HOUR, task="t"
    )
    ends = await service.create(ALICE, gpu="rtx-1", memory="8GB", start=T0, end=T0 + HOUR, task="t")
    await service.cancel(ALICE, gone.id)
    assert [b.id for b in (await service.bookings_on_host(identity)).bookings] == []
    await service.ingest_report(identity, report(UUID0, UUID1))
    assert [b.id for b in (await service.bookings_on_host(identity)).bookings] == [ends.id]
    clock.advance(HOUR)
    assert (await service.bookings_on_host(identity)).bookings == ()


async def test_booking_from_the_host_is_for_the_linked_user_on_its_cards_and_audited(
    service: BookingService, admin: Actor
) -> None:
    identity = await host_with_cards(service, admin)
    await service.ingest_report(identity, report(UUID0, UUID1))
    await service.create(BOB, gpu="rtx-0", memory="20GB", start=T0, end=T0 + HOUR, task="t")
    booking, known = await service.book_from_host(identity, "al", "8GB", 2 * HOUR)
    assert (booking.user_id, booking.gpu_name, booking.memory_mib) == ("UALICE", "rtx-1", 8 * GB)
    assert (booking.start, booking.end) == (T0, T0 + 2 * HOUR)
    assert booking.task == "gpubook run on gpu-host-1 (al)"
    assert booking.id in [b.id for b in known.bookings]
    [entry] = [e for e in await service.audit_log(admin) if e.booking_id == booking.id]
    assert (entry.actor, entry.action) == ("UALICE", "create")
    # rtx-9 has room, but it is another host's card
    with refused(CapacityError, "No GPU has 24 GB free"):
        await service.book_from_host(identity, "bob", "24GB", HOUR)
    with refused(NotFound, "`rtx-9` is not a card of this host; its cards are: rtx-0, rtx-1"):
        await service.book_from_host(identity, "bob", "1GB", HOUR, "rtx-9")
    named, _ = await service.book_from_host(identity, "bob", "2GB", HOUR, "rtx-0")
    assert (named.user_id, named.gpu_name) == ("UBOB", "rtx-0")


async def test_an_unlinked_login_books_nothing_and_limits_apply(
    service: BookingService, admin: Actor
) -> None:
    identity = await host_with_cards(service, admin)
    await service.ingest_report(identity, report(UUID0, UUID1))
    with refused(PermissionDenied, "The login `mallory` is not linked to a Slack user"):
        await service.book_from_host(identity, "mallory", "8GB", HOUR)
    await service.set_limit(admin, "everyone", LimitName.MAX_HELD, 4 * GB)
    with refused(PolicyViolation, "4 GB"):
        await service.book_from_host(identity, "alice", "8GB", HOUR)
    assert (
        await service.bookings_on_host(identity)
        == (await service.ingest_report(identity, report(UUID0, UUID1))).host_bookings
    )
    assert (await service.bookings_on_host(identity)).bookings == ()


async def test_a_host_without_bound_cards_cannot_book(
    service: BookingService, admin: Actor
) -> None:
    await service.link_login(ALICE, "alice")
    _, secret = await service.create_agent_token(admin, "gpu-host-2")
    identity = await service.authenticate_agent(secret)
    assert identity is not None
    with refused(NotFound, "The host `gpu-host-2` has no card bound to a GPU"):
        await service.book_from_host(identity, "alice", "8GB", HOUR)


async def test_a_token_revoked_after_it_reported_books_nothing(
    service: BookingService, admin: Actor
) -> None:
    await host_with_cards(service, admin)
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    remembered = await service.reporting_host(secret)
    assert remembered is not None
    await service.ingest_report(remembered, report(UUID0, UUID1))
    other = BookingService(service.db, service.config, service.clock)  # another process
    await other.revoke_agent_token(admin, str(remembered.token_id))
    with refused(Unauthorized, "unknown or revoked"):  # remembered here, revoked there
        await service.book_from_host(remembered, "alice", "8GB", HOUR)
    # Refused before anything else is answered: neither the host's GPU names (a GPU it lacks)
    # nor who is linked (a login nobody has) are told to a revoked token.
    for login, gpu in (("alice", "nope"), ("nobody", None)):
        with refused(Unauthorized, "unknown or revoked"):
            await service.book_from_host(remembered, login, "8GB", HOUR, gpu)
    assert (await service.bookings_on_host(remembered)).bookings == ()
    _, again = await service.create_agent_token(admin, "gpu-host-1")
    identity = await service.reporting_host(again)
    assert identity is not None
    await service.revoke_agent_token(admin, "gpu-host-1")  # in this process: forgotten at once
    assert await service.reporting_host(again) is None
    with refused(Unauthorized, "unknown or revoked"):
        await service.book_from_host(identity, "alice", "8GB", HOUR)
    assert [e for e in await service.audit_log(admin) if e.action == "create"] == []
