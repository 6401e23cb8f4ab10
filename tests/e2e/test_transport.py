"""How requests reach the bot: events, signatures, redeliveries, health, Socket Mode."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.core.clock import FrozenClock
from bot.runtime.app import build_app
from bot.runtime.runner import start_http, start_socket_mode
from bot.runtime.slack_client import build_client
from handlers import ids
from handlers.blocks.common import Message
from handlers.context import ResponseUrlReply, reply_for
from tests.e2e.conftest import Bot, _settle, dump
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES


async def test_app_home_opened_publishes_the_dashboard(bot: Bot) -> None:
    await bot.add_gpu()
    await bot.command("book rtx-0 4GB 10:00 for 1h homework", user="UA")
    await _settle()
    await bot.deps.homes.drain()  # any Home refresh the booking scheduled
    bot.fake.clear()
    assert (await bot.send(slack_req.event(slack_req.app_home_opened("UA"))))[0] == 200
    [published] = await bot.fake.wait_for("views.publish")
    assert published.params["user_id"] == "UA"
    assert published.params["view"]["type"] == "home"
    assert "homework" in dump(published) and "rtx-0" in dump(published)


async def test_a_burst_of_changes_leaves_the_home_showing_every_one(bot: Bot) -> None:
    """Rebuilds are coalesced (see tests/test_home_refresh.py), never at the cost of the last."""
    await bot.add_gpu()
    await bot.open_home("UA")
    tasks = [f"job-{n}" for n in range(8)]
    await asyncio.gather(
        *(bot.command(f"book rtx-0 1GB {10 + n}:00 for 1h {task}") for n, task in enumerate(tasks))
    )
    await _settle()
    await bot.deps.homes.drain()
    _opened, *published = bot.fake.calls_to("views.publish")
    assert 1 <= len(published) <= len(tasks)
    assert all(task in dump(published[-1]) for task in tasks)


async def test_messages_tab_and_redeliveries_publish_nothing(bot: Bot) -> None:
    await bot.add_gpu()
    messages_tab = slack_req.event(slack_req.app_home_opened("UA", tab="messages"))
    redelivery = slack_req.event(slack_req.app_home_opened("UA"), retry_num=1)
    assert (await bot.send(messages_tab))[0] == 200
    assert (await bot.send(redelivery))[0] == 200
    await _settle()
    assert not bot.fake.calls_to("views.publish")
    first = slack_req.event(slack_req.app_home_opened("UA"), retry_num=None)
    assert (await bot.send(first))[0] == 200
    await bot.fake.wait_for("views.publish")


async def test_url_verification_echoes_the_challenge(bot: Bot) -> None:
    status, body = await bot.send(slack_req.url_verification("xyz"))
    assert status == 200 and "xyz" in body


@pytest.mark.parametrize(
    "sign",
    [{"bad_signature": True}, {"timestamp": int(time.time()) - 6 * 60}],
    ids=["bad", "stale"],
)
async def test_unsigned_or_stale_requests_are_rejected_and_change_nothing(
    bot: Bot, sign: dict
) -> None:
    await bot.add_gpu()
    url = bot.fake.response_url()
    req = slack_req.slash_command("book rtx-0 4GB 10:00 for 1h x", response_url=url, **sign)
    assert (await bot.send(req))[0] == 401
    click = slack_req.block_action(ids.HOME_NEW_BOOKING, "new", **sign)
    assert (await bot.send(click))[0] == 401
    await _settle()
    assert await bot.bookings() == []
    assert not bot.fake.calls_to(REPLIES) and not bot.fake.calls_to("views.open")


async def test_healthz_reports_the_database(bot: Bot) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"ok": True, "database": True}


async def test_healthz_fails_when_a_check_fails(bot: Bot) -> None:
    async def broken() -> bool:
        raise RuntimeError("scheduler gone")

    async def fine() -> bool:
        return True

    runner = await start_http(None, {"database": fine, "scheduler": broken}, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/healthz") as resp:
                assert resp.status == 503
                assert await resp.json() == {"ok": False, "database": True, "scheduler": False}
            # Without an app (Socket Mode) there is no unverified events endpoint to abuse.
            async with session.post(f"{url}/slack/events", data=b"x") as resp:
                assert resp.status in (404, 405)
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- Socket Mode


@pytest.fixture
async def socket_bot(bot: Bot) -> AsyncIterator[Bot]:
    """The same bot, also connected over Socket Mode to the fake (no signing there)."""
    app = build_app(bot.deps, token="xoxb-test", signing_secret=None, api_url=bot.fake.base_url)
    handler: AsyncSocketModeHandler = await start_socket_mode(app, "xapp-test")
    yield bot
    await _settle()
    await handler.close_async()


async def test_socket_mode_book_list_and_a_button(socket_bot: Bot) -> None:
    bot, socket = socket_bot, socket_bot.fake.socket_mode
    await bot.add_gpu()
    [opened] = bot.fake.calls_to("apps.connections.open")
    assert opened.token == "xapp-test"

    book = slack_req.slash_command(
        "book rtx-0 4GB 10:00 for 1h over-socket", response_url=bot.fake.response_url("book")
    )
    envelope = await socket.send_envelope("slash_commands", book.payload)
    booked = await socket.wait_for_ack(envelope)  # the answer comes in the ack's payload
    assert "Booked #1" in booked["text"] and booked["response_type"] == "ephemeral"

    listing = slack_req.slash_command("list", response_url=bot.fake.response_url("list"))
    listed = await socket.wait_for_ack(
        await socket.send_envelope("slash_commands", listing.payload)
    )
    assert "over-socket" in json.dumps(listed)
    assert not bot.fake.calls_to("response_url")

    click = slack_req.block_action(ids.EXTEND, "1", response_url=bot.fake.response_url("click"))
    envelope = await socket.send_envelope("interactive", click.payload)
    assert await socket.wait_for_ack(envelope) == {}
    [extended] = await bot.fake.wait_for("response_url", predicate=lambda c: c.name == "click")
    assert "Extended by 1h #1" in extended.params["text"]


async def test_socket_mode_form_errors_come_back_in_the_ack(socket_bot: Bot) -> None:
    bot, socket = socket_bot, socket_bot.fake.socket_mode
    await bot.add_gpu()
    state = {"memory": {"value": {"type": "plain_text_input", "value": "lots"}}}
    submission = slack_req.view_submission(ids.BOOK_MODAL, state).payload
    envelope = await socket.send_envelope("interactive", submission)
    ack = await socket.wait_for_ack(envelope)
    assert ack["response_action"] == "errors" and list(ack["errors"]) == ["start"]


async def test_only_a_home_opened_lately_is_rebuilt_after_a_change(
    bot: Bot, clock: FrozenClock
) -> None:
    """A Home is published afresh whenever it is opened, so one nobody opened lately is left
    until then: a booking does not pay for a dashboard nobody sees."""
    await bot.add_gpu()
    await bot.command("book rtx-0 1GB 10:00 for 1h first-job")
    await _settle()
    await bot.deps.homes.drain()
    assert not bot.fake.calls_to("views.publish")  # never opened

    assert "first-job" in dump(await bot.open_home("UA"))
    await bot.command("book rtx-0 1GB 11:00 for 1h second-job")
    [_, rebuilt] = await bot.fake.wait_for("views.publish", count=2)
    assert "second-job" in dump(rebuilt)

    clock.advance(bot.deps.home_in_view_for)
    await bot.command("book rtx-0 1GB 12:00 for 1h long-after")
    await _settle()
    await bot.deps.homes.drain()
    assert len(bot.fake.calls_to("views.publish")) == 2


async def test_replies_to_a_response_url_share_the_apps_connection_pool(bot: Bot) -> None:
    """Bolt's respond() would open a new HTTP session (a TLS handshake) for every reply."""
    client = build_client("xoxb-test", bot.fake.base_url)
    async with aiohttp.ClientSession() as pool:
        client.session = pool
        respond = AsyncRespond(response_url=bot.fake.response_url("pooled"))
        reply = reply_for(client, "UA", respond, "C1")
        assert isinstance(reply, ResponseUrlReply) and reply.webhook.session is pool
        await reply.send(Message("hello", []))
    [sent] = await bot.fake.wait_for("response_url", predicate=lambda c: c.name == "pooled")
    assert sent.params["text"] == "hello" and sent.params["response_type"] == "ephemeral"
