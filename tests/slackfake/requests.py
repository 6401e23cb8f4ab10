"""Factory of signed Slack requests, shaped like the ones Slack POSTs to ``/slack/events``.

The shapes and the signing live in :mod:`bot.console.slack_requests` (the console sends the
same requests); this module fills in the test workspace's ids and handy defaults, and posts.

Every function returns a :class:`SignedRequest` whose ``payload`` is the decoded dict, so the
same request can be pushed over Socket Mode: ``fake.socket_mode.send_envelope("slash_commands",
slash_command("list").payload)``.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any, Unpack

import aiohttp
from yarl import URL

from bot.console import slack_requests as shapes
from bot.console.slack_requests import (
    SignedRequest,
    SignOptions,
    SlackIdentity,
    new_trigger_id,
    now_ts,
)

__all__ = [
    "SignedRequest",
    "app_home_opened",
    "block_action",
    "block_suggestion",
    "event",
    "new_trigger_id",
    "post",
    "sign",
    "slash_command",
    "url_verification",
    "view_closed",
    "view_payload",
    "view_submission",
]

DEFAULT_SIGNING_SECRET = "secret"
TEAM_ID = "T0001"
TEAM_DOMAIN = "test"
APP_ID = "A0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
VERIFICATION_TOKEN = "verification-token"  # legacy field Slack still sends; Bolt ignores it
EVENTS_PATH = "/slack/events"
FORM = shapes.FORM
JSON = shapes.JSON
#: The test workspace, as both the request factory and the fake Web API name it.
IDENTITY = SlackIdentity(
    team_id=TEAM_ID,
    team_name="Test",
    team_domain=TEAM_DOMAIN,
    url=f"https://{TEAM_DOMAIN}.slack.com/",
    app_id=APP_ID,
    bot_user_id=BOT_USER_ID,
    bot_id=BOT_ID,
    verification_token=VERIFICATION_TOKEN,
)


# --------------------------------------------------------------------------- signing


def sign(
    body: bytes, content_type: str, payload: dict[str, Any], **opts: Unpack[SignOptions]
) -> SignedRequest:
    """Sign ``body`` the way Slack does; ``bad_signature`` signs with the wrong secret."""
    return shapes.sign(body, content_type, payload, **_with_secret(opts))


def _with_secret(opts: SignOptions) -> SignOptions:
    return {"signing_secret": DEFAULT_SIGNING_SECRET, **opts}


def _identity(team_id: str) -> SlackIdentity:
    return IDENTITY if team_id == TEAM_ID else dataclasses.replace(IDENTITY, team_id=team_id)


def _container(
    message: dict[str, Any] | None, view: dict[str, Any] | None, channel_id: str
) -> dict[str, Any]:
    """Slack tells listeners where the action happened: a view or a message."""
    if view is not None:
        return shapes.view_container(view.get("id", "V0001"))
    return shapes.message_container((message or {}).get("ts", "1700000000.000100"), channel_id)


def _action_type(selected_option: dict[str, Any] | None, selected_date_time: int | None) -> str:
    if selected_date_time is not None:
        return "datetimepicker"
    if selected_option is not None:
        return "static_select"
    return "button"


# --------------------------------------------------------------------------- requests


def view_payload(
    *,
    view_id: str = "V0001",
    callback_id: str = "",
    type: str = "modal",
    private_metadata: str = "",
    state_values: dict[str, Any] | None = None,
    blocks: list[dict[str, Any]] | None = None,
    title: str = "GPU booking",
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A view as Slack embeds it in interaction payloads (with ``state.values`` and ``hash``)."""
    view: dict[str, Any] = {
        "id": view_id,
        "team_id": team_id,
        "type": type,
        "blocks": blocks or [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": state_values or {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }
    if type == "modal":
        view["title"] = {"type": "plain_text", "text": title}
        view["close"] = {"type": "plain_text", "text": "Cancel"}
        view["submit"] = {"type": "plain_text", "text": "Submit"}
    return view


def slash_command(
    text: str = "",
    *,
    command: str = "/gpubook",
    user_id: str = "U1",
    user_name: str | None = None,
    team_id: str = TEAM_ID,
    channel_id: str = "C1",
    channel_name: str = "general",
    response_url: str | None = None,
    trigger_id: str | None = None,
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """A form-encoded slash command. Pass ``response_url=fake.response_url()`` to use respond()."""
    payload = shapes.slash_command(
        _identity(team_id),
        text,
        command=command,
        user_id=user_id,
        user_name=user_name,
        channel_id=channel_id,
        channel_name=channel_name,
        response_url=response_url,
        trigger_id=trigger_id,
    )
    return shapes.form_request(payload, **_with_secret(opts))


def block_action(
    action_id: str,
    value: str | None = None,
    *,
    user_id: str = "U1",
    team_id: str = TEAM_ID,
    block_id: str = "b1",
    action_type: str | None = None,
    channel_id: str = "C1",
    container: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    response_url: str | None = None,
    selected_option: dict[str, Any] | None = None,
    selected_date_time: int | None = None,
    state_values: dict[str, Any] | None = None,
    trigger_id: str | None = None,
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """A ``block_actions`` interaction from a message, or from a modal/Home when ``view`` given.

    Build ``view`` with :func:`view_payload` (``type="home"`` for the App Home tab).
    """
    identity = _identity(team_id)
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type or _action_type(selected_option, selected_date_time),
        "action_ts": now_ts(),
    }
    if value is not None:
        action["value"] = value
    if selected_option is not None:
        action["selected_option"] = selected_option
    if selected_date_time is not None:
        action["selected_date_time"] = selected_date_time
    container = container or _container(message, view, channel_id)
    if view is None and message is None:
        message = shapes.message_payload(identity, container["message_ts"])
    payload = shapes.block_actions(
        shapes.interaction(identity, "block_actions", user_id, trigger_id=trigger_id),
        action,
        container=container,
        view=view,
        channel={"id": channel_id, "name": "general"},
        message=message,
        state_values=state_values,
        response_url=response_url,
    )
    return shapes.interaction_request(payload, **_with_secret(opts))


def view_submission(
    callback_id: str,
    state_values: dict[str, Any] | None = None,
    *,
    private_metadata: str = "",
    user_id: str = "U1",
    team_id: str = TEAM_ID,
    view_id: str = "V0001",
    blocks: list[dict[str, Any]] | None = None,
    response_urls: list[dict[str, Any]] | None = None,
    trigger_id: str | None = None,
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """A modal submit. ``state_values`` is ``{block_id: {action_id: {type, value...}}}``."""
    identity = _identity(team_id)
    view = view_payload(
        view_id=view_id,
        callback_id=callback_id,
        private_metadata=private_metadata,
        state_values=state_values,
        blocks=blocks,
        team_id=team_id,
    )
    base = shapes.interaction(identity, "view_submission", user_id, trigger_id=trigger_id)
    payload = shapes.view_submission(base, view, response_urls)
    return shapes.interaction_request(payload, **_with_secret(opts))


def view_closed(
    callback_id: str,
    *,
    private_metadata: str = "",
    user_id: str = "U1",
    team_id: str = TEAM_ID,
    view_id: str = "V0001",
    is_cleared: bool = False,
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """Sent only if the modal was opened with ``notify_on_close``; carries no trigger_id."""
    identity = _identity(team_id)
    payload = shapes.interaction(identity, "view_closed", user_id, with_trigger=False)
    payload["view"] = view_payload(
        view_id=view_id, callback_id=callback_id, private_metadata=private_metadata, team_id=team_id
    )
    payload["is_cleared"] = is_cleared
    return shapes.interaction_request(payload, **_with_secret(opts))


def block_suggestion(
    action_id: str,
    value: str,
    *,
    block_id: str = "b1",
    user_id: str = "U1",
    team_id: str = TEAM_ID,
    view: dict[str, Any] | None = None,
    channel_id: str = "C1",
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """An external_select options request; the listener answers in ack(options=[...])."""
    identity = _identity(team_id)
    payload = shapes.interaction(identity, "block_suggestion", user_id, with_trigger=False)
    payload.update(action_id=action_id, block_id=block_id, value=value)
    payload["container"] = _container(None, view, channel_id)
    if view is not None:
        payload["view"] = view
    else:
        payload["channel"] = {"id": channel_id, "name": "general"}
    return shapes.interaction_request(payload, **_with_secret(opts))


def event(
    event: dict[str, Any],
    *,
    team_id: str = TEAM_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    **opts: Unpack[SignOptions],
) -> SignedRequest:
    """An Events API ``event_callback``; ``retry_num`` adds Slack's redelivery headers."""
    payload = shapes.event_callback(
        _identity(team_id), event, event_id=event_id, event_time=event_time
    )
    request = shapes.json_request(payload, **_with_secret(opts))
    if retry_num is not None:
        request.headers["X-Slack-Retry-Num"] = str(retry_num)
        request.headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return request


def app_home_opened(user_id: str = "U1", tab: str = "home") -> dict[str, Any]:
    """The inner ``app_home_opened`` event, to wrap with :func:`event`."""
    return shapes.app_home_opened(user_id, tab)


def url_verification(challenge: str, **opts: Unpack[SignOptions]) -> SignedRequest:
    """The handshake Slack sends when the Request URL is saved; Bolt echoes ``challenge``."""
    payload = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return shapes.json_request(payload, **_with_secret(opts))


# --------------------------------------------------------------------------- sending


async def post(
    target: str | aiohttp.ClientSession, req: SignedRequest, path: str = EVENTS_PATH
) -> tuple[int, dict[str, str], str]:
    """POST ``req`` to the bot; return ``(status, headers, body_text)``.

    ``target`` is a base URL like ``http://127.0.0.1:PORT`` (``path`` is appended unless the URL
    already has one) or an ``aiohttp.ClientSession`` created with ``base_url=``.
    """
    if isinstance(target, aiohttp.ClientSession):
        return await _post_with(target, path, req)
    url = target if _has_path(target) else target.rstrip("/") + path
    async with aiohttp.ClientSession() as session:
        return await _post_with(session, url, req)


async def _post_with(
    session: aiohttp.ClientSession, url: str, req: SignedRequest
) -> tuple[int, dict[str, str], str]:
    async with session.post(url, data=req.body, headers=req.headers) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def _has_path(url: str) -> bool:
    return URL(url).path not in ("", "/")
