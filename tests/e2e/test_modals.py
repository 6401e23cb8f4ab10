"""The booking and edit forms: open, follow the GPU select, refuse in place, save."""

from __future__ import annotations

from typing import Any

from handlers import ids
from storage.models import BookingStatus
from tests.conftest import at
from tests.e2e.conftest import Bot, form_state, submit
from tests.slackfake import requests as slack_req


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def open_form(bot: Bot) -> dict[str, Any]:
    return (await bot.command_opening("")).params["view"]


async def test_choosing_a_gpu_updates_the_form_with_its_memory_default(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    view = await open_form(bot)
    shown = {**view, "id": "V1", "hash": "h1"}
    shown["state"] = {"values": form_state(view, duration="3h", task="job")}
    req = slack_req.block_action(
        ids.MODAL_GPU_SELECT,
        user_id="UA",
        view=shown,
        selected_option={"text": {"type": "plain_text", "text": "a100-1"}, "value": "a100-1"},
    )
    assert await bot.send(req) == (200, "")
    [update] = await bot.fake.wait_for("views.update")
    assert (update.params["view_id"], update.params["hash"]) == ("V1", "h1")
    new = update.params["view"]
    assert block(new, "memory")["element"]["initial_value"] == "40GB"
    assert block(new, "duration")["element"]["initial_value"] == "3h"
    assert block(new, "task")["element"]["initial_value"] == "job"
    assert new["private_metadata"] == view["private_metadata"]


async def test_submit_books_and_confirms_in_the_channel(bot: Bot) -> None:
    await bot.add_gpu()
    view = await open_form(bot)
    status, ack = await submit(
        bot,
        view,
        gpu="rtx-0",
        memory="10GB",
        start=int(at(10).timestamp()),
        duration="2h",
        task="from the form",
    )
    assert (status, ack) == (200, {})
    [posted] = await bot.fake.wait_for("chat.postEphemeral")
    assert (posted.params["channel"], posted.params["user"]) == ("C1", "UA")
    assert "Booked #1" in posted.params["text"]
    [booking] = await bot.bookings()
    assert (booking.start, booking.end, booking.memory_mib) == (at(10), at(12), 10240)
    assert booking.task == "from the form"


async def test_submit_from_the_home_tab_confirms_by_dm(bot: Bot) -> None:
    await bot.add_gpu()
    home = slack_req.view_payload(type="home")
    req = slack_req.block_action(ids.HOME_NEW_BOOKING, "new", user_id="UA", view=home)
    assert await bot.send(req) == (200, "")
    [opened] = await bot.fake.wait_for("views.open")
    status, ack = await submit(
        bot, opened.params["view"], gpu="rtx-0", start=int(at(10).timestamp()), task="home"
    )
    assert (status, ack) == (200, {})
    [dm] = await bot.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UA" and "Booked #1: 12 GB" in dm.params["text"]


async def test_field_errors_come_back_under_their_inputs(bot: Bot) -> None:
    await bot.add_gpu()
    view = await open_form(bot)
    ten = int(at(10).timestamp())
    cases = [
        ({"memory": "lots"}, "memory"),
        ({"memory": "0GB"}, "memory"),
        ({"duration": "soon"}, "duration"),
        ({"start": int(at(7).timestamp())}, "start"),
        ({"task": None}, "task"),
        ({"gpu": None}, "gpu"),
        ({"duration": "30d"}, "duration"),
    ]
    for values, field in cases:
        fields = {"gpu": "rtx-0", "start": ten, "task": "job", **values}
        status, ack = await submit(bot, view, **fields)
        assert status == 200 and ack["response_action"] == "errors", values
        assert list(ack["errors"]) == [field], (values, ack)
    assert await bot.bookings() == []


async def test_capacity_refusal_goes_on_memory_with_the_earliest_window(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB 10:00 for 2h big", user="UB")
    view = await open_form(bot)
    status, ack = await submit(
        bot, view, gpu="rtx-0", memory="8GB", start=int(at(10).timestamp()), task="small"
    )
    assert status == 200
    assert "Earliest fit on `rtx-0`: 12:00–14:00" in ack["errors"]["memory"]


async def test_edit_form_saves_changes(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    view = (await bot.command_opening("edit 1")).params["view"]
    status, ack = await submit(bot, view, memory="6GB", duration="3h", task="renamed")
    assert (status, ack) == (200, {})
    [posted] = await bot.fake.wait_for("chat.postEphemeral")
    assert "Updated #1" in posted.params["text"]
    [booking] = await bot.bookings()
    assert (booking.memory_mib, booking.end, booking.task) == (6144, at(13), "renamed")


async def test_edit_form_of_a_running_booking_keeps_its_start(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB now for 1h job")
    view = (await bot.command_opening("edit 1")).params["view"]
    status, ack = await submit(bot, view, duration="2h")
    assert (status, ack) == (200, {})
    [booking] = await bot.bookings()
    assert booking.status == BookingStatus.ACTIVE and booking.end == at(10)


async def test_edit_form_refuses_a_change_that_does_not_fit(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    await bot.command("book rtx-0 20GB 10:00 for 1h big", user="UB")
    view = (await bot.command_opening("edit 1")).params["view"]
    status, ack = await submit(bot, view, memory="8GB")
    assert status == 200 and "Not enough memory" in ack["errors"]["memory"]
    mine = [b for b in await bot.bookings() if b.user_id == "UA"]
    assert mine[0].memory_mib == 4096
