"""Every button: on booking cards, refusals, free windows, the calendar and the App Home."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from bot.booking import Actor
from bot.core.clock import FrozenClock
from bot.core.vocabulary import BookingStatus
from handlers import ids
from tests.conftest import at
from tests.e2e.conftest import TEAM, Bot, choose_gpu, dump, submit
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import Call


def buttons(call: Call, action_prefix: str) -> list[dict[str, Any]]:
    """The buttons in a posted message whose action id starts with ``action_prefix``."""
    found = []
    for block in call.params.get("blocks") or []:
        elements = [block.get("accessory")] + list(block.get("elements") or [])
        found += [e for e in elements if e and e.get("action_id", "").startswith(action_prefix)]
    return found


async def test_extend_button_adds_an_hour_and_refreshes_home(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.open_home("UA")
    card = await bot.command("book rtx-0 4GB 10:00 for 1h job")
    [extend] = buttons(card, ids.EXTEND)
    reply = await bot.click(ids.EXTEND, extend["value"])
    assert "Extended by 1h #1" in reply.params["text"]
    assert reply.params["replace_original"] is False
    [booking] = await bot.bookings()
    assert booking.end == at(12)
    await bot.fake.wait_for("views.publish", count=3)


async def test_release_button_ends_an_active_booking(bot: Bot) -> None:
    await bot.add_gpu()
    card = await bot.command("book rtx-0 4GB now for 1h job")
    [release] = buttons(card, ids.RELEASE)
    assert "Released #1" in (await bot.click(ids.RELEASE, release["value"])).params["text"]
    [booking] = await bot.bookings()
    assert booking.status == BookingStatus.COMPLETED


async def test_cancel_button_cancels_an_upcoming_booking(bot: Bot) -> None:
    await bot.add_gpu()
    card = await bot.command("book rtx-0 4GB 10:00 for 1h job")
    [cancel] = buttons(card, ids.CANCEL)
    assert "Cancelled #1" in (await bot.click(ids.CANCEL, cancel["value"])).params["text"]
    [booking] = await bot.bookings()
    assert booking.status == BookingStatus.CANCELLED


async def test_edit_button_opens_the_edit_form(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    req = slack_req.block_action(ids.EDIT, "1", user_id="UA", response_url=bot.fake.response_url())
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    assert opened.params["trigger_id"] == req.payload["trigger_id"]
    assert opened.params["view"]["callback_id"] == "edit_modal"


async def test_book_button_on_a_refusal_books_the_offered_window(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB 10:00 for 2h big", user="UB")
    refusal = await bot.command("book rtx-0 8GB 10:00 for 2h small", user="UA")
    assert "Not enough memory" in refusal.params["text"]
    [offer] = buttons(refusal, ids.BOOK_SLOT)
    slot = json.loads(offer["value"])
    assert slot["task"] == "small"
    reply = await bot.click(ids.BOOK_SLOT, offer["value"], user="UA")
    assert "Booked #2" in reply.params["text"]
    mine = [b for b in await bot.bookings() if b.user_id == "UA"]
    assert [(b.start, b.end, b.memory_mib) for b in mine] == [(at(12), at(14), 8192)]


async def test_a_refused_extension_offers_the_longest_that_fits_as_a_working_button(
    bot: Bot,
) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB 11:00 for 1h big", user="UB")
    await bot.command("book rtx-0 8GB 09:00 for 1h mine", user="UA")
    refusal = await bot.command("extend 2 3h", user="UA")
    assert "Booking #2 can't be extended by 3h" in refusal.params["text"]
    assert "The longest extension that fits is 1h" in refusal.params["text"]
    assert buttons(refusal, ids.BOOK_SLOT) == []  # an extension is not a new booking
    [offer] = buttons(refusal, ids.EXTEND_OFFER)
    assert offer["text"]["text"] == "Extend 1h"
    reply = await bot.click(ids.EXTEND_OFFER, offer["value"], user="UA")
    assert "Extended by 1h #2" in reply.params["text"]
    mine = [b for b in await bot.bookings() if b.user_id == "UA"]
    assert [(b.start, b.end) for b in mine] == [(at(9), at(11))]


async def test_book_button_without_a_task_opens_the_form(bot: Bot) -> None:
    await bot.add_gpu()
    free = await bot.command("free 8GB for 2h")
    offer = buttons(free, ids.BOOK_SLOT)[0]
    req = slack_req.block_action(
        ids.BOOK_SLOT, offer["value"], user_id="UA", response_url=bot.fake.response_url()
    )
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    blocks = {b.get("block_id"): b for b in opened.params["view"]["blocks"]}
    assert blocks["memory"]["element"]["initial_value"] == "8GB"
    assert blocks["duration"]["element"]["initial_value"] == "2h"
    assert await bot.bookings() == []


async def test_a_free_windows_book_button_keeps_its_memory_through_the_form(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    free = await bot.command("free 24GB for 2h")
    offer = buttons(free, ids.BOOK_SLOT)[0]
    assert json.loads(offer["value"])["mib"] == 24 * 1024
    req = slack_req.block_action(
        ids.BOOK_SLOT, offer["value"], user_id="UA", response_url=bot.fake.response_url()
    )
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    view = await choose_gpu(bot, opened.params["view"], "a100-1")
    memory = next(b for b in view["blocks"] if b.get("block_id") == "memory")
    assert memory["element"]["initial_value"] == "24GB"
    assert await submit(bot, view, task="from free") == (200, {})
    [booking] = await bot.bookings()
    assert (booking.gpu_name, booking.memory_mib) == ("a100-1", 24 * 1024)


async def test_calendar_navigation_replaces_the_message(bot: Bot) -> None:
    await bot.add_gpu()
    calendar = await bot.command("calendar rtx-0")
    nav = buttons(calendar, ids.CALENDAR_NAV)
    assert len(nav) == 3
    following = next(b for b in nav if json.loads(b["value"])["day"] == "2026-01-06")
    reply = await bot.click(following["action_id"], following["value"])
    assert reply.params["replace_original"] is True
    assert "rtx-0 — Tue 6 Jan 2026" in dump(reply)


def card_ids(call: Call) -> list[int]:
    """The bookings a list shows, in order: the id at the head of each card."""
    texts = [b["text"]["text"] for b in call.params["blocks"] if b["type"] == "section"]
    return [int(m.group(1)) for t in texts if (m := re.match(r"\*#(\d+)\*", t))]


@pytest.mark.parametrize(("words", "owners"), [("list", {"UA"}), ("list all", {"UA", "UB"})])
async def test_more_brings_every_booking_of_a_long_list_once(
    bot: Bot, words: str, owners: set[str]
) -> None:
    """`list` used to stop at 15 ("see list all") and `list all` too ("see calendar"): the 16th
    booking appeared nowhere. Now each page ends in More until the last."""
    await bot.add_gpu()
    for n in range(40):
        start = at(9) + timedelta(minutes=10 * n)
        user = Actor("UA" if n % 4 else "UB", TEAM)
        await bot.service.create(
            user,
            gpu="rtx-0",
            memory="1GB",
            start=start,
            end=start + timedelta(hours=1),
            task=f"job {n}",
        )
    expected = [b.id for b in await bot.bookings() if b.user_id in owners]
    page = await bot.command(words)
    seen = card_ids(page)
    while more := buttons(page, ids.LIST_MORE):
        page = await bot.click(ids.LIST_MORE, more[0]["value"])
        assert page.params["replace_original"] is True
        seen += card_ids(page)
    assert seen == expected and len(seen) > 16


async def test_broken_button_values_are_refused_politely(bot: Bot) -> None:
    await bot.add_gpu()
    for action_id, value in (
        (ids.EXTEND, "abc"),
        (ids.EXTEND_OFFER, '{"id": 1}'),
        (ids.BOOK_SLOT, "{not json"),
        (ids.CALENDAR_NAV, "[]"),
        (ids.LIST_MORE, '{"all": false, "start": "soon", "id": 1, "shown": 15}'),
        (ids.LIST_MORE, '{"all": false, "start": "2026-01-05T10:00:00", "id": 1, "shown": 15}'),
    ):
        reply = await bot.click(action_id, value)
        assert "unreadable" in reply.params["text"], action_id
    assert await bot.bookings() == []


async def test_home_buttons_open_the_form_and_dm_the_calendar(bot: Bot) -> None:
    await bot.add_gpu()
    home = slack_req.view_payload(type="home")
    req = slack_req.block_action(ids.HOME_NEW_BOOKING, "new", user_id="UA", view=home)
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    assert "channel" not in json.loads(opened.params["view"]["private_metadata"])

    req = slack_req.block_action(ids.HOME_CALENDAR, "calendar", user_id="UA", view=home)
    assert await bot.send(req) == (200, "")
    [dm] = await bot.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UA" and "rtx-0 —" in dump(dm)


async def test_a_change_from_the_home_tab_is_answered_by_dm(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    home = slack_req.view_payload(type="home")
    req = slack_req.block_action(ids.CANCEL, "1", user_id="UA", view=home)
    assert await bot.send(req) == (200, "")
    [dm] = await bot.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UA" and "Cancelled #1" in dm.params["text"]


async def test_a_book_button_offered_from_now_still_books_minutes_later(
    bot: Bot, clock: FrozenClock
) -> None:
    """Offers start "now" and the service refuses starts over a minute past: a window under way
    is booked from the click to its end, and one already over is refused."""
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    await bot.command("book rtx-0 20GB now for 2h big", user="UB")
    refusal = await bot.command("book rtx-0 8GB now for 1h job", user="UA")
    [offer] = [b for b in buttons(refusal, ids.BOOK_SLOT) if "a100-1" in b["value"]]
    assert json.loads(offer["value"])["start"] == int(at(8).timestamp())
    clock.advance(timedelta(minutes=30))
    reply = await bot.click(ids.BOOK_SLOT, offer["value"], user="UA")
    assert "Booked #2" in reply.params["text"]
    [mine] = [b for b in await bot.bookings() if b.user_id == "UA"]
    assert (mine.gpu_name, mine.start, mine.end) == ("a100-1", at(8, 30), at(9))
    clock.advance(timedelta(hours=1))
    late = await bot.click(ids.BOOK_SLOT, offer["value"], user="UA")
    assert "past" in late.params["text"]
    assert len(await bot.bookings()) == 2


async def test_a_stale_book_button_without_a_task_opens_the_form_from_now(
    bot: Bot, clock: FrozenClock
) -> None:
    await bot.add_gpu()
    free = await bot.command("free 8GB for 2h")
    offer = buttons(free, ids.BOOK_SLOT)[0]
    clock.advance(timedelta(minutes=30))
    req = slack_req.block_action(
        ids.BOOK_SLOT, offer["value"], user_id="UA", response_url=bot.fake.response_url()
    )
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    blocks = {b.get("block_id"): b for b in opened.params["view"]["blocks"]}
    assert blocks["start"]["element"]["initial_date_time"] == int(at(8, 30).timestamp())
    assert blocks["duration"]["element"]["initial_value"] == "1h 30m"
