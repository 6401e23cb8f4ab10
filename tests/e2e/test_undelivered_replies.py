"""Slack down while a slash command is answered: the request is still acked and done; an answer
ready in time goes in the ack (Slack's Web API is not needed for it), a later one that Slack
will not take is logged, tried once, never retried until it is stale."""

from __future__ import annotations

import json
import logging

import pytest

from bot.runtime.runner import wait_for_listeners
from tests.e2e.conftest import Bot
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req


@pytest.mark.parametrize("deps_options", [{"answer_in_ack_within": 0}])  # answers come late
@pytest.mark.parametrize("status", [500, 503])
async def test_a_reply_slack_refuses_is_logged_once_and_not_retried(
    bot: Bot, fake: FakeSlackWebAPI, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    await bot.add_gpu()
    await bot.command("help")  # Bolt checks its token once (auth.test), while Slack was up
    fake.clear()
    fake.outage(status)
    req = slack_req.slash_command(
        "book rtx-0 1GB 10:00 for 1h lost reply", response_url=fake.response_url("lost")
    )
    with caplog.at_level(logging.WARNING, logger="handlers.context"):
        assert await bot.send(req) == (200, "")
        await fake.wait_for("response_url", include_failed=True)
        await wait_for_listeners(within=10)
    fake.recover()

    assert len(fake.calls_to("response_url", include_failed=True)) == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "handlers.context"]
    assert logged == ["could not deliver a reply"]
    assert [b.task for b in await bot.bookings()] == ["lost reply"]  # the channel still hears


async def test_an_answer_ready_in_time_reaches_the_person_in_the_ack_while_slack_is_down(
    bot: Bot, fake: FakeSlackWebAPI
) -> None:
    await bot.add_gpu()
    await bot.command("help")
    fake.clear()
    fake.outage(503)
    req = slack_req.slash_command(
        "book rtx-0 1GB 10:00 for 1h in the ack", response_url=fake.response_url("kept")
    )
    status, body = await bot.send(req)
    await wait_for_listeners(within=10)
    fake.recover()

    assert status == 200 and "Booked #1" in json.loads(body)["text"]
    assert not fake.calls_to("response_url", include_failed=True)
