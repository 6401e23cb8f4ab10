"""Factory of signed Slack requests, shaped like the ones Slack POSTs to ``/slack/events``.

Bolt verifies ``X-Slack-Signature`` (HMAC of ``v0:<timestamp>:<raw body>``) and rejects
timestamps older than 5 minutes with 401, so tests must sign the exact bytes they send.
Content types follow Slack: slash commands are form fields, interactions are a form with one
``payload=<json>`` field, Events API callbacks are raw JSON.

Every function returns a :class:`SignedRequest` whose ``payload`` is the decoded dict, so the
same request can be pushed over Socket Mode: ``fake.socket_mode.send_envelope("slash_commands",
slash_command("list").payload)``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier
from yarl import URL

DEFAULT_SIGNING_SECRET = "secret"
TEAM_ID = "T0001"
TEAM_DOMAIN = "test"
APP_ID = "A0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
VERIFICATION_TOKEN = "verification-token"  # legacy field Slack still sends; Bolt ignores it
EVENTS_PATH = "/slack/events"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_counter = itertools.count(1)


class SignOptions(TypedDict, total=False):
    """How to sign: ``timestamp`` (UNIX seconds) and ``bad_signature`` forge invalid requests."""

    signing_secret: str
    timestamp: int | str
    bad_signature: bool


@dataclass(frozen=True)
class SignedRequest:
    """Exact bytes and headers to POST, plus the decoded ``payload`` for Socket Mode reuse."""

    body: bytes
    headers: dict[str, str]
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return self.body.decode()


# --------------------------------------------------------------------------- signing


def sign(
    body: bytes, content_type: str, payload: dict[str, Any], **opts: Unpack[SignOptions]
) -> SignedRequest:
    """Sign ``body`` the way Slack does; ``bad_signature`` signs with the wrong secret."""
    secret = opts.get("signing_secret", DEFAULT_SIGNING_SECRET)
    timestamp = str(opts.get("timestamp") or int(time.time()))
    if opts.get("bad_signature"):
        secret = "wrong-" + secret
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
    }
    return SignedRequest(body, headers, payload)


def _form(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    return sign(urlencode(payload).encode(), FORM, payload, **opts)


def _interaction(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return sign(body, FORM, payload, **opts)


def _json(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    return sign(json.dumps(payload).encode(), JSON, payload, **opts)


# --------------------------------------------------------------------------- common parts


def new_trigger_id() -> str:
    """Trigger ids look like ``<digits>.<digits>.<hex>``; unique per request."""
    return f"{int(time.time())}.{next(_counter)}.{secrets.token_hex(16)}"


def _user(user_id: str, team_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> dict[str, Any]:
    return {"id": team_id, "domain": TEAM_DOMAIN}


def _base(
    type_: str, user_id: str, team_id: str, trigger_id: str | None, *, with_trigger: bool = True
) -> dict[str, Any]:
    """Fields every interaction payload carries (view_closed/block_suggestion lack trigger_id)."""
    payload = {
        "type": type_,
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "is_enterprise_install": False,
        "enterprise": None,
    }
    if with_trigger:
        payload["trigger_id"] = trigger_id or new_trigger_id()
    return payload


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


def _message_payload(ts: str, text: str = "") -> dict[str, Any]:
    return {"type": "message", "ts": ts, "text": text, "user": BOT_USER_ID, "bot_id": BOT_ID}


def _container(
    message: dict[str, Any] | None, view: dict[str, Any] | None, channel_id: str
) -> dict[str, Any]:
    """Slack tells listeners where the action happened: a view or a message."""
    if view is not None:
        return {"type": "view", "view_id": view.get("id", "V0001")}
    ts = (message or {}).get("ts", "1700000000.000100")
    return {"type": "message", "message_ts": ts, "channel_id": channel_id, "is_ephemeral": False}


def _action_type(selected_option: dict[str, Any] | None, selected_date_time: int | None) -> str:
    if selected_date_time is not None:
        return "datetimepicker"
    if selected_option is not None:
        return "static_select"
    return "button"


# --------------------------------------------------------------------------- requests


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
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return _form(payload, **opts)


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
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type or _action_type(selected_option, selected_date_time),
        "action_ts": f"{time.time():.6f}",
    }
    if value is not None:
        action["value"] = value
    if selected_option is not None:
        action["selected_option"] = selected_option
    if selected_date_time is not None:
        action["selected_date_time"] = selected_date_time
    payload = _base("block_actions", user_id, team_id, trigger_id)
    payload["container"] = container or _container(message, view, channel_id)
    payload["actions"] = [action]
    if view is not None:
        payload["view"] = view
    else:
        payload["channel"] = {"id": channel_id, "name": "general"}
        payload["message"] = message or _message_payload(payload["container"]["message_ts"])
        payload["state"] = {"values": state_values or {}}
    if response_url is not None:
        payload["response_url"] = response_url
    return _interaction(payload, **opts)


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
    payload = _base("view_submission", user_id, team_id, trigger_id)
    payload["view"] = view_payload(
        view_id=view_id,
        callback_id=callback_id,
        private_metadata=private_metadata,
        state_values=state_values,
        blocks=blocks,
        team_id=team_id,
    )
    payload["response_urls"] = response_urls or []
    return _interaction(payload, **opts)


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
    payload = _base("view_closed", user_id, team_id, None, with_trigger=False)
    payload["view"] = view_payload(
        view_id=view_id,
        callback_id=callback_id,
        private_metadata=private_metadata,
        team_id=team_id,
    )
    payload["is_cleared"] = is_cleared
    return _interaction(payload, **opts)


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
    payload = _base("block_suggestion", user_id, team_id, None, with_trigger=False)
    payload.update(action_id=action_id, block_id=block_id, value=value)
    payload["container"] = _container(None, view, channel_id)
    if view is not None:
        payload["view"] = view
    else:
        payload["channel"] = {"id": channel_id, "name": "general"}
    return _interaction(payload, **opts)


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
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_counter):08d}",
        "event_time": event_time or int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    request = _json(payload, **opts)
    if retry_num is not None:
        request.headers["X-Slack-Retry-Num"] = str(retry_num)
        request.headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return request


def app_home_opened(user_id: str = "U1", tab: str = "home") -> dict[str, Any]:
    """The inner ``app_home_opened`` event, to wrap with :func:`event`."""
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": f"D{user_id}",
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }


def url_verification(challenge: str, **opts: Unpack[SignOptions]) -> SignedRequest:
    """The handshake Slack sends when the Request URL is saved; Bolt echoes ``challenge``."""
    payload = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return _json(payload, **opts)


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
