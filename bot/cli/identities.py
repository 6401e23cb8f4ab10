"""Whom and where a command names: Slack user and channel ids, checked before anything is done.

A booking for ``--user bob`` would belong to nobody in Slack: no reminder reaches its owner,
nobody can cancel it as their own. The shape is :mod:`bot.core.slack_ids`' rule, applied as an
argparse type, so a typo exits 2 like any malformed argument. With a bot token configured
(``SLACK_BOT_TOKEN``; ``SLACK_API_URL`` for a Slack double) the command also asks Slack whether
the id exists, and refuses one Slack does not know, exiting 2 too: the command was not
attempted. When Slack cannot answer (no network, a scope the app lacks) the command goes on
with a warning, since the shape is right and the operator may be fixing exactly that.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.cli.registry import UsageError, argument_type
from bot.cli.wording import TerminalText
from bot.core import slack_ids
from bot.core.phrases import Code
from bot.core.sentence import Quote, say
from bot.core.wording import render
from bot.runtime.config import Settings
from bot.runtime.slack_client import build_client

#: What Slack answers about an id it does not know.
_USER_UNKNOWN = frozenset({"user_not_found", "user_not_visible"})
_CHANNEL_UNKNOWN = frozenset({"channel_not_found"})

#: ``--user``: a Slack user id (``U…``/``W…``, or a ``<@U…>`` mention).
user_argument = argument_type(slack_ids.user_id)
_channel_id = argument_type(slack_ids.channel_id)


def channel_argument(text: str) -> str:
    """``--channel``: a Slack channel id (``C…``/``G…``, or ``<#C…|name>``); ``""`` clears it."""
    return "" if not text.strip() else _channel_id(text)


async def check_in_slack(
    settings: Settings, *, user: str | None = None, channel: str | None = None
) -> None:
    """Ask Slack whether ``user`` and ``channel`` exist, when a bot token is configured."""
    if not settings.slack_bot_token or not (user or channel):
        return
    client = build_client(settings.slack_bot_token, settings.slack_api_url)
    if user:
        found = await _ask(client.users_info(user=user), _USER_UNKNOWN, Code.USER_UNKNOWN, user)
        if found.get("user", {}).get("deleted"):
            raise _refusal(Code.USER_DEACTIVATED, user)
    if channel:
        await _ask(
            client.conversations_info(channel=channel),
            _CHANNEL_UNKNOWN,
            Code.CHANNEL_UNKNOWN,
            channel,
        )


async def _ask(
    call: Awaitable[AsyncSlackResponse], unknown: frozenset[str], code: Code, typed: str
) -> dict[str, Any]:
    """Slack's answer about ``typed``: the refusal ``code`` when Slack says it does not know it
    (an error in ``unknown``), ``{}`` after a warning when Slack could not say."""
    try:
        response = await call
    except SlackApiError as error:
        reason = str(error.response.get("error") or "no answer")
        if reason in unknown:
            raise _refusal(code, typed) from None
        _warn(typed, reason)
        return {}
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as error:
        _warn(typed, str(error) or type(error).__name__)
        return {}
    return response.data if isinstance(response.data, dict) else {}


def _refusal(code: Code, typed: str) -> UsageError:
    option = "--user" if slack_ids.is_user_id(typed) else "--channel"
    return UsageError(f"{option}: {render(say(code, typed=Quote(typed)), TerminalText())}")


def _warn(typed: str, reason: str) -> None:
    sentence = say(Code.SLACK_UNCHECKED, typed=Quote(typed), reason=reason)
    print(f"gpubook: {render(sentence, TerminalText())}", file=sys.stderr)
