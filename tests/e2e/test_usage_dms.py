"""Live-usage DMs end to end: the sweep's reconciliation posts through the notifier to the fake
Slack, every payload valid Block Kit, and each button does what it says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.booking import Actor
from bot.core.agent_report import DeviceReading, ProcessReading, Report
from bot.core.vocabulary import BookingStatus
from bot.lifecycle.notifier import Notifier
from bot.lifecycle.reconcile_sweep import reconcile_usage
from bot.runtime.slack_client import build_client
from handlers import ids
from handlers.blocks.notifications import render as render_notices
from tests.e2e.conftest import TEAM, Bot, dump

GB = 1024
UUID = "GPU-00000000-aaaa"


async def _setup(bot: Bot) -> Any:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.service.edit_gpu(bot.admin, "rtx-0", device_uuid=UUID)
    for user, login in (("UA", "alice"), ("UB", "bob")):
        await bot.service.link_login(Actor(user, TEAM), login)
    _, secret = await bot.service.create_agent_token(bot.admin, "gpu-host-1")
    return await bot.service.authenticate_agent(secret)


async def _report(bot: Bot, host: Any, **mib: int) -> None:
    processes = tuple(ProcessReading(n, login, m) for n, (login, m) in enumerate(mib.items(), 1))
    card = DeviceReading(UUID, 0, "RTX", 24 * GB, sum(mib.values()), processes)
    await bot.service.ingest_report(host, Report("gpu-host-1", bot.service.clock(), (card,)))


async def _sweep_and_post(bot: Bot) -> None:
    service = bot.service
    await reconcile_usage(service.db, service.config, service.clock())
    client = build_client("xoxb-test", bot.fake.base_url)
    await Notifier(service.db, client, service.clock, render=render_notices).flush()


def _buttons(bot: Bot, user: str) -> dict[str, str]:
    """The action ids and values of the buttons in the DMs posted to ``user``."""
    found = {}
    for call in bot.fake.calls_to("chat.postMessage"):
        if call.params["channel"] != user:
            continue
        for block in call.params["blocks"]:
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    found[element["action_id"]] = element["value"]
    return found


async def test_over_use_and_unbooked_use_dm_once_and_their_buttons_fix_it(bot: Bot) -> None:
    host = await _setup(bot)
    await bot.command("book rtx-0 10GB now for 3h train", user="UA")
    for _ in range(2):
        bot.service.clock.advance(timedelta(seconds=15))
        await _report(bot, host, alice=15 * GB, bob=3 * GB)
    await _sweep_and_post(bot)
    await _sweep_and_post(bot)  # nothing new: the episodes are open
    dms = [c for c in bot.fake.calls_to("chat.postMessage") if c.params["channel"] in ("UA", "UB")]
    assert sorted(c.params["channel"] for c in dms) == ["UA", "UB"]
    to_alice = dump(next(c for c in dms if c.params["channel"] == "UA"))
    assert "use 15 GB, but your bookings there hold 10 GB" in to_alice
    assert "Raising booking #1 to 15 GB fits now." in to_alice
    to_bob = dump(next(c for c in dms if c.params["channel"] == "UB"))
    assert "you have no booking there" in to_bob and "Book 3 GB until" in to_bob

    alice, bob = _buttons(bot, "UA"), _buttons(bot, "UB")
    raised = await bot.click(ids.USAGE_RAISE, alice[ids.USAGE_RAISE], user="UA")
    assert "Raised to 15 GB" in dump(raised)
    booked = await bot.click(ids.BOOK_SLOT, bob[ids.BOOK_SLOT], user="UB")
    assert "Booked" in dump(booked)
    mine = {b.user_id: b.memory_mib for b in await bot.bookings(BookingStatus.ACTIVE)}
    assert mine == {"UA": 15 * GB, "UB": 3 * GB}
    dismissed = await bot.click(ids.USAGE_DISMISS, alice[ids.USAGE_DISMISS], user="UA")
    assert "Dismissed" in dump(dismissed)
    forged = await bot.click(ids.USAGE_DISMISS, alice[ids.USAGE_DISMISS], user="UB")
    assert "Only gpubook admins can answer for someone else" in dump(forged)


async def test_an_idle_booking_dm_offers_release_and_keep(bot: Bot) -> None:
    host = await _setup(bot)
    await bot.command("book rtx-0 10GB now for 3h train", user="UA")
    for _ in range(4):
        bot.service.clock.advance(timedelta(minutes=10))
        await _report(bot, host)
        await _sweep_and_post(bot)
    [dm] = [c for c in bot.fake.calls_to("chat.postMessage") if c.params["channel"] == "UA"]
    assert "has had no process of yours for 30m" in dump(dm)
    buttons = _buttons(bot, "UA")
    kept = await bot.click(ids.USAGE_KEEP, buttons[ids.USAGE_KEEP], user="UA")
    assert "Kept: booking #1 stays yours" in dump(kept)
    released = await bot.click(ids.RELEASE, buttons[ids.RELEASE], user="UA")
    assert "Released" in dump(released)
    gone = await bot.click(ids.USAGE_KEEP, "999", user="UA")
    assert "That has cleared already" in dump(gone)
