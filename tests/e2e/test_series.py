"""Recurring bookings through the real HTTP endpoint: a series booked, refused with its "Book the
N that fit" button, listed on one line and ended with `cancel <id> series`."""

from __future__ import annotations

import json

from bot.core.vocabulary import BookingStatus
from handlers import ids
from tests.conftest import at
from tests.e2e.conftest import Bot, dump, submit
from tests.e2e.test_buttons import buttons


async def test_a_series_is_booked_listed_on_one_line_and_ended(bot: Bot) -> None:
    """T0 is Monday 5 Jan 2026 08:00 UTC; the first weekday 09:00 ahead is today's."""
    await bot.add_gpu()
    reply = await bot.command(
        "book rtx-0 8GB weekdays 09:00 until 17:00 until 2026-01-16 nightly-ci"
    )
    assert reply.params["text"] == "Booked 10 occurrences of series #1 on rtx-0."
    assert "weekdays 09:00–17:00 until Fri 16 Jan 2026" in dump(reply)
    assert "/gpubook cancel 1 series" in dump(reply)
    assert len(await bot.bookings()) == 10

    listed = dump(await bot.command("list"))
    assert listed.count("weekdays 09:00–17:00") == 1 and "10 left" in listed
    assert "#2" not in listed  # one line for the series, not one card per occurrence

    await bot.command("cancel 3")  # Wednesday alone
    ended = await bot.command("cancel 2 series")
    assert ended.params["text"].startswith("Ended 8 occurrences of the series from #2")
    held = await bot.bookings(BookingStatus.UPCOMING)
    assert [b.id for b in held] == [1]


async def test_a_refused_series_books_the_ones_that_fit_from_its_button(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB 2026-01-07 10:00 for 2h big", user="UB")
    refusal = await bot.command("book rtx-0 8GB every day 09:00 for 3h 5 times sweep")
    assert "1 of the 5 occurrences don't fit, so nothing was booked" in refusal.params["text"]
    assert len(await bot.bookings()) == 1
    [offer] = buttons(refusal, ids.BOOK_SERIES_FIT)
    assert offer["text"]["text"] == "Book the 4 that fit"
    assert json.loads(offer["value"])["task"] == "sweep"
    reply = await bot.click(ids.BOOK_SERIES_FIT, offer["value"])
    assert reply.params["text"] == "Booked 4 occurrences of series #2 on rtx-0."
    assert "Not booked (they did not fit)" in dump(reply)
    mine = [b for b in await bot.bookings() if b.user_id == "UA"]
    assert [b.start.day for b in mine] == [5, 6, 8, 9]


async def test_the_booking_form_books_a_weekly_series(bot: Bot) -> None:
    await bot.add_gpu()
    view = (await bot.command_opening("")).params["view"]
    filled = {
        "gpu": "rtx-0",
        "memory": "8GB",
        "start": int(at(10).timestamp()),  # Monday 5 Jan 2026 10:00 UTC
        "duration": "2h",
        "task": "sync",
        "repeat": "weekly",
        "repeat_days": ["0", "2"],
        "repeat_until": "2026-01-14",
    }
    assert await submit(bot, view, **filled) == (200, {})
    [confirmed] = await bot.fake.wait_for("chat.postEphemeral")
    assert confirmed.params["text"] == "Booked 4 occurrences of series #1 on rtx-0."
    assert [(b.start.day, b.start.hour) for b in await bot.bookings()] == [
        (5, 10),
        (7, 10),
        (12, 10),
        (14, 10),
    ]


async def test_a_repeating_form_without_its_last_day_says_so_under_it(bot: Bot) -> None:
    await bot.add_gpu()
    view = (await bot.command_opening("")).params["view"]
    status, ack = await submit(bot, view, gpu="rtx-0", memory="8GB", task="sync", repeat="daily")
    assert status == 200 and "Say when the series ends" in ack["errors"]["repeat_until"]
    assert await bot.bookings() == []


async def test_edit_series_changes_the_rest_in_a_form(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 8GB weekdays 09:00 until 17:00 until 2026-01-09 nightly-ci")
    view = (await bot.command_opening("edit 2 series")).params["view"]
    assert view["title"]["text"] == "Edit series #2"
    assert all(b.get("block_id") != "start" for b in view["blocks"])
    assert await submit(bot, view, memory="12GB") == (200, {})
    [confirmed] = await bot.fake.wait_for("chat.postEphemeral")
    assert confirmed.params["text"] == "Updated 4 occurrences of series #2 on rtx-0."
    sizes = [b.memory_mib // 1024 for b in await bot.bookings()]
    assert sizes == [8, 12, 12, 12, 12]
    await bot.command("book rtx-0 1GB 2026-01-12 09:00 for 1h one-off")
    single = await bot.command("edit 6 series")
    assert "Booking #6 is not part of a series" in dump(single)
