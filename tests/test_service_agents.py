"""Host agents in the service: tokens, reports stored (or not at all), binding cards to GPUs.

On a real SQLite file and on PostgreSQL, like every service test."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.clock import FrozenClock
from bot.core.errors import InputError, NotFound, PermissionDenied, Unauthorized
from bot.core.usage import HostIdentity, IngestResult
from storage.models import AgentDevice, AgentHost, AuditEntry, UsageSample
from tests.conftest import T0, refused

UUID0 = "GPU-00000000-aaaa"
UUID1 = "GPU-11111111-bbbb"


def reading(uuid: str = UUID0, used: int = 9000, *procs: ProcessReading) -> DeviceReading:
    return DeviceReading(uuid, 0, "NVIDIA RTX 4090", 24564, used, procs)


def report(*devices: DeviceReading, host: str = "gpu-host-1") -> Report:
    return Report(host, T0, devices)


async def identity(service: BookingService, admin: Actor, host: str = "gpu-host-1"):
    _, secret = await service.create_agent_token(admin, host)
    found = await service.authenticate_agent(secret)
    assert found is not None
    return found


async def count(service: BookingService, model: type) -> int:
    async with service.db.read() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_token_is_shown_once_stored_hashed_and_authenticates_its_host(
    service: BookingService, admin: Actor
) -> None:
    token, secret = await service.create_agent_token(admin, "gpu-host-1")
    assert secret.startswith("gpb_") and len(secret) > 40
    assert await service.authenticate_agent(secret) == HostIdentity(
        token.id, admin.team_id, "gpu-host-1"
    )
    async with service.db.read() as session:
        stored = await session.scalar(select(AuditEntry.details))
    assert secret not in str(stored)
    assert await service.authenticate_agent(secret + "x") is None
    assert [t.host for t in await service.agent_tokens(admin)] == ["gpu-host-1"]


async def test_revoking_by_id_or_host_stops_the_token_and_is_audited(
    service: BookingService, admin: Actor
) -> None:
    first, one = await service.create_agent_token(admin, "gpu-host-1")
    _, two = await service.create_agent_token(admin, "gpu-host-1")
    _, other = await service.create_agent_token(admin, "gpu-host-2")
    [revoked] = await service.revoke_agent_token(admin, str(first.id))
    assert revoked.revoked_at == T0
    assert await service.authenticate_agent(one) is None
    assert await service.authenticate_agent(two) is not None
    await service.revoke_agent_token(admin, "gpu-host-1")
    assert await service.authenticate_agent(two) is None
    assert await service.authenticate_agent(other) is not None
    with refused(NotFound, "no active agent token `gpu-host-1`"):
        await service.revoke_agent_token(admin, "gpu-host-1")
    audit = await service.audit_log(admin)
    assert [e.action for e in audit].count("agent_token_revoke") == 2


async def test_only_admins_manage_tokens(service: BookingService) -> None:
    user = Actor("UALICE")
    with refused(PermissionDenied, "Only gpubook admins can create agent tokens"):
        await service.create_agent_token(user, "gpu-host-1")
    with pytest.raises(PermissionDenied):
        await service.agent_tokens(user)
    with pytest.raises(PermissionDenied):
        await service.unbound_devices(user)


async def test_a_host_name_must_read_as_one(service: BookingService, admin: Actor) -> None:
    with refused(InputError, "can't be a host name"):
        await service.create_agent_token(admin, "gpu host")


async def test_a_report_updates_each_card_and_adds_one_compact_sample_per_card(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    host = await identity(service, admin)
    first = reading(UUID0, 9000, ProcessReading(1, "alice", 8000), ProcessReading(2, None, 500))
    result = await service.ingest_report(host, report(first, reading(UUID1, 0)))
    assert (result.devices, result.unbound) == (2, (UUID0, UUID1))
    clock.advance(timedelta(seconds=15))
    again = reading(UUID0, 3000, ProcessReading(3, "bob", None))
    await service.ingest_report(host, report(again))
    clock.advance(timedelta(hours=1))
    await service.ingest_report(host, report(again))
    async with service.db.read() as session:
        device = await session.scalar(select(AgentDevice).where(AgentDevice.uuid == UUID0))
        samples = list(
            await session.execute(
                select(UsageSample.seconds, UsageSample.used_mib, UsageSample.users)
                .where(UsageSample.device_id == device.id)
                .order_by(UsageSample.id)
            )
        )
        host_row = await session.get(AgentHost, (admin.team_id, "gpu-host-1"))
    assert device.users == {"bob": None} and device.prev_users == {"bob": None}
    assert set(device.seen) == {"alice", "?", "bob"}
    assert device.seen["alice"] == T0.isoformat()
    # The first sample of a card covers nothing; a gap longer than 3 intervals counts as 45 s.
    assert [tuple(s) for s in samples] == [
        (0, 9000, {"alice": 8000, "?": 500}),
        (15, 3000, {"bob": None}),
        (45, 3000, {"bob": None}),
    ]
    assert host_row.last_report_at == clock()


async def test_a_report_without_cards_is_stored_and_keeps_its_host_from_falling_silent(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    """A host whose cards all fell off (or that has none yet) still reports, with no devices."""
    host = await identity(service, admin)
    await service.ingest_report(host, report(reading()))
    clock.advance(timedelta(seconds=15))
    result = await service.ingest_report(host, report())
    assert (result.devices, result.unbound) == (0, ())
    async with service.db.read() as session:
        host_row = await session.get(AgentHost, (admin.team_id, "gpu-host-1"))
    assert host_row.last_report_at == clock()
    assert await count(service, UsageSample) == 1


async def test_a_report_about_another_host_is_refused_and_stores_nothing(
    service: BookingService, admin: Actor
) -> None:
    host = await identity(service, admin)
    with refused(PermissionDenied, "issued for host `gpu-host-1`, not `gpu-host-2`"):
        await service.ingest_report(host, report(reading(), host="gpu-host-2"))
    assert await count(service, UsageSample) == 0
    assert await count(service, AgentDevice) == 0


async def test_binding_a_card_takes_it_off_the_unbound_list(
    service: BookingService, admin: Actor
) -> None:
    host = await identity(service, admin)
    await service.ingest_report(host, report(reading(UUID0), reading(UUID1)))
    assert [d.uuid for d in await service.unbound_devices(admin)] == [UUID0, UUID1]
    await service.add_gpu(admin, "rtx-0", "24GB")
    gpu = await service.edit_gpu(admin, "rtx-0", device_uuid=UUID0)
    assert gpu.device_uuid == UUID0
    assert [d.uuid for d in await service.unbound_devices(admin)] == [UUID1]
    result = await service.ingest_report(host, report(reading(UUID0), reading(UUID1)))
    assert result.unbound == (UUID1,)
    unbound = await service.edit_gpu(admin, "rtx-0", device_uuid="")
    assert unbound.device_uuid is None
    assert len(await service.unbound_devices(admin)) == 2


async def test_a_card_binds_to_one_gpu_and_a_uuid_must_read_as_one(
    service: BookingService, admin: Actor
) -> None:
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.add_gpu(admin, "rtx-1", "24GB")
    await service.edit_gpu(admin, "rtx-0", device_uuid=UUID0)
    with refused(InputError, f"`{UUID0}` is already bound to `rtx-0`"):
        await service.edit_gpu(admin, "rtx-1", device_uuid=UUID0)
    with refused(InputError, "`8f1c` is not a device UUID"):
        await service.edit_gpu(admin, "rtx-1", device_uuid="8f1c")
    assert (await service.edit_gpu(admin, "rtx-0", device_uuid=UUID0)).device_uuid == UUID0


async def test_a_card_its_host_still_reports_cannot_be_claimed_by_another(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    first = await identity(service, admin)
    second = await identity(service, admin, "gpu-host-2")
    await service.ingest_report(first, report(reading(UUID0)))
    clock.advance(service.config.usage.silent_after)  # gpu-host-1 reported it just this long ago
    with refused(PermissionDenied, "`GPU-00000000-aaaa` is reported by host `gpu-host-1`"):
        await service.ingest_report(
            second, report(reading(UUID1), reading(UUID0), host="gpu-host-2")
        )
    assert (await count(service, UsageSample), await count(service, AgentDevice)) == (1, 1)
    async with service.db.read() as session:
        assert await session.get(AgentHost, (admin.team_id, "gpu-host-2")) is None
    clock.advance(timedelta(seconds=1))  # silent longer than that: the card has moved
    await service.ingest_report(second, report(reading(UUID0), host="gpu-host-2"))
    async with service.db.read() as session:
        device = await session.scalar(select(AgentDevice).where(AgentDevice.uuid == UUID0))
    assert device.host == "gpu-host-2"


async def test_reports_arriving_together_each_get_their_own_answer_and_a_refused_one_stores_nothing(
    service: BookingService, admin: Actor
) -> None:
    await service.add_gpu(admin, "rtx-0", "24GB")
    await service.edit_gpu(admin, "rtx-0", device_uuid=UUID0)
    booking = await service.create(
        Actor("UALICE"), gpu="rtx-0", memory="8GB", start=T0, end=T0 + timedelta(hours=1), task="t"
    )
    one, two, three, four = [await identity(service, admin, f"gpu-host-{n}") for n in range(1, 5)]
    await service.ingest_report(one, report(reading(UUID0)))
    await service.revoke_agent_token(admin, "gpu-host-4")
    # Stored together (group commit), except host 2's, which shares a card and waits its turn.
    results = await asyncio.gather(
        service.ingest_report(one, report(reading(UUID0))),
        service.ingest_report(two, report(reading(UUID1), reading(UUID0), host="gpu-host-2")),
        service.ingest_report(three, report(reading("GPU-33333333-cccc"), host="gpu-host-3")),
        service.ingest_report(  # revoked: refused as such, not told whose card it claims
            four, report(reading("GPU-44444444-dddd"), reading(UUID0), host="gpu-host-4")
        ),
        return_exceptions=True,
    )
    first, claimed, third, revoked = results
    assert isinstance(first, IngestResult) and isinstance(third, IngestResult)
    assert (first.unbound, [b.id for b in first.host_bookings.bookings]) == ((), [booking.id])
    assert [c.gpu for c in first.host_bookings.cards] == ["rtx-0"]
    assert third.unbound == ("GPU-33333333-cccc",) and third.host_bookings.cards == ()
    assert isinstance(claimed, PermissionDenied) and isinstance(revoked, Unauthorized)
    assert (await count(service, UsageSample), await count(service, AgentDevice)) == (3, 2)
    async with service.db.read() as session:
        for refused_host in ("gpu-host-2", "gpu-host-4"):
            assert await session.get(AgentHost, (admin.team_id, refused_host)) is None
    used = {t.host: t.last_used_at for t in await service.agent_tokens(admin)}
    assert (used["gpu-host-2"], used["gpu-host-3"], used["gpu-host-4"]) == (None, T0, None)


async def test_a_tokens_last_use_is_written_once_a_minute_not_at_every_report(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    """A host reports every 15 s and `agent token list` shows its last report to the minute:
    the token's row is written when its last use is a minute old, not by every report."""
    host = await identity(service, admin)

    async def last_used():
        return {t.host: t.last_used_at for t in await service.agent_tokens(admin)}["gpu-host-1"]

    for seconds, expected in [(0, T0), (15, T0), (59, T0), (60, T0 + timedelta(seconds=60))]:
        clock.now = T0 + timedelta(seconds=seconds)
        await service.ingest_report(host, report(reading()))
        assert await last_used() == expected, seconds
    assert await count(service, UsageSample) == 4  # every report stored all the same


async def test_only_reports_are_committed_without_waiting_for_the_flush(
    service: BookingService, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash of the server may lose the last second of reports (the next ones come within an
    interval), never a token, a GPU or a booking (storage.postgres_driver)."""
    durable: list[bool] = []
    write = service.db.write

    def recorded(**options: bool):
        durable.append(options.get("durable", True))
        return write(**options)

    monkeypatch.setattr(service.db, "write", recorded)
    host = await identity(service, admin)
    await service.ingest_report(host, report(reading()))
    await service.add_gpu(admin, "rtx-0", "24GB")
    assert durable[:2] == [True, False]  # the token, the report
    assert len(durable) > 2 and all(durable[2:])  # the GPU
