"""Unix logins linked by e-mail (GPUBOOK_LINK_BY_EMAIL): found through Slack's
users.lookupByEmail, audited, never over a link someone made (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.clock import FrozenClock
from bot.lifecycle.email_links import RETRY_AFTER, EmailLinker
from bot.lifecycle.routing import OneClient
from bot.lifecycle.scheduler import start_lifecycle
from handlers.blocks.notifications import render as render_notices
from tests.slackfake import FakeSlackWebAPI

BOB = Actor("UBOB")


async def _report(service: BookingService, admin: Actor, *logins: str) -> None:
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    identity = await service.authenticate_agent(secret)
    processes = tuple(ProcessReading(i, login, 1024) for i, login in enumerate(logins))
    card = DeviceReading("GPU-1", 0, "RTX", 24564, 1024 * len(logins), processes)
    await service.ingest_report(identity, Report("gpu-host-1", service.clock(), (card,)))


async def test_unlinked_logins_are_linked_to_the_member_with_that_address(
    service: BookingService, admin: Actor, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    await service.link_login(BOB, "bob")  # linked by hand: an e-mail never moves it
    await _report(service, admin, "alice", "bob", "carol", "robot")
    async with FakeSlackWebAPI() as fake:
        fake.set_user("UALICE", email="Alice@Example.org")  # addresses compare case-blind
        fake.set_user("UOTHERBOB", email="bob@example.org")
        fake.set_user("UROBOT", email="robot@example.org", is_bot=True)
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        linker = EmailLinker(service.db, OneClient(client), "example.org")
        assert await linker.run(clock()) == 1
        asked = sorted(c.params["email"] for c in fake.calls_to("users.lookupByEmail"))
        assert asked == ["alice@example.org", "carol@example.org", "robot@example.org"]
        assert await service.logins_of(Actor("UALICE")) == ["alice"]
        assert await service.logins_of(BOB) == ["bob"]
        assert await service.logins_of(Actor("UROBOT")) == []
        entry = (await service.audit_log(admin))[0]
        assert (entry.actor, entry.action) == ("gpubook", "link_set")
        assert entry.details == {
            "login": "alice",
            "user": "UALICE",
            "previous": None,
            "via": "email",
            "email": "alice@example.org",
        }
        # Not found: not asked again at once; asked again later (carol may have joined).
        fake.clear()
        assert await linker.run(clock()) == 0
        assert fake.calls_to("users.lookupByEmail") == []
        fake.set_user("UCAROL", email="carol@example.org")
        clock.advance(RETRY_AFTER)
        # carol and the bot are due again: both lookups fail, and it is logged once.
        fake.fail_next("users.lookupByEmail", error="missing_scope", times=2)
        with caplog.at_level(logging.WARNING):
            assert await linker.run(clock()) == 0
        assert [r.getMessage() for r in caplog.records].count(
            "linking logins by e-mail: users.lookupByEmail failed: missing_scope"
        ) == 1
        clock.advance(RETRY_AFTER)
        assert await linker.run(clock()) == 1
        assert await service.logins_of(Actor("UCAROL")) == ["carol"]


async def test_the_sweep_links_by_email_only_when_configured(
    service: BookingService, admin: Actor, clock: FrozenClock
) -> None:
    await _report(service, admin, "alice")
    async with FakeSlackWebAPI() as fake:
        fake.set_user("UALICE", email="alice@example.org")
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        off = await start_lifecycle(
            service.db, client, service.config, clock, render=render_notices
        )
        await off.shutdown()
        assert (await off.sweep()).usage.linked == 0
        assert fake.calls_to("users.lookupByEmail") == []
        usage = replace(service.config.usage, link_email_domain="example.org")
        config = replace(service.config, usage=usage)
        on = await start_lifecycle(service.db, client, config, clock, render=render_notices)
        await on.shutdown()
        assert (await on.sweep()).usage.linked == 1
    assert await service.logins_of(Actor("UALICE")) == ["alice"]
