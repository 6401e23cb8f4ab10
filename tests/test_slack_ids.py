"""Slack user and channel ids: one shape rule (bot.core.slack_ids), and the command line that
checks what it is given against it and, with a bot token, against Slack itself."""

# The `gpubook` and `clean_env` fixtures come from test_cli; pytest finds them by name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.core import slack_ids
from bot.core.errors import InputError
from bot.core.phrases import Code
from tests.slackfake import FakeSlackWebAPI
from tests.test_cli import clean_env, gpubook  # noqa: F401


@pytest.mark.parametrize(
    ("typed", "user"),
    [("U0123ABCD", "U0123ABCD"), ("W1", "W1"), ("<@U42>", "U42"), (" <@U42|bob> ", "U42")],
)
def test_user_ids_and_mentions_name_a_user(typed: str, user: str) -> None:
    assert slack_ids.user_id(typed) == user


@pytest.mark.parametrize("typed", ["bob", "u123", "C0123", "<@bob>", "U", "cli", "@U1"])
def test_anything_else_is_not_a_user_id(typed: str) -> None:
    with pytest.raises(InputError) as caught:
        slack_ids.user_id(typed)
    assert caught.value.code is Code.USER_ID_INVALID
    assert str(caught.value).startswith(f"{typed} is not a Slack user id; give one like U0123ABCD")


def test_an_empty_user_id_is_asked_for() -> None:
    with pytest.raises(InputError) as caught:
        slack_ids.user_id("  ")
    assert caught.value.code is Code.USER_ID_MISSING


@pytest.mark.parametrize(
    ("typed", "channel"),
    [("C0123ABCD", "C0123ABCD"), ("G0ABC", "G0ABC"), ("<#C9>", "C9"), ("<#C9|gpu-talk>", "C9")],
)
def test_channel_ids_and_mentions_name_a_channel(typed: str, channel: str) -> None:
    assert slack_ids.channel_id(typed) == channel


@pytest.mark.parametrize("typed", ["general", "#general", "U123", "c123", "<#general>", ""])
def test_anything_else_is_not_a_channel_id(typed: str) -> None:
    assert slack_ids.mentioned_channel(typed) is None
    with pytest.raises(InputError) as caught:
        slack_ids.channel_id(typed)
    assert caught.value.code is Code.CHANNEL_ID_INVALID


# ---------------------------------------------------------------------------- the command line


def _book(gpubook, user: str):
    return gpubook(
        "book", "a100", "8GB", "--user", user, "--start", "now", "--for", "1h", "--task", "t"
    )


def _owners(gpubook) -> list[str]:
    return [row["user"] for row in json.loads(gpubook("export", "--format", "json").out)]


@pytest.mark.parametrize(
    ("user", "said"),
    [
        ("bob", "argument --user: bob is not a Slack user id; give one like U0123ABCD"),
        ("", "argument --user: Give a Slack user id, like U0123ABCD"),
    ],
)
def test_book_for_someone_who_is_no_slack_user_exits_2(gpubook, user, said):
    gpubook("gpu", "add", "a100", "80GB")
    result = _book(gpubook, user)
    assert result.code == 2
    assert said in result.err
    assert _owners(gpubook) == []


def test_book_reads_a_mention_as_its_user(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    assert _book(gpubook, "<@U0ALICE|alice>").code == 0
    assert _owners(gpubook) == ["U0ALICE"]


def test_cancel_as_someone_who_is_no_slack_user_exits_2(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    _book(gpubook, "U1")
    result = gpubook("cancel", "1", "--user", "alice")
    assert result.code == 2
    assert "argument --user: alice is not a Slack user id" in result.err


def test_gpu_edit_takes_only_a_channel_id_or_mention(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    refused = gpubook("gpu", "edit", "a100", "--channel", "general")
    assert refused.code == 2
    assert "argument --channel: general is not a Slack channel id" in refused.err
    routed = gpubook("gpu", "edit", "a100", "--channel", "<#C0GPU|gpu-talk>")
    assert routed.out == "Updated GPU 'a100': 80 GB, notifications in C0GPU.\n"


# ---------------------------------------------------------------------------- asking Slack


@pytest.fixture
async def slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlackWebAPI]:
    """A fake Slack the command line asks, as it would ask Slack with a bot token set."""
    async with FakeSlackWebAPI() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", fake.base_url)
        yield fake


async def test_with_a_token_slack_is_asked_whether_the_user_exists(gpubook, slack):
    await asyncio.to_thread(gpubook, "gpu", "add", "a100", "80GB")
    slack.fail_next("users.info", error="user_not_found")
    unknown = await asyncio.to_thread(_book, gpubook, "U0NOBODY")
    assert unknown.code == 2
    assert "--user: Slack has no user U0NOBODY in this workspace" in unknown.err
    slack.set_user("U0GONE", deleted=True)
    gone = await asyncio.to_thread(_book, gpubook, "U0GONE")
    assert gone.code == 2 and "U0GONE is a deactivated Slack account" in gone.err

    slack.set_user("U0ALICE", name="alice")
    assert (await asyncio.to_thread(_book, gpubook, "U0ALICE")).code == 0
    asked = [call.params["user"] for call in slack.calls_to("users.info", include_failed=True)]
    assert asked == ["U0NOBODY", "U0GONE", "U0ALICE"]
    assert await asyncio.to_thread(_owners, gpubook) == ["U0ALICE"]


async def test_with_a_token_slack_is_asked_whether_the_channel_exists(gpubook, slack):
    await asyncio.to_thread(gpubook, "gpu", "add", "a100", "80GB")
    slack.fail_next("conversations.info", error="channel_not_found")
    unknown = await asyncio.to_thread(gpubook, "gpu", "edit", "a100", "--channel", "C0NONE")
    assert unknown.code == 2
    assert "--channel: Slack has no channel C0NONE that gpubook can see" in unknown.err
    known = await asyncio.to_thread(gpubook, "gpu", "edit", "a100", "--channel", "C0GPU")
    assert known.code == 0
    assert [c.params["channel"] for c in slack.calls_to("conversations.info")] == ["C0GPU"]


async def test_when_slack_cannot_say_the_command_goes_on_with_a_warning(gpubook, slack):
    await asyncio.to_thread(gpubook, "gpu", "add", "a100", "80GB")
    slack.fail_next("users.info", error="missing_scope")
    result = await asyncio.to_thread(_book, gpubook, "U0ALICE")
    assert result.code == 0
    assert result.err == (
        "gpubook: Couldn't ask Slack whether U0ALICE exists (missing_scope); "
        "going ahead without checking.\n"
    )
