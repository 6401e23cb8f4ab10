"""The Slack side of host agents: binding a GPU to its card, and the cards bound to none."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.booking import Actor
from bot.core.agent_report import DeviceReading, Report
from bot.core.errors import InputError
from handlers.command_parser import parse_command
from handlers.commands.syntax import AdminDevices, AdminGpuEdit
from tests.conftest import ADMIN, T0, said
from tests.e2e.conftest import Bot, dump

UUID = "GPU-8f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
_NOW, _UTC = datetime(2026, 1, 5, 8, tzinfo=UTC), ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (f"admin gpu edit RTX-0 uuid {UUID}", AdminGpuEdit("rtx-0", device_uuid=UUID)),
        ("admin gpu edit rtx-0 uuid NONE", AdminGpuEdit("rtx-0", device_uuid="")),
        ("admin devices", AdminDevices()),
    ],
)
def test_binding_and_devices_parse(text: str, command: object) -> None:
    assert parse_command(text, now=_NOW, tz=_UTC) == command


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("admin gpu edit rtx-0 uuid 8f1c", "`8f1c` is not a device UUID"),
        (f"admin gpu edit rtx-0 uuid {UUID} extra", "Say what to change"),
        ("admin devices all", "takes nothing after it"),
    ],
)
def test_binding_and_devices_refusals(text: str, phrase: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_command(text, now=_NOW, tz=_UTC)
    assert phrase in said(caught.value)


async def _report(bot: Bot) -> None:
    _, secret = await bot.service.create_agent_token(bot.admin, "gpu-host-1")
    identity = await bot.service.authenticate_agent(secret)
    card = DeviceReading(UUID, 0, "NVIDIA A100-SXM4-80GB", 81920, 0)
    await bot.service.ingest_report(identity, Report("gpu-host-1", T0, (card,)))


async def test_admins_see_unbound_cards_with_commands_that_work_as_shown(bot: Bot) -> None:
    await _report(bot)
    listing = await bot.command("admin devices", user=ADMIN)
    shown = dump(listing)
    add = "/gpubook admin gpu add gpu-host-1-0 80GB"
    bind = f"/gpubook admin gpu edit gpu-host-1-0 uuid {UUID}"
    assert add in shown and bind in shown and "gpu-host-1" in shown
    await bot.command(add.removeprefix("/gpubook "), user=ADMIN)
    await bot.command(bind.removeprefix("/gpubook "), user=ADMIN)
    [gpu] = await bot.service.list_gpus(bot.admin)
    assert (gpu.name, gpu.capacity_mib, gpu.device_uuid) == ("gpu-host-1-0", 81920, UUID)
    after = await bot.command("admin devices", user=ADMIN)
    assert "Every card that reports is bound to a GPU." in dump(after)


async def test_only_admins_list_devices_or_bind(bot: Bot) -> None:
    await bot.add_gpu()
    for text in ("admin devices", f"admin gpu edit rtx-0 uuid {UUID}"):
        reply = await bot.command(text, user="UA")
        assert "Only gpubook admins" in reply.params["text"], text
    [gpu] = await bot.service.list_gpus(bot.admin)
    assert gpu.device_uuid is None


async def test_people_link_their_logins_and_admins_move_them(bot: Bot) -> None:
    linked = await bot.command("link alice", user="UA")
    assert "Linked the Unix login `alice` to you" in linked.params["text"]
    taken = await bot.command("link alice", user="UB")
    assert "`alice` is linked to <@UA>" in dump(taken)
    mine = await bot.command("link", user="UA")
    assert "Your Unix logins: `alice`." in mine.params["text"]
    moved = await bot.command("admin link <@UB|bob> alice", user=ADMIN)
    assert moved.params["text"] == "Linked the Unix login `alice` to <@UB>."
    assert await bot.service.logins_of(bot.admin, "UB") == ["alice"]
    gone = await bot.command("unlink alice", user="UB")
    assert gone.params["text"] == "Unlinked the Unix login `alice` from <@UB>."
    refused = await bot.command("admin link alice", user=ADMIN)
    assert "Mention the person, then the login" in dump(refused)


async def test_status_shows_booked_against_measured_and_silent_cards(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("rtx-1", "24GB")
    for name, uuid in (("rtx-0", UUID), ("rtx-1", "GPU-1111")):
        await bot.service.edit_gpu(bot.admin, name, device_uuid=uuid)
    await bot.command("book rtx-0 18GB now for 2h train", user="UA")
    _, secret = await bot.service.create_agent_token(bot.admin, "gpu-host-1")
    identity = await bot.service.authenticate_agent(secret)
    cards = (
        DeviceReading(UUID, 0, "RTX", 24576, 21 * 1024),
        DeviceReading("GPU-1111", 1, "RTX", 24576, 0),
    )
    await bot.service.ingest_report(identity, Report("gpu-host-1", T0, cards))
    status = dump(await bot.command("status"))
    assert "18/24 GB" in status and "in use 21 GB :warning:" in status
    assert "in use 0 GB" in status
    today = dump(await bot.command("calendar rtx-0"))
    # The hour of "now" carries what the card measures; other hours and days do not.
    assert today.count("· now in use 21 GB ⚠") == 1
    assert "Now: held 18/24 GB · in use 21 GB :warning:" in today
    week = dump(await bot.command("calendar rtx-0 week"))
    assert week.count("· now in use 21 GB ⚠") == 1
    tomorrow = dump(await bot.command("calendar rtx-0 tomorrow"))
    assert "in use" not in tomorrow and "Now:" not in tomorrow
    bot.service.clock.advance(bot.service.config.usage.silent_after * 2)
    later = dump(await bot.command("status"))
    assert later.count("no live data since <!date^") == 2
    silent = dump(await bot.command("calendar rtx-1"))
    assert "· now no live data" in silent and "no live data since <!date^" in silent


async def test_admin_stats_show_measured_beside_booked(bot: Bot) -> None:
    from datetime import timedelta

    from bot.core.agent_report import ProcessReading

    await bot.add_gpu("rtx-0", "24GB")
    await bot.service.edit_gpu(bot.admin, "rtx-0", device_uuid=UUID)
    await bot.service.link_login(Actor("UA", bot.admin.team_id), "alice")
    _, secret = await bot.service.create_agent_token(bot.admin, "gpu-host-1")
    identity = await bot.service.authenticate_agent(secret)
    for _ in range(3):  # each report after the first counts the 15 s since the one before
        card = DeviceReading(
            UUID, 0, "RTX", 24576, 12 * 1024, (ProcessReading(1, "alice", 12 * 1024),)
        )
        await bot.service.ingest_report(
            identity, Report("gpu-host-1", bot.service.clock(), (card,))
        )
        bot.service.clock.advance(timedelta(seconds=15))
    stats = dump(await bot.command("admin stats 1", user=ADMIN))
    assert '"text": "Utilisation over 1 day"' in stats
    assert "`rtx-0` 0.0 / 576.0 GB·h (0.0%) · 0 bookings · used 0.1 GB·h" in stats
    assert "<@UA> 0.0 GB·h · 0 bookings · used 0.1 GB·h" in stats
    assert "Used: what host agents measured on bound cards" in stats
