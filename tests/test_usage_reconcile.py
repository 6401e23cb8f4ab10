"""The reconciliation in the sweep: each finding told once (across replicas too), cleared when
it clears, idle bookings released when configured (and the queue moved up after), silent hosts
told to admins once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.booking import Actor, BookingService
from bot.booking.config import UsageConfig
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.clock import FrozenClock
from bot.core.usage import HostIdentity
from bot.core.vocabulary import BookingStatus, NoticeKind
from bot.lifecycle import reconcile_sweep
from bot.lifecycle.reconcile_sweep import reconcile_usage
from bot.lifecycle.usage_sweep import UsageSweep
from storage.db import Database
from storage.models import DEFAULT_CHANNEL, Notification, UsageEpisode
from tests.conftest import ADMIN, T0, pg_database

GB = 1024
UUID = "GPU-00000000-aaaa"
ALICE, BOB = Actor("UA"), Actor("UB")


async def setup(service: BookingService, admin: Actor, *, book_gb: int | None = 18) -> HostIdentity:
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.edit_gpu(admin, "rtx-0", device_uuid=UUID)
    await service.link_login(ALICE, "alice")
    await service.link_login(BOB, "bob")
    if book_gb:
        await service.create(
            ALICE,
            gpu="rtx-0",
            memory=f"{book_gb}GB",
            start=T0,
            end=T0 + timedelta(hours=3),
            task="t",
        )
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    identity = await service.authenticate_agent(secret)
    assert identity is not None
    return identity


async def report(service: BookingService, host: HostIdentity, **mib: int) -> None:
    processes = tuple(ProcessReading(n, login, m) for n, (login, m) in enumerate(mib.items(), 1))
    used = sum(mib.values())
    card = DeviceReading(UUID, 0, "RTX 4090", 24 * GB, used, processes)
    await service.ingest_report(host, Report("gpu-host-1", service.clock(), (card,)))


async def notices(service: BookingService, *kinds: NoticeKind) -> list[Notification]:
    async with service.db.read() as session:
        rows = await session.scalars(
            select(Notification).where(Notification.kind.in_([k.value for k in kinds]))
        )
        return list(rows.unique())


async def sweep(service: BookingService) -> None:
    await reconcile_usage(service.db, service.config, service.clock())


async def test_over_use_is_told_once_per_episode_with_a_raise_that_fits(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    host = await setup(service, admin)
    await report(service, host, alice=21 * GB)
    await sweep(service)
    assert await notices(service, NoticeKind.OVERUSE) == []  # one report is not an episode
    for _ in range(3):
        clock.advance(timedelta(seconds=15))
        await report(service, host, alice=21 * GB)
        await sweep(service)
    [dm] = await notices(service, NoticeKind.OVERUSE)
    assert dm.channel == "UA" and dm.booking_id == 1
    assert dm.details | {"episode": 0} == {
        "gpu": "rtx-0",
        "user": "UA",
        "used_mib": 21 * GB,
        "booked_mib": 18 * GB,
        "episode": 0,
        "booking": 1,
        "raise_to": 21 * GB,
        "fits": True,
    }
    assert await notices(service, NoticeKind.OVERUSE_CHANNEL) == []  # nobody else holds memory
    # It clears, then comes back: a new episode, a new DM.
    clock.advance(timedelta(seconds=15))
    await report(service, host, alice=10 * GB)
    await sweep(service)
    async with service.db.read() as session:
        assert list(await session.scalars(select(UsageEpisode))) == []
    for _ in range(2):
        clock.advance(timedelta(seconds=15))
        await report(service, host, alice=21 * GB)
    await sweep(service)
    assert len(await notices(service, NoticeKind.OVERUSE)) == 2


async def test_over_use_into_memory_others_hold_tells_the_channel_and_offers_no_raise(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    host = await setup(service, admin, book_gb=10)
    await service.create(
        BOB, gpu="rtx-0", memory="12GB", start=T0, end=T0 + timedelta(hours=1), task="b"
    )
    for _ in range(2):
        await report(service, host, alice=16 * GB, bob=GB)
        clock.advance(timedelta(seconds=15))
    await sweep(service)
    [dm] = await notices(service, NoticeKind.OVERUSE)
    assert (dm.details["raise_to"], dm.details["fits"]) == (16 * GB, False)
    [warning] = await notices(service, NoticeKind.OVERUSE_CHANNEL)
    assert warning.channel == DEFAULT_CHANNEL  # the bot's GPUBOOK_CHANNEL, read when posting


async def test_unbooked_use_offers_a_booking_of_what_is_used(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    host = await setup(service, admin, book_gb=None)
    for _ in range(2):
        await report(service, host, bob=int(5.5 * GB), mallory=20 * GB)
        clock.advance(timedelta(seconds=15))
    await sweep(service)
    await sweep(service)
    [dm] = await notices(service, NoticeKind.UNBOOKED)
    assert dm.channel == "UB" and dm.booking_id is None
    assert dm.details["mib"] == 6 * GB
    assert dm.details["end"] == (T0 + timedelta(hours=2, minutes=15)).isoformat()


async def test_an_idle_booking_is_asked_about_once_and_released_when_configured(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    usage = replace(service.config.usage, idle_release=timedelta(minutes=10))
    service.config = replace(service.config, usage=usage)
    host = await setup(service, admin)
    for _ in range(4):  # alice never runs anything on the card
        clock.advance(timedelta(minutes=10))
        await report(service, host)
        await sweep(service)
    [dm] = await notices(service, NoticeKind.IDLE)
    assert dm.channel == "UA" and dm.booking_id == 1
    assert dm.details["release_at"] == (T0 + timedelta(minutes=50)).isoformat()
    [booking] = await service.list_bookings(ALICE)
    assert booking.status == BookingStatus.ACTIVE
    clock.advance(timedelta(minutes=10))
    await report(service, host)
    await sweep(service)
    [released] = await service.list_bookings(ALICE, statuses=[BookingStatus.COMPLETED])
    assert released.end_reason == "idle"
    assert [n.channel for n in await notices(service, NoticeKind.RELEASED)] == [DEFAULT_CHANNEL]


async def test_an_idle_release_moves_a_flexible_booking_up(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    usage = replace(service.config.usage, idle_release=timedelta(minutes=10))
    service.config = replace(service.config, usage=usage)
    host = await setup(service, admin)
    waiting = await service.create_flexible(
        BOB, memory="10GB", duration=timedelta(hours=1), task="t"
    )
    assert waiting.start == T0 + timedelta(hours=3)  # alice holds 18 of 24 GB until then
    sweep_usage = UsageSweep(service.db, service.config, after_free=service.after_freeing)
    for _ in range(5):  # alice idle: asked at 0:40, released at 0:50
        clock.advance(timedelta(minutes=10))
        await report(service, host)
        await sweep_usage.run(clock())
    [moved] = [b for b in await service.list_bookings(BOB) if b.id == waiting.id]
    assert moved.start == T0 + timedelta(minutes=50)


async def test_keeping_an_idle_booking_stops_the_release(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    service.config = replace(service.config, usage=UsageConfig(idle_release=timedelta(minutes=1)))
    host = await setup(service, admin)
    for _ in range(4):
        clock.advance(timedelta(minutes=10))
        await report(service, host)
        await sweep(service)
    [dm] = await notices(service, NoticeKind.IDLE)
    kept = await service.settle_usage_episode(ALICE, dm.details["episode"])
    assert kept.booking_id == 1
    clock.advance(timedelta(minutes=10))
    await report(service, host)
    await sweep(service)
    assert [b.status for b in await service.list_bookings(ALICE)] == [BookingStatus.ACTIVE]


async def test_a_silent_host_is_told_to_admins_once_per_silence(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    host = await setup(service, admin, book_gb=None)
    await report(service, host)
    clock.advance(timedelta(seconds=46))
    await sweep(service)
    await sweep(service)
    [told] = await notices(service, NoticeKind.SILENT_HOST)
    assert told.channel == ADMIN and told.details == {"host": "gpu-host-1", "since": T0.isoformat()}
    await report(service, host)
    clock.advance(timedelta(minutes=5))
    await sweep(service)
    assert len(await notices(service, NoticeKind.SILENT_HOST)) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_replicas_sweeping_together_tell_once(
    service: BookingService, admin: Actor, clock: FrozenClock, backend: str, tmp_path
) -> None:
    host = await setup(service, admin)
    for _ in range(2):
        await report(service, host, alice=22 * GB)
        clock.advance(timedelta(seconds=15))
    other = Database(service.db.url) if backend == "sqlite" else pg_database(service.db.url)
    try:
        await asyncio.gather(
            reconcile_usage(service.db, service.config, clock()),
            reconcile_usage(other, service.config, clock()),
        )
    finally:
        await other.dispose()
    assert len(await notices(service, NoticeKind.OVERUSE)) == 1


async def test_cards_read_in_slices_are_each_reconciled_and_only_theirs_cleared(
    service: BookingService, admin: Actor, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads the fleet a few cards at a time and works out again, under the lock,
    only the cards it found something on: the first and last slices' findings are both told
    once, and a finding that clears on one card leaves the other's episode alone."""
    monkeypatch.setattr(reconcile_sweep, "SLICE", 2)
    await service.link_login(BOB, "bob")
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    host = await service.authenticate_agent(secret)
    assert host is not None
    for n in range(5):
        await service.add_gpu(admin, f"rtx-{n}", "24GB")
        await service.edit_gpu(admin, f"rtx-{n}", device_uuid=f"{UUID}-{n}")

    async def fleet(**bob_gb: int) -> None:
        cards = tuple(
            DeviceReading(
                f"{UUID}-{n}",
                n,
                "RTX 4090",
                24 * GB,
                bob_gb.get(f"rtx_{n}", 0) * GB,
                (ProcessReading(7, "bob", bob_gb[f"rtx_{n}"] * GB),)
                if f"rtx_{n}" in bob_gb
                else (),
            )
            for n in range(5)
        )
        await service.ingest_report(host, Report("gpu-host-1", clock(), cards))
        clock.advance(timedelta(seconds=15))

    for _ in range(2):
        await fleet(rtx_0=5, rtx_4=3)
    await sweep(service)
    await sweep(service)
    told = await notices(service, NoticeKind.UNBOOKED)
    assert sorted(dm.details["gpu"] for dm in told) == ["rtx-0", "rtx-4"]
    await fleet(rtx_4=3)
    await sweep(service)
    async with service.db.read() as session:
        left = list(await session.scalars(select(UsageEpisode)))
    assert [e.details["gpu"] for e in left] == ["rtx-4"]
