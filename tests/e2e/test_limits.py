"""Groups and limits through the real HTTP endpoint: admins set them, everyone sees theirs,
and a booking past a limit is refused with the numbers (an admin may override it); a queued
booking moves up when memory frees, its owner is told and can pin it."""

from __future__ import annotations

import json

from bot.lifecycle.notifier import Notifier
from handlers.blocks.notifications import render
from tests.conftest import ADMIN
from tests.e2e.conftest import Bot, dump
from tests.e2e.test_ops import fake_client


async def test_admins_set_limits_and_a_booking_past_them_is_refused(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("rtx-1", "24GB")
    added = await bot.command("admin group add premium <@UB|bob> <@UC>", user=ADMIN)
    assert "Group `premium` (<@UB>, <@UC>): no limits of its own." in dump(added)
    await bot.command("admin limits everyone max-held 16GB", user=ADMIN)
    set_ = await bot.command("admin limits premium max-held 40 GB", user=ADMIN)
    assert "`max-held` 40 GB" in dump(set_)
    listed = await bot.command("admin group list", user=ADMIN)
    assert "Group `everyone` (every member of the workspace): `max-held` 16 GB" in dump(listed)
    denied = await bot.command("admin limits premium max-held 1GB")
    assert "Only gpubook admins can set limits" in dump(denied)

    await bot.command("book rtx-0 10GB 10:00 for 2h first")
    refused = await bot.command("book rtx-1 10GB 11:00 for 2h second")
    assert "the max-held limit is 16 GB" in dump(refused)
    assert len(await bot.bookings()) == 1
    # Bob is in premium: 20 GB at once is within his 40 GB.
    await bot.command("book rtx-0 10GB 10:00 for 2h first", user="UB")
    await bot.command("book rtx-1 10GB 11:00 for 2h second", user="UB")
    assert len(await bot.bookings()) == 3

    mine = await bot.command("limits")
    assert "You hold 0 GB now, and at most 10 GB at once" in dump(mine)
    assert "your max-held is 16 GB" in dump(mine)

    forced = await bot.command("book override rtx-1 10GB 11:00 for 2h forced", user=ADMIN)
    assert "Booked" in forced.params["text"]


async def test_a_queued_booking_moves_up_and_its_owner_can_pin_it(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.command("book rtx-0 20GB now for 4h blocker")
    queued = await bot.command("book any 10GB for 2h asap train-x", user="UB")
    said = "Queued (flexible: it moves earlier by itself when room frees, never later) #2"
    assert queued.params["text"].startswith(said) and "Booked" not in dump(queued)
    at_once = await bot.command("book any 2GB for 1h asap no wait", user="UB")
    assert at_once.params["text"].startswith("Booked #3")  # it starts now: nothing to queue
    listed = await bot.command("list all")
    assert "flexible" in dump(listed) and "train-x" in dump(listed)
    await bot.command("release 1")
    [moved] = [b for b in await bot.bookings() if b.id == 2]
    assert moved.start == bot.service.clock()
    notifier = Notifier(bot.service.db, fake_client(bot.fake), bot.service.clock, render=render)
    await notifier.flush(bot.service.clock())
    [dm] = await bot.fake.wait_for(
        "chat.postMessage", predicate=lambda c: c.params.get("channel") == "UB"
    )
    assert "#2 moved up: now `rtx-0`" in dump(dm) and "booking_pin" in dump(dm)
    pinned = await bot.click("booking_pin", "2", user="UB")
    assert "Pinned" in dump(pinned)
    assert not [b for b in await bot.bookings() if b.id == 2][0].flexible


async def test_a_release_that_moves_a_queued_booking_refreshes_its_owners_home(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.command("book rtx-0 20GB now for 4h blocker")
    await bot.open_home("UB")  # UB's Home is in view: changes rebuild it
    await bot.command("book any 10GB for 2h asap train-x", user="UB")
    home_of_ub = {"predicate": lambda c: c.params["user_id"] == "UB"}
    await bot.fake.wait_for("views.publish", count=2, **home_of_ub)  # after UB queued it
    await bot.command("release 1")  # UA's release moves UB's booking up
    [*_, home] = await bot.fake.wait_for("views.publish", count=3, **home_of_ub)
    assert "train-x" in json.dumps(home.params)
