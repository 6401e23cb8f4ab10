"""The starred acceptance scenarios (4, 11, 13, 14, 15), end to end through the HTTP endpoint.

Scenario 16 (lifecycle notifications) belongs to the notifications tests.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.core.vocabulary import BookingStatus
from handlers import ids
from tests.conftest import ADMIN, at
from tests.e2e.conftest import Bot, dump, submit
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES


async def test_4_seed_scenario_one(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    for user, size in (("UA", "10GB"), ("UB", "8GB"), ("UC", "5GB")):
        reply = await bot.command(f"book rtx-0 {size} 10:00 for 2h seed", user=user)
        assert reply.params["text"].startswith("Booked"), reply.params["text"]
    refused = await bot.command("book rtx-0 2GB 10:00 for 2h seed", user="UD")
    assert "1 GB free" in refused.params["text"]
    assert "1 GB free" in dump(refused)  # in the blocks too, not only the fallback

    calendar = await bot.command("calendar rtx-0")
    strip = calendar.params["blocks"][2]["text"]["text"]
    held = [line for line in strip.splitlines() if "23/24 GB" in line]
    assert [line[:5] for line in held] == ["10:00", "11:00"]
    assert len(await bot.bookings()) == 3


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_11_forty_concurrent_bookings(bot: Bot) -> None:
    await bot.add_gpu("rtx-0", "24GB")
    replies = await asyncio.gather(
        *(bot.command(f"book rtx-0 4GB 10:00 for 2h job-{i}", user=f"U{i:02d}") for i in range(40))
    )
    texts = [r.params["text"] for r in replies]
    assert sum(t.startswith("Booked") for t in texts) == 6
    refused = [t for t in texts if not t.startswith("Booked")]
    assert len(refused) == 34 and all("Not enough memory" in t for t in refused)
    holding = await bot.bookings(BookingStatus.UPCOMING)
    assert len(holding) == 6 and sum(b.memory_mib for b in holding) == 24 * 1024


TASK = "<!channel> <@U123> *bold* & more"
#: What Slack sends when someone types TASK: it escapes `&`, `<` and `>` in slash-command text.
TASK_AS_SENT = TASK.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rendered(value: Any) -> list[str]:
    """Every string Slack renders: top-level/blocks ``text`` fields (not button values)."""
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "text" and isinstance(v, str)]
        return found + [s for k, v in value.items() if k != "value" for s in rendered(v)]
    if isinstance(value, list):
        return [s for item in value for s in rendered(item)]
    return []


async def test_13_task_text_is_escaped_everywhere(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command(f"book rtx-0 20GB 10:00 for 2h {TASK_AS_SENT}")
    await bot.command("list")
    await bot.command("list all", user="UB")
    await bot.command("calendar rtx-0")
    await bot.command(f"book rtx-0 8GB 10:00 for 2h {TASK_AS_SENT}")  # refused, offers a window
    await bot.open_home("UA")

    messages = [
        c
        for c in bot.fake.calls
        if c.method in (*REPLIES, "chat.postEphemeral", "chat.postMessage", "views.publish")
    ]
    with_task = [c for c in messages if any("*bold* &amp; more" in t for t in rendered(c.params))]
    assert len(with_task) >= 5
    for call in messages:
        for text in rendered(call.params):
            assert "<!channel>" not in text and "<@U123>" not in text, (call.method, text)
    [booking] = await bot.bookings()
    assert booking.task == TASK


async def test_14_nobody_changes_someone_elses_booking(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h later", user="UA")
    await bot.command("book rtx-0 4GB now for 1h running", user="UA")
    before = await bot.bookings()

    for text in ("cancel 1", "extend 1 1h", "release 2", "edit 1", "extend 2 30m"):
        reply = await bot.command(text, user="UB")
        assert "belongs to <@UA>" in reply.params["text"], text
    for action_id, value in (
        (ids.CANCEL, "1"),
        (ids.EXTEND, "1"),
        (ids.RELEASE, "2"),
        (ids.EDIT, "1"),
    ):
        reply = await bot.click(action_id, value, user="UB")
        assert "belongs to <@UA>" in reply.params["text"], action_id
    forged = slack_req.view_submission(
        ids.EDIT_MODAL,
        {"memory": {"value": {"type": "plain_text_input", "value": "20GB"}}},
        private_metadata=json.dumps({"booking": 1}),
        user_id="UB",
    )
    status, body = await bot.send(forged)
    assert status == 200 and "belongs to" in body
    assert not bot.fake.calls_to("views.open")
    assert await bot.bookings() == before

    assert "Extended by 1h #1" in (await bot.click(ids.EXTEND, "1", user=ADMIN)).params["text"]
    assert "Cancelled #1" in (await bot.command("cancel 1", user=ADMIN)).params["text"]
    assert "Released #2" in (await bot.command("release 2", user=ADMIN)).params["text"]
    statuses = {b.id: b.status for b in await bot.bookings()}
    assert statuses == {1: BookingStatus.CANCELLED, 2: BookingStatus.COMPLETED}


BAD_INPUTS = {
    "book nope 4GB 10:00 for 1h x": "GPU `nope` doesn't exist",
    "book rtx-0 0GB 10:00 for 1h x": "at least 1 MiB",
    "book rtx-0 -5GB 10:00 for 1h x": "must be positive",
    "book rtx-0 1e9GB 10:00 for 1h x": "without an exponent",
    "book rtx-0 abc 10:00 for 1h x": "can't read `abc` as memory",
    "book rtx-0 4GB 2026-01-05 10:00 until 2026-01-05 09:00 x": "not after the start",
    "book rtx-0 4GB 2026-01-05 07:00 for 1h x": "start is in the past",
    "book rtx-0 4GB 10:00 for 8d x": "last at most 7d",
    "book rtx-0 4GB 10:00 for 1h " + "x" * 10_000: "10,000 characters",
}


async def test_15_bad_input_gets_a_specific_message_and_changes_nothing(bot: Bot) -> None:
    await bot.add_gpu()
    audit_before = [e.id for e in await bot.service.audit_log(bot.admin)]
    for text, expected in BAD_INPUTS.items():
        reply = await bot.command(text)
        assert expected in reply.params["text"], (text[:60], reply.params["text"])
        assert not buttons_named(reply, ids.BOOK_SLOT)
    form = (await bot.command_opening("")).params["view"]
    status, ack = await submit(bot, form, start=int(at(10).timestamp()), task=None)
    assert status == 200 and "Give the task a name" in ack["errors"]["task"]
    assert await bot.bookings() == []
    assert [e.id for e in await bot.service.audit_log(bot.admin)] == audit_before


def buttons_named(call: Any, action_id: str) -> bool:
    return action_id in dump(call)
