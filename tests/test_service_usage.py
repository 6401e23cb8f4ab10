"""Logins linked to people, and measured use per GPU, in the service (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.clock import FrozenClock
from bot.core.errors import InputError, NotFound, PermissionDenied
from bot.core.usage import LoginLink
from tests.conftest import T0, refused

ALICE, BOB = Actor("UALICE"), Actor("UBOB")
UUID = "GPU-00000000-aaaa"


async def test_a_login_is_one_persons_and_admins_may_move_it(
    service: BookingService, admin: Actor
) -> None:
    assert await service.link_login(ALICE, "alice") == LoginLink("alice", "UALICE")
    assert await service.link_login(ALICE, "alice") == LoginLink("alice", "UALICE")
    with refused(PermissionDenied, "`alice` is linked to <@UALICE>"):
        await service.link_login(BOB, "alice")
    with refused(PermissionDenied, "Only gpubook admins can link logins for someone else"):
        await service.link_login(BOB, "bob", "UALICE")
    assert await service.link_login(admin, "alice", "UBOB") == LoginLink("alice", "UBOB")
    assert await service.logins_of(ALICE) == []
    assert await service.logins_of(BOB) == ["alice"]
    with refused(PermissionDenied, "Only gpubook admins can unlink someone else's login"):
        await service.unlink_login(ALICE, "alice")
    await service.unlink_login(BOB, "alice")
    with refused(NotFound, "`alice` is not linked to anyone"):
        await service.unlink_login(admin, "alice")
    entries = [(e.action, e.details) for e in reversed(await service.audit_log(admin))]
    assert entries == [
        ("link_set", {"login": "alice", "user": "UALICE", "previous": None}),
        ("link_set", {"login": "alice", "user": "UBOB", "previous": "UALICE"}),
        ("link_clear", {"login": "alice", "user": "UBOB"}),
    ]


async def test_a_login_must_read_as_one(service: BookingService) -> None:
    for wrong in ("?", "al ice", "", "x" * 80):
        with refused(InputError, "is not a Unix login"):
            await service.link_login(ALICE, wrong)


async def test_live_cards_hold_booked_against_measured_and_go_silent(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.add_gpu(admin, "rtx-1", "24GB")
    await service.edit_gpu(admin, "rtx-0", device_uuid=UUID)
    await service.create(
        ALICE, gpu="rtx-0", memory="18GB", start=T0, end=T0 + timedelta(hours=2), task="t"
    )
    await service.link_login(ALICE, "alice")
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    host = await service.authenticate_agent(secret)
    processes = (ProcessReading(1, "alice", 21 * 1024), ProcessReading(2, "mallory", 100))
    card = DeviceReading(UUID, 0, "RTX 4090", 24564, 21 * 1024 + 100, processes)
    await service.ingest_report(host, Report("gpu-host-1", T0, (card,)))
    live = await service.live_cards(admin)
    assert list(live) == ["rtx-0"]  # rtx-1 has no card reporting for it
    rtx0 = live["rtx-0"]
    assert (rtx0.held_mib, rtx0.used_mib, rtx0.over, rtx0.silent) == (18432, 21604, True, False)
    assert rtx0.unlinked == ("mallory",)
    clock.advance(service.config.usage.silent_after + timedelta(seconds=1))
    later = (await service.live_cards(admin))["rtx-0"]
    assert later.silent and not later.over and later.reported_at == T0


async def test_stats_put_measured_gb_hours_beside_booked_ones_for_the_window(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    """Measured GB·h per GPU, per person (through their logins) and per unlinked login, summed
    from the samples of the window and the hourly rows rolled up before it."""
    from bot.lifecycle.usage_rollup import roll_up

    gb = 1024
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.add_gpu(admin, "rtx-1", "24GB")  # bound to no card: nothing to measure
    await service.edit_gpu(admin, "rtx-0", device_uuid=UUID)
    await service.link_login(ALICE, "alice")
    await service.create(
        ALICE, gpu="rtx-0", memory="20GB", start=T0, end=T0 + timedelta(hours=4), task="t"
    )
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    host = await service.authenticate_agent(secret)
    # Reports every 15 minutes (each sample counts the seconds since the one before, capped at
    # the silence threshold), from T0 to T0+4h: alice 6 GB, mallory (unlinked) 1 GB, and a
    # process whose memory NVML cannot tell.
    for _ in range(17):
        processes = (
            ProcessReading(1, "alice", 6 * gb),
            ProcessReading(2, "mallory", gb),
            ProcessReading(3, "bob", None),
        )
        card = DeviceReading(UUID, 0, "RTX 4090", 24564, 7 * gb, processes)
        await service.ingest_report(host, Report("gpu-host-1", clock(), (card,)))
        clock.advance(timedelta(minutes=15))
    gap = min(15 * 60, int(service.config.usage.silent_after.total_seconds()))
    hour = 4 * gap  # seconds measured per hour of reports

    def gbh(gb_hours: float, per: int = 3600) -> int:
        return int(gb_hours * gb * per)

    window = (T0, T0 + timedelta(hours=5))
    stats = await service.utilisation(admin, *window)
    rtx0, rtx1 = stats.per_gpu
    assert (rtx0.key, rtx0.booked_mib_s) == ("rtx-0", gbh(80))
    assert rtx0.measured_mib_s == 7 * gb * 16 * gap and rtx1.measured_mib_s is None
    (alice,) = stats.per_user
    assert (alice.key, alice.measured_mib_s) == ("UALICE", 6 * gb * 16 * gap)
    assert [(u.key, u.measured_mib_s) for u in stats.unlinked] == [("mallory", gb * 16 * gap)]
    assert stats.total.measured_mib_s == rtx0.measured_mib_s
    # The window decides the cost, not the history: the last hour alone (4 samples in it).
    last = await service.utilisation(admin, T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    assert last.per_gpu[0].measured_mib_s == 7 * gb * hour
    # Rolled up into hours, the same window sums to the same.
    assert await roll_up(service.db, T0 + timedelta(days=30), timedelta(hours=1)) == 17
    again = await service.utilisation(admin, *window)
    assert again.per_gpu[0].measured_mib_s == rtx0.measured_mib_s
    assert again.per_user[0].measured_mib_s == alice.measured_mib_s
    assert again.unlinked == stats.unlinked
