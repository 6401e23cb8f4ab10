"""Proves the Slack test harness works against a bare Bolt app (no gpubook code involved).

If these fail, the fakes are wrong, not the bot: every other Slack-facing test relies on them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.slackfake import BlockKitError, FakeSlackWebAPI, validate_blocks, validate_view
from tests.slackfake import requests as slack_req

SECRET = "secret"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(*blocks: dict[str, Any], title: str = "Book a GPU") -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": list(blocks)}


def build_app(fake: FakeSlackWebAPI) -> AsyncApp:
    """A tiny Bolt app exercising ack, respond(), Web API calls, views and events."""
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    app = AsyncApp(signing_secret=SECRET, client=client)

    @app.command("/gpubook")
    async def gpubook(ack: Any, command: dict[str, Any], respond: Any, client: Any) -> None:
        if command["text"] == "echo":
            await ack(text="echo ack")
            return
        await ack()
        if "response_url" in command:
            await respond(text=f"got {command['text']}", blocks=[section("ok")])
        await client.chat_postMessage(channel=command["user_id"], text=command["text"])

    @app.action("book")
    async def book(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=modal(section("hi")))

    @app.view("book_modal")
    async def submit(ack: Any, view: dict[str, Any]) -> None:
        value = view["state"]["values"]["mem"]["mem_input"]["value"]
        await ack(response_action="errors", errors={"mem": f"bad: {value}"})

    @app.options("gpu_search")
    async def gpu_options(ack: Any, payload: dict[str, Any]) -> None:
        text = {"type": "plain_text", "text": f"gpu {payload['value']}"}
        await ack(options=[{"text": text, "value": payload["value"]}])

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: Any) -> None:
        await client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [section("home")]}
        )

    return app


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as server:
        yield server


@pytest.fixture
async def bot_url(fake: FakeSlackWebAPI) -> AsyncIterator[str]:
    """Serve the Bolt app's own aiohttp web_app on a random port, like production HTTP mode."""
    runner = web.AppRunner(build_app(fake).web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


# --------------------------------------------------------------------------- HTTP mode


async def test_signed_slash_command_reaches_fake(fake: FakeSlackWebAPI, bot_url: str) -> None:
    req = slack_req.slash_command("list", user_id="U7", response_url=fake.response_url("cmd"))
    status, _, body = await slack_req.post(bot_url, req)
    assert (status, body) == (200, "")

    [reply] = await fake.wait_for("response_url")
    assert reply.name == "cmd" and reply.params["text"] == "got list"
    [posted] = await fake.wait_for("chat.postMessage")
    # Bolt's per-request client adds team_id to every Web API call it makes.
    assert posted.params == {"channel": "U7", "text": "list", "team_id": "T0001"}
    assert posted.token == "xoxb-test"
    assert fake.calls_to("auth.test"), "Bolt checks the bot token once with auth.test"
    fake.assert_all_valid()


async def test_ack_body_is_returned_in_http_response(bot_url: str) -> None:
    status, headers, body = await slack_req.post(bot_url, slack_req.slash_command("echo"))
    # ack(text=...) alone is sent as a text/plain body, not JSON (Socket Mode wraps it).
    assert (status, body) == (200, "echo ack")
    assert headers["Content-Type"].startswith("text/plain")


async def test_bad_signature_is_rejected(bot_url: str) -> None:
    status, _, _ = await slack_req.post(bot_url, slack_req.slash_command("x", bad_signature=True))
    assert status == 401


async def test_stale_timestamp_is_rejected(bot_url: str) -> None:
    stale = int(time.time()) - 6 * 60
    status, _, _ = await slack_req.post(bot_url, slack_req.slash_command("x", timestamp=stale))
    assert status == 401


async def test_block_action_opens_modal(fake: FakeSlackWebAPI, bot_url: str) -> None:
    req = slack_req.block_action("book", "gpu-1")
    assert (await slack_req.post(bot_url, req))[0] == 200
    [opened] = await fake.wait_for("views.open")
    assert opened.params["trigger_id"] == req.payload["trigger_id"]
    fake.assert_all_valid()


async def test_view_submission_errors_come_back_in_ack(bot_url: str) -> None:
    state = {"mem": {"mem_input": {"type": "plain_text_input", "value": "lots"}}}
    req = slack_req.view_submission("book_modal", state)
    status, _, body = await slack_req.post(bot_url, req)
    assert status == 200
    assert '"response_action": "errors"' in body and "bad: lots" in body


async def test_block_suggestion_options_come_back_in_ack(bot_url: str) -> None:
    req = slack_req.block_suggestion("gpu_search", "a100", view=slack_req.view_payload())
    status, _, body = await slack_req.post(bot_url, req)
    assert status == 200 and '"value": "a100"' in body


async def test_app_home_event_and_url_verification(fake: FakeSlackWebAPI, bot_url: str) -> None:
    req = slack_req.event(slack_req.app_home_opened("U3"))
    assert (await slack_req.post(bot_url, req))[0] == 200
    [published] = await fake.wait_for("views.publish")
    assert published.params["user_id"] == "U3"

    status, _, body = await slack_req.post(bot_url, slack_req.url_verification("abc"))
    assert status == 200 and "abc" in body


# --------------------------------------------------------------------------- Web API fake


async def test_canned_replies_look_like_slack(fake: FakeSlackWebAPI) -> None:
    fake.set_user("U2", tz="Europe/Berlin", is_admin=True, name="ada")
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)

    user = (await client.users_info(user="U2"))["user"]
    assert (user["tz"], user["is_admin"], user["name"]) == ("Europe/Berlin", True, "ada")
    assert user["tz_offset"] in (3600, 7200)
    assert (await client.users_info(user="U9"))["user"]["tz"] == "UTC"

    first = await client.chat_postMessage(channel="C1", text="a")
    second = await client.chat_postMessage(channel="C1", text="b")
    assert float(first["ts"]) < float(second["ts"])
    assert (await client.conversations_open(users="U2"))["channel"]["id"] == "DU2"
    view = (await client.views_open(trigger_id="t", view=modal(section("x"))))["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert (await client.api_call("made.up"))["ok"] is True


async def test_views_update_hash_conflict(fake: FakeSlackWebAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    view = (await client.views_open(trigger_id="t", view=modal(section("x"))))["view"]
    await client.views_update(view_id=view["id"], hash=view["hash"], view=modal(section("y")))
    with pytest.raises(SlackApiError) as err:
        await client.views_update(view_id=view["id"], hash=view["hash"], view=modal(section("z")))
    assert err.value.response["error"] == "hash_conflict"


async def test_rate_limit_is_retried_by_sdk_handler(fake: FakeSlackWebAPI) -> None:
    # retry_after=0: the SDK sleeps int(Retry-After) + random() seconds, so keep it small.
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    client = AsyncWebClient(
        token="xoxb-test",
        base_url=fake.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    resp = await client.chat_postMessage(channel="C1", text="hi")
    assert resp["ok"] is True
    attempts = fake.calls_to("chat.postMessage", include_failed=True)
    assert [c.failed for c in attempts] == [True, False]


async def test_injected_errors_surface_as_slack_api_errors(fake: FakeSlackWebAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"

    fake.fail_next("chat.update", error="channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_update(channel="C1", ts="1.2", text="x")
    assert (await client.chat_update(channel="C1", ts="1.2", text="x"))["ok"]

    fake.fail_next("views.publish", status=500)
    with pytest.raises(SlackApiError):
        await client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert len(fake.calls_to("chat.update", include_failed=True)) == 3


async def test_wait_for_reports_what_was_recorded(fake: FakeSlackWebAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    await client.chat_postMessage(channel="C1", text="hello")
    with pytest.raises(AssertionError, match=r"chat\.postMessage.*hello"):
        await fake.wait_for("views.open", timeout=0.05)


async def test_form_encoded_json_fields_are_decoded(fake: FakeSlackWebAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    await client.api_call(
        "chat.postMessage", data={"channel": "C1", "blocks": '[{"type": "divider"}]'}
    )
    assert fake.calls_to("chat.postMessage")[0].params["blocks"] == [{"type": "divider"}]


# --------------------------------------------------------------------------- Block Kit


async def test_validation_catches_long_section_in_view(fake: FakeSlackWebAPI) -> None:
    with pytest.raises(BlockKitError, match="3000"):
        validate_view(modal(section("x" * 3001)))
    validate_view(modal(section("x" * 3000)))

    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    await client.views_open(trigger_id="t", view=modal(section("x" * 3001)))
    with pytest.raises(AssertionError, match="views.open"):
        fake.assert_all_valid()


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([{"type": "bogus"}], "unknown block type"),
        ([{"type": "divider"}] * 51, "51 blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "150"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2000"),
        ([{"type": "actions", "elements": [{"type": "bogus_el"}]}], "unknown element"),
        ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "dupl"),
    ],
)
def test_validate_blocks_rejects(blocks: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(BlockKitError, match=message):
        validate_blocks(blocks)


def test_validate_view_limits() -> None:
    with pytest.raises(BlockKitError, match="100"):
        validate_view(modal(*[{"type": "divider"}] * 101))
    with pytest.raises(BlockKitError, match="24"):
        validate_view(modal(section("x"), title="t" * 25))
    for bad in (1_700_000_000_000, 1_700_000_000.5):  # milliseconds, float
        picker = {"type": "datetimepicker", "action_id": "when", "initial_date_time": bad}
        with pytest.raises(BlockKitError, match="initial_date_time"):
            validate_view(modal({"type": "actions", "elements": [picker]}))
    validate_view({"type": "home", "blocks": [section("x")] * 100})


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_slash_command_is_acked(fake: FakeSlackWebAPI) -> None:
    handler = AsyncSocketModeHandler(build_app(fake), app_token="xapp-test")
    await handler.connect_async()
    try:
        [conn] = fake.calls_to("apps.connections.open")
        assert conn.token == "xapp-test"

        req = slack_req.slash_command("sm", user_id="U5", response_url=fake.response_url())
        envelope_id = await fake.socket_mode.send_envelope("slash_commands", req.payload)
        assert await fake.socket_mode.wait_for_ack(envelope_id) == {}
        await fake.wait_for("chat.postMessage", predicate=lambda c: c.params["text"] == "sm")

        echo = slack_req.slash_command("echo").payload
        envelope_id = await fake.socket_mode.send_envelope("slash_commands", echo)
        assert await fake.socket_mode.wait_for_ack(envelope_id) == {"text": "echo ack"}
    finally:
        await handler.close_async()


async def test_socket_mode_interactive_and_events(fake: FakeSlackWebAPI) -> None:
    handler = AsyncSocketModeHandler(build_app(fake), app_token="xapp-test")
    await handler.connect_async()
    try:
        state = {"mem": {"mem_input": {"type": "plain_text_input", "value": "9"}}}
        submission = slack_req.view_submission("book_modal", state).payload
        envelope_id = await fake.socket_mode.send_envelope("interactive", submission)
        ack = await fake.socket_mode.wait_for_ack(envelope_id)
        assert ack == {"response_action": "errors", "errors": {"mem": "bad: 9"}}

        home = slack_req.event(slack_req.app_home_opened("U4")).payload
        await fake.socket_mode.send_envelope("events_api", home)
        await fake.wait_for("views.publish", predicate=lambda c: c.params["user_id"] == "U4")
    finally:
        await handler.close_async()


async def test_socket_mode_rejects_bot_token(fake: FakeSlackWebAPI) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        await client.apps_connections_open(app_token="xoxb-test")


async def test_post_accepts_session(fake: FakeSlackWebAPI, bot_url: str) -> None:
    async with aiohttp.ClientSession(base_url=bot_url) as session:
        status, _, _ = await slack_req.post(session, slack_req.slash_command("x"))
    assert status == 200
