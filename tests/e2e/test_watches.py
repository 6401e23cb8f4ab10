"""`/gpubook notify` end to end: signed commands start, list and cancel a watch; the DM a release
triggers carries a Book button that books the window through the normal path, or, when someone
took it meanwhile, answers with the refusal and its alternatives."""

from __future__ import annotations

import json

from bot.core.vocabulary import BookingStatus
from bot.lifecycle.notifier import Notifier
from handlers import ids
from handlers.blocks.notifications import render
from tests.e2e.conftest import Bot, dump
from tests.e2e.test_buttons import buttons
from tests.e2e.test_ops import fake_client
from tests.slackfake.webapi import Call


async def dm_to(bot: Bot, user: str) -> Call:
    """Post the outbox, and return the one DM to ``user``."""
    notifier = Notifier(bot.service.db, fake_client(bot.fake), bot.service.clock, render=render)
    await notifier.flush(bot.service.clock())
    [dm] = await bot.fake.wait_for(
        "chat.postMessage", predicate=lambda c: c.params.get("channel") == user
    )
    return dm


async def test_notify_then_a_release_sends_one_dm_whose_button_books(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.command("book rtx-0 20GB now for 4h blocker")
    started = await bot.command("notify 10GB for 2h on rtx-* before 11:00 eval", user="UB")
    assert "Watch #1" in dump(started) and "`rtx-*`" in dump(started)
    listed = await bot.command("notify list", user="UB")
    assert "#1: 10 GB for 2h on `rtx-*`" in dump(listed)
    await bot.command("release 1")
    dm = await dm_to(bot, "UB")
    assert "Watch #1: 10 GB for 2h fits on `rtx-0`" in dump(dm)
    [book] = buttons(dm, ids.BOOK_SLOT)
    assert book["text"]["text"] == "Book rtx-0 Mon 08:00–10:00 UTC"
    reply = await bot.click(ids.BOOK_SLOT, book["value"], user="UB")
    assert "Booked #2" in reply.params["text"]
    [booked] = [b for b in await bot.bookings(BookingStatus.ACTIVE) if b.user_id == "UB"]
    assert (booked.task, booked.memory_mib) == ("eval", 10 * 1024)
    assert "not waiting for anything" in dump(await bot.command("notify list", user="UB"))


async def test_the_book_button_is_refused_with_alternatives_if_taken_meanwhile(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.command("book rtx-0 20GB now for 4h blocker")
    await bot.command("notify 10GB for 2h before 11:00", user="UB")
    await bot.command("release 1")
    [book] = buttons(await dm_to(bot, "UB"), ids.BOOK_SLOT)
    await bot.command("book rtx-0 20GB now for 3h quicker", user="UC")
    refused = await bot.click(ids.BOOK_SLOT, book["value"], user="UB")
    assert "Booked" not in refused.params["text"]
    [offer] = buttons(refused, ids.BOOK_SLOT)  # the next window, one click again
    assert json.loads(offer["value"])["start"] > json.loads(book["value"])["start"]


async def test_notify_cancel_and_bad_input(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.command("book rtx-0 24GB now for 4h blocker")
    await bot.command("notify 10GB for 2h before 11:00", user="UB")
    assert "You have no watch #1" in dump(await bot.command("notify cancel 1"))  # not UA's
    assert "Watch #1 cancelled" in dump(await bot.command("notify cancel 1", user="UB"))
    usage = await bot.command("notify 10GB", user="UB")
    assert "/gpubook notify 20GB for 2h" in dump(usage)
    no_length = await bot.command("notify 20GB for", user="UB")  # once an IndexError
    assert "/gpubook notify 20GB for 2h" in dump(no_length)
    too_soon = await bot.command("notify 10GB for 2h before 9:00", user="UB")
    assert "cannot end before" in dump(too_soon)
