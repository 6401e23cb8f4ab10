"""`gpubook agent token …`, `gpubook agent devices` and `gpubook gpu edit --uuid`."""

from __future__ import annotations

import asyncio

from bot.booking import BookingService
from bot.core.agent_report import DeviceReading, Report
from bot.runtime.config import Settings
from storage.db import Database
from tests.test_cli import NOW, clean_env, gpubook  # noqa: F401 (the CLI's fixtures)

UUID = "GPU-8f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"


def _report_from(secret: str, host: str = "gpu-host-1") -> None:
    """What the host's agent would do with the token: one report, through the service."""

    async def send() -> None:
        db = Database(Settings.from_env().database_url)
        try:
            service = BookingService(db)
            identity = await service.authenticate_agent(secret)
            assert identity is not None
            card = DeviceReading(UUID, 0, "NVIDIA A100-SXM4-80GB", 81920, 0)
            await service.ingest_report(identity, Report(host, NOW, (card,)))
        finally:
            await db.dispose()

    asyncio.run(send())


def test_a_new_token_is_alone_on_the_last_line_and_listed_without_its_secret(gpubook):  # noqa: F811 (the fixture)
    created = gpubook("agent", "token", "create", "gpu-host-1")
    assert created.code == 0
    secret = created.out.splitlines()[-1]
    assert secret.startswith("gpb_") and " " not in secret
    assert "shown only now" in created.out.splitlines()[0]
    listing = gpubook("agent", "token", "list")
    assert secret not in listing.out
    assert listing.out.splitlines()[1].split()[:2] == ["1", "gpu-host-1"]
    assert "never" in listing.out and "active" in listing.out


def test_revoking_by_host_then_listing_shows_it_revoked(gpubook):  # noqa: F811 (the fixture)
    gpubook("agent", "token", "create", "gpu-host-1")
    revoked = gpubook("agent", "token", "revoke", "gpu-host-1")
    assert (revoked.code, revoked.out) == (0, "Revoked token 1 of gpu-host-1.\n")
    assert "revoked 2026-11-30 08:00 UTC" in gpubook("agent", "token", "list").out
    again = gpubook("agent", "token", "revoke", "1")
    assert again.code == 1 and "There is no active agent token 1" in again.err


def test_unbound_cards_are_listed_with_the_commands_that_bind_them(gpubook):  # noqa: F811 (the fixture)
    secret = gpubook("agent", "token", "create", "gpu-host-1").out.splitlines()[-1]
    _report_from(secret)
    listing = gpubook("agent", "devices")
    assert listing.code == 0
    lines = listing.out.splitlines()
    assert lines[0].startswith(f"gpu-host-1 #0 NVIDIA A100-SXM4-80GB, 80 GB, {UUID}")
    add, bind = lines[1].strip(), lines[2].strip()
    assert add == "gpubook gpu add gpu-host-1-0 80GB"
    assert bind == f"gpubook gpu edit gpu-host-1-0 --uuid {UUID}"
    # The commands it prints work as printed.
    assert gpubook(*add.split()[1:]).code == 0
    bound = gpubook(*bind.split()[1:])
    assert bound.out == f"Updated GPU 'gpu-host-1-0': 80 GB, card {UUID}.\n"
    assert gpubook("agent", "devices").out == "Every reporting card is bound to a GPU.\n"


def test_gpu_edit_uuid_refuses_what_is_not_a_uuid(gpubook):  # noqa: F811 (the fixture)
    gpubook("gpu", "add", "a100", "80GB")
    wrong = gpubook("gpu", "edit", "a100", "--uuid", "0")
    assert wrong.code == 1 and "0 is not a device UUID" in wrong.err


