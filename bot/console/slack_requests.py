"""Requests shaped and signed exactly like the ones Slack POSTs to an app: one builder for the
console (which dispatches them into the real Bolt app) and for the test suite's fake Slack.

Bolt verifies ``X-Slack-Signature`` (HMAC of ``v0:<timestamp>:<raw body>``) and rejects
timestamps older than 5 minutes, so a request is signed over the exact bytes that are sent.
Content types follow Slack: slash commands are form fields, interactions are a form with one
``payload=<json>`` field, Events API callbacks are raw JSON. Every request keeps its decoded
``payload`` too, so the same request can be pushed over Socket Mode.

Who the workspace and the app are (:class:`SlackIdentity`) is a parameter: the console is its
own workspace, the tests use Slack-looking fixed ids.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_counter = itertools.count(1)


@dataclass(frozen=True)
class SlackIdentity:
    """The workspace and the app as Slack names them in payloads and Web API replies."""

    team_id: str
    team_name: str
    team_domain: str
    #: What ``auth.test`` reports as the workspace URL.
    url: str
    app_id: str
    bot_user_id: str
    bot_id: str
    #: The legacy ``token`` field Slack still sends in payloads (Bolt ignores it).
    verification_token: str


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
    secret = opts["signing_secret"]
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


def form_request(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    """A slash command: the payload's fields form-encoded."""
    return sign(urlencode(payload).encode(), FORM, payload, **opts)


def interaction_request(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    """An interaction: one ``payload`` form field holding the JSON."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return sign(body, FORM, payload, **opts)


def json_request(payload: dict[str, Any], **opts: Unpack[SignOptions]) -> SignedRequest:
    """An Events API callback: the JSON itself."""
    return sign(json.dumps(payload).encode(), JSON, payload, **opts)


# --------------------------------------------------------------------------- common parts


def new_trigger_id() -> str:
    """Trigger ids look like ``<digits>.<digits>.<hex>``; unique per request."""
    return f"{int(time.time())}.{next(_counter)}.{secrets.token_hex(16)}"


def new_event_id() -> str:
    return f"Ev{next(_counter):08d}"


def now_ts() -> str:
    """An ``action_ts`` / ``event_ts``: seconds with microseconds, as Slack writes them."""
    return f"{time.time():.6f}"


def interaction(
    app: SlackIdentity,
    type_: str,
    user_id: str,
    *,
    user_name: str | None = None,
    trigger_id: str | None = None,
    with_trigger: bool = True,
) -> dict[str, Any]:
    """Fields every interaction payload carries (view_closed/block_suggestion lack trigger_id)."""
    name = user_name or user_id.lower()
    payload: dict[str, Any] = {
        "type": type_,
        "team": {"id": app.team_id, "domain": app.team_domain},
        "user": {"id": user_id, "username": name, "name": name, "team_id": app.team_id},
        "api_app_id": app.app_id,
        "token": app.verification_token,
        "is_enterprise_install": False,
        "enterprise": None,
    }
    if with_trigger:
        payload["trigger_id"] = trigger_id or new_trigger_id()
    return payload


def message_payload(
    app: SlackIdentity,
    ts: str,
    text: str = "",
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A bot message as Slack returns it from ``chat.*`` and embeds it in ``block_actions``."""
    message: dict[str, Any] = {
        "type": "message",
        "user": app.bot_user_id,
        "bot_id": app.bot_id,
        "app_id": app.app_id,
        "team": app.team_id,
        "text": text,
        "ts": ts,
    }
    if blocks is not None:
        message["blocks"] = blocks
    if thread_ts:
        message["thread_ts"] = thread_ts
    return message


def message_container(ts: str, channel_id: str, *, is_ephemeral: bool = False) -> dict[str, Any]:
    """Where a click in a message happened."""
    return {
        "type": "message",
        "message_ts": ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }


def view_container(view_id: str) -> dict[str, Any]:
    """Where a click in a modal or the App Home happened."""
    return {"type": "view", "view_id": view_id}


# --------------------------------------------------------------------------- payloads


def slash_command(
    app: SlackIdentity,
    text: str,
    *,
    command: str,
    user_id: str,
    user_name: str | None = None,
    channel_id: str,
    channel_name: str,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A slash command's fields (form-encode with :func:`form_request`)."""
    payload = {
        "token": app.verification_token,
        "team_id": app.team_id,
        "team_domain": app.team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": app.app_id,
        "is_enterprise_install": "false",
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def block_actions(
    base: dict[str, Any],
    action: dict[str, Any],
    *,
    container: dict[str, Any],
    view: dict[str, Any] | None = None,
    channel: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
    state_values: dict[str, Any] | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload on ``base`` (:func:`interaction`): a click in ``view``, or in
    ``message`` of ``channel`` (with the message's own input ``state``)."""
    payload = {**base, "container": container, "actions": [action]}
    if view is not None:
        payload["view"] = view
    else:
        payload["channel"] = channel
        payload["message"] = message
        payload["state"] = {"values": state_values or {}}
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def view_submission(
    base: dict[str, Any], view: dict[str, Any], response_urls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A modal submit; ``view["state"]["values"]`` carries what was typed."""
    return {**base, "view": view, "response_urls": response_urls or []}


def event_callback(
    app: SlackIdentity,
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": app.verification_token,
        "team_id": app.team_id,
        "api_app_id": app.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time or int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": app.team_id,
                "user_id": app.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def app_home_opened(user_id: str, tab: str = "home") -> dict[str, Any]:
    """The inner ``app_home_opened`` event, to wrap with :func:`event_callback`."""
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": f"D{user_id}",
        "tab": tab,
        "event_ts": now_ts(),
    }
