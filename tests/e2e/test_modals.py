"""The booking and edit forms: open, follow the GPU select, refuse in place, save."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.core.vocabulary import BookingStatus
from handlers import ids
from handlers.modals import MAX_FIELD_ERROR
from tests.conftest import ADMIN, at
from tests.e2e.conftest import Bot, choose_gpu, dump, form_state, submit
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
    assert json.loads(new["private_metadata"])["channel"] == "C1"


def initial(view: dict[str, Any], block_id: str) -> Any:
    element = block(view, block_id)["element"]
    return element.get("initial_value", element.get("initial_date_time"))


async def test_only_the_memory_default_follows_the_gpu_never_what_was_typed(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    view = (await bot.command_opening("book rtx-0 10:00 for 3h")).params["view"]
    assert initial(view, "memory") == "12GB"
    view = await choose_gpu(bot, view, "a100-1")  # untouched: the default follows
    assert initial(view, "memory") == "40GB"
    view = await choose_gpu(bot, view, "rtx-0")
    assert initial(view, "memory") == "12GB"

    eleven = int(at(11).timestamp())
    typed = {"memory": "20GB", "start": eleven, "duration": "90m", "task": "mine"}
    view = await choose_gpu(bot, view, "a100-1", **typed)
    assert block(view, "memory")["element"]["action_id"].endswith("a100-1")  # shown anew
    assert [initial(view, b) for b in typed] == ["20GB", eleven, "90m", "mine"]
    view = await choose_gpu(bot, view, "rtx-0", **typed)
    assert initial(view, "memory") == "20GB"
    status, ack = await submit(bot, view, gpu="rtx-0")
    assert (status, ack) == (200, {})
    [booking] = await bot.bookings()
    assert (booking.memory_mib, booking.start, booking.end) == (20480, at(11), at(12, 30))


async def test_what_book_gave_survives_choosing_the_gpu(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    view = (await bot.command_opening("book rtx-0 8GB 10:00 for 3h")).params["view"]
    for gpu in ("rtx-0", "a100-1"):
        new = await choose_gpu(bot, view, gpu)
        assert initial(new, "memory") == "8GB"
        assert (initial(new, "start"), initial(new, "duration")) == (int(at(10).timestamp()), "3h")


async def test_an_incomplete_book_says_what_it_lacked_on_every_render(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    view = (await bot.command_opening("book rtx 20 gb")).params["view"]
    said = view["blocks"][0]
    assert said["type"] == "context"
    assert said["elements"][0]["text"] == (
        "`rtx` is not a GPU here: pick one below.\n"
        "No start time was given: pick one below.\n"
        "No duration was given: set it below.\n"
        "No task was given: say below what the GPU is for."
    )
    assert initial(view, "memory") == "20gb"
    assert "initial_option" not in block(view, "gpu")["element"]
    new = await choose_gpu(bot, view, "a100-1")
    assert new["blocks"][0] == said and initial(new, "memory") == "20gb"

    view = (await bot.command_opening("book a100-1 10GB for 2h")).params["view"]
    assert view["blocks"][0]["elements"][0]["text"] == (
        "No start time was given: pick one below.\nNo task was given: say below what the GPU is for."
    )
    assert (initial(view, "memory"), initial(view, "duration")) == ("10GB", "2h")
    opened = (await open_form(bot))["blocks"][0]
    assert opened["block_id"] == "gpu"  # the bare form has nothing to explain


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
    # A field error is plain text: no mrkdwn code spans.
    assert "Earliest fit on rtx-0: 12:00–14:00" in ack["errors"]["memory"]


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


async def test_field_errors_are_plain_text_not_escaped_mrkdwn(bot: Bot) -> None:
    await bot.add_gpu()
    view = await open_form(bot)
    ten = int(at(10).timestamp())
    status, ack = await submit(bot, view, gpu="rtx-0", memory="<a&b>", start=ten, task="job")
    assert status == 200
    error = ack["errors"]["memory"]
    assert "read <a&b> as memory" in error and "`" not in error
    assert "&lt;" not in error and "&amp;" not in error
    _, long = await submit(bot, view, gpu="rtx-0", memory="9" * 2000 + "GB", start=ten, task="j")
    assert len(long["errors"]["memory"]) <= MAX_FIELD_ERROR


def hold_creates(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make ``service.create`` wait for the returned event, then save for real: a save that
    outlives the submit deadline yet completes."""
    release = asyncio.Event()
    create = bot.service.create

    async def late_create(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await create(*args, **kwargs)

    monkeypatch.setattr(bot.service, "create", late_create)
    return release


@pytest.mark.parametrize("deps_options", [{"submit_deadline": 0.2}])
async def test_a_save_past_the_deadline_closes_the_form_and_confirms_later(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.add_gpu()
    view = await open_form(bot)
    release = hold_creates(bot, monkeypatch)
    status, ack = await submit(bot, view, gpu="rtx-0", start=int(at(10).timestamp()), task="job")
    assert (status, ack) == (200, {})  # closed, not "busy": a retry would book twice
    assert not bot.fake.calls_to("chat.postEphemeral")
    release.set()
    [posted] = await bot.fake.wait_for("chat.postEphemeral")
    assert "Booked #1" in posted.params["text"] and "booking_extend" in dump(posted)
    [booking] = await bot.bookings()
    assert (booking.start, booking.task) == (at(10), "job")


@pytest.mark.parametrize("deps_options", [{"submit_deadline": 0.2}])
async def test_a_refusal_past_the_deadline_is_sent_by_message(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB 10:00 for 2h big", user="UB")
    view = await open_form(bot)
    release = hold_creates(bot, monkeypatch)
    status, ack = await submit(
        bot, view, gpu="rtx-0", memory="8GB", start=int(at(10).timestamp()), task="small"
    )
    assert (status, ack) == (200, {})
    release.set()
    [posted] = await bot.fake.wait_for("chat.postEphemeral")
    assert "Not enough memory" in posted.params["text"] and ids.BOOK_SLOT in dump(posted)
    assert [b.user_id for b in await bot.bookings()] == ["UB"]


async def test_a_confirmation_slack_will_not_post_ephemerally_comes_by_dm(bot: Bot) -> None:
    """A DM or a private channel without the bot: the command worked, the ephemeral cannot."""
    await bot.add_gpu()
    view = await open_form(bot)
    bot.fake.fail_next("chat.postEphemeral", error="channel_not_found")
    status, ack = await submit(bot, view, gpu="rtx-0", start=int(at(10).timestamp()), task="job")
    assert (status, ack) == (200, {})
    [dm] = await bot.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UA" and "Booked #1" in dm.params["text"]
    assert len(bot.fake.calls_to("chat.postEphemeral", include_failed=True)) == 1


async def test_edit_form_saves_without_reading_the_booking_again(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h job")
    view = (await bot.command_opening("edit 1")).params["view"]

    async def no_reads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the edit form re-read the booking")

    monkeypatch.setattr(bot.service, "get", no_reads)
    # Meanwhile the booking was extended: an untouched duration must not undo that.
    await bot.command("extend 1 1h")
    status, ack = await submit(bot, view, memory="6GB")
    assert (status, ack) == (200, {})
    [booking] = await bot.bookings()
    assert (booking.start, booking.end, booking.memory_mib) == (at(10), at(12), 6144)


async def test_an_admins_edit_refreshes_the_owners_home(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.open_home("UA")
    await bot.command("book rtx-0 4GB 10:00 for 1h job", user="UA")
    owners_home = {"predicate": lambda c: c.params["user_id"] == "UA"}
    await bot.fake.wait_for("views.publish", count=2, **owners_home)
    view = (await bot.command_opening("edit 1", user=ADMIN)).params["view"]
    status, ack = await submit(bot, view, user=ADMIN, memory="6GB")
    assert (status, ack) == (200, {})
    [*_, home] = await bot.fake.wait_for("views.publish", count=3, **owners_home)
    assert "6 GB" in str(home.params["view"])


async def test_incomplete_book_any_opens_the_form_with_any_gpu_selected(bot: Bot) -> None:
    """`book any` chose automatic placement: the form keeps that choice, and does not call
    "any" a GPU it does not know; a `book` that named no GPU at all selects none."""
    await bot.add_gpu("rtx-0", "24GB")
    await bot.add_gpu("a100-1", "80GB")
    view = (await bot.command_opening("book any 10GB tomorrow 9:00")).params["view"]
    assert block(view, "gpu")["element"]["initial_option"]["value"] == "any"
    assert block(view, "memory")["element"]["initial_value"] == "10GB"
    assert "not_a_gpu" not in json.loads(view["private_metadata"])
    unnamed = (await bot.command_opening("book 10GB tomorrow 9:00")).params["view"]
    assert "initial_option" not in block(unnamed, "gpu")["element"]
    assert await bot.bookings() == []


async def test_the_flexible_box_queues_the_booking_and_it_moves_up(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 20GB now for 4h blocker", user="UB")
    view = (await bot.command_opening("")).params["view"]
    filled = {
        "gpu": "rtx-0",
        "memory": "8GB",
        "start": int(at(9).timestamp()),
        "duration": "2h",
        "task": "queued run",
        "flexible": ["flexible"],
    }
    assert await submit(bot, view, **filled) == (200, {})
    [queued] = [b for b in await bot.bookings() if b.task == "queued run"]
    assert (queued.flexible, queued.start) == (True, at(12))  # the earliest fit from 9:00
    [posted] = await bot.fake.wait_for("chat.postEphemeral")  # said as `book any … asap` does
    said = (
        f"Queued (flexible: it moves earlier by itself when room frees, never later) #{queued.id}"
    )
    assert posted.params["text"].startswith(said) and "Booked" not in dump(posted)
    await bot.command("release 1", user="UB")
    [moved] = [b for b in await bot.bookings() if b.id == queued.id]
    assert moved.start == at(9)  # never before the start asked for
    refused = {**filled, "repeat": "daily", "repeat_until": "2026-01-09"}
    status, ack = await submit(bot, view, **refused)
    assert status == 200 and "untick it" in ack["errors"]["flexible"]