def test_usage_settings_refuse_what_does_not_read():
    import pytest

    from bot.core.errors import InputError

    for env, phrase in (
        ({"GPUBOOK_USAGE_TOLERANCE": "lots"}, "GPUBOOK_USAGE_TOLERANCE='lots' is not a size"),
        ({"GPUBOOK_AGENT_URL": "gpubook:3000"}, "GPUBOOK_AGENT_URL='gpubook:3000' is not"),
        ({"GPUBOOK_IDLE_RELEASE": "soon"}, "GPUBOOK_IDLE_RELEASE='soon' is not a duration"),
        ({"GPUBOOK_LINK_BY_EMAIL": "true"}, "needs GPUBOOK_LINK_EMAIL_DOMAIN"),
        (
            {"GPUBOOK_LINK_BY_EMAIL": "true", "GPUBOOK_LINK_EMAIL_DOMAIN": "alice@example.org"},
            "needs GPUBOOK_LINK_EMAIL_DOMAIN.*got 'alice@example.org'",
        ),
        ({"GPUBOOK_LINK_BY_EMAIL": "maybe"}, "GPUBOOK_LINK_BY_EMAIL='maybe' is not valid"),
    ):
        with pytest.raises(InputError, match=phrase):
            Settings.from_env(env)
    assert Settings.from_env({"GPUBOOK_IDLE_RELEASE": "off"}).usage.idle_release is None
    on = {"GPUBOOK_LINK_BY_EMAIL": "true", "GPUBOOK_LINK_EMAIL_DOMAIN": "@Lab.Example.org"}
    assert Settings.from_env(on).service_config().usage.link_email_domain == "lab.example.org"
    off = {"GPUBOOK_LINK_EMAIL_DOMAIN": "example.org"}  # the domain alone turns nothing on
    assert Settings.from_env(off).usage.link_email_domain is None


def test_link_and_unlink_logins(gpubook):  # noqa: F811 (the fixture)
    assert gpubook("link", "U123", "alice").out == "Linked alice to U123.\n"
    assert gpubook("link", "U456", "alice").out == "Linked alice to U456.\n"  # an admin moves it
    assert gpubook("unlink", "alice").out == "Unlinked alice from U456.\n"
    again = gpubook("unlink", "alice")
    assert again.code == 1 and "alice is not linked to anyone" in again.err
    wrong = gpubook("link", "U123", "al ice")
    assert wrong.code == 1 and "is not a Unix login" in wrong.err


def test_stats_put_measured_gb_hours_beside_booked_ones(gpubook):  # noqa: F811 (the fixture)
    """`gpubook stats` reads as Slack's `admin stats`: booked, then used, per GPU and user (the
    wording of each line, booked against used, is tested once in test_blocks)."""
    from datetime import timedelta

    from bot.core.agent_report import ProcessReading
    from bot.core.clock import FrozenClock

    gpubook("gpu", "add", "a100", "80GB")
    gpubook("gpu", "edit", "a100", "--uuid", UUID)
    gpubook("link", "U0ALICE", "alice")
    secret = gpubook("agent", "token", "create", "gpu-host-1").out.splitlines()[-1]

    async def report() -> None:
        db = Database(Settings.from_env().database_url)
        try:
            clock = FrozenClock(NOW - timedelta(minutes=30))
            service = BookingService(db, clock=clock)
            identity = await service.authenticate_agent(secret)
            assert identity is not None
            for _ in range(3):  # 0, 30 and 30 seconds counted: 60 s of 6 GB, 60 s of 1 GB
                processes = (ProcessReading(1, "alice", 6144), ProcessReading(2, "eve", 1024))
                card = DeviceReading(UUID, 0, "A100", 81920, 7168, processes)
                await service.ingest_report(identity, Report("gpu-host-1", clock(), (card,)))
                clock.advance(timedelta(seconds=30))
        finally:
            await db.dispose()

    asyncio.run(report())
    out = gpubook("stats", "--days", "1")
    assert out.code == 0, out.err
    lines = out.out.splitlines()
    assert lines[0] == "Utilisation from 2026-11-29 08:00 to 2026-11-30 08:00 UTC"
    assert "  a100 0.0 / 1920.0 GB·h (0.0%) · 0 bookings · used 0.1 GB·h" in lines
    assert "  U0ALICE 0.0 GB·h · 0 bookings · used 0.1 GB·h" in lines  # used, never booked
    assert lines[lines.index("Unix logins nobody linked:") + 1] == "  eve used 0.0 GB·h"
    assert gpubook("stats", "--days", "0").code == 2
