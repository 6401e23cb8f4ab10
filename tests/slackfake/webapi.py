"""A fake Slack Web API on loopback, so the bot can run its real slack_sdk client in tests.

Slack is unreachable from CI, and mocking ``AsyncWebClient`` would skip the HTTP encoding,
retry handlers and error mapping we actually depend on. Instead the bot is pointed at
``fake.base_url`` and every request is recorded as a :class:`Call`.
"""

# The wait helpers take timeout= on purpose: on expiry they raise an AssertionError that
# shows what WAS received, which asyncio.timeout() around the call could not do.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.slackfake.blockkit import (
    BlockKitError,
    validate_blocks,
    validate_message_payload,
    validate_view,
)
from tests.slackfake.socket_mode import FakeSocketMode

__all__ = [
    "Call",
    "FakeSlackWebAPI",
    "FakeUser",
    "BlockKitError",
    "validate_blocks",
    "validate_view",
]

TEAM_ID = "T0001"
TEAM_NAME = "Test"
TEAM_DOMAIN = "test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0001"
POLL_INTERVAL = 0.01

# Form-encoded slack_sdk calls send these as JSON strings; tests want Python objects.
_JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "options"}
)
_MESSAGE_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
)
_VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})


@dataclass(frozen=True)
class Call:
    """One request the fake received (``failed`` marks attempts answered by ``fail_next``)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    time: float
    failed: bool = False
    name: str | None = None  # the name given to fake.response_url(), for "response_url" calls

    @property
    def token(self) -> str | None:
        """The bearer token (slack_sdk moves ``token=`` into the Authorization header)."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        return self.params.get("token")


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass
class FakeUser:
    """A workspace member as ``users.info`` reports it."""

    id: str
    name: str
    tz: str = "UTC"
    is_admin: bool = False
    is_bot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_slack(self) -> dict[str, Any]:
        """Render like real ``users.info``: ``tz_offset`` is seconds east of UTC, right now."""
        now = datetime.now(ZoneInfo(self.tz))
        offset = now.utcoffset()
        user = {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.name.title(),
            "deleted": False,
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {"real_name": self.name.title(), "display_name": self.name},
        }
        user.update(self.extra)
        return user


class FakeSlackWebAPI:
    """aiohttp server on 127.0.0.1:<random port> that answers like Slack and records calls.

    Use as ``async with FakeSlackWebAPI() as fake:`` and build clients with
    ``AsyncWebClient(token="xoxb-test", base_url=fake.base_url)``.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._calls: list[Call] = []
        self._failures: dict[str, _Failure] = {}
        self._users: dict[str, FakeUser] = {}
        self._view_hashes: dict[str, str] = {}
        self._response_urls: dict[str, str] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.socket_mode = FakeSocketMode(self)

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind port 0 so parallel test runs never collide, then read back the real port."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{key}", self._handle_response_url)
        self.socket_mode.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close WebSockets first: runner.cleanup() would otherwise wait on them."""
        await self.socket_mode.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``AsyncWebClient(base_url=...)`` wants: ends in ``/api/`` (it urljoins methods)."""
        return f"{self.url}/api/"

    # ----------------------------------------------------------------- configuration

    def set_user(
        self,
        user_id: str,
        *,
        tz: str = "UTC",
        is_admin: bool = False,
        name: str | None = None,
        **extra: Any,
    ) -> FakeUser:
        """Configure what ``users.info`` returns for ``user_id`` (unknown users get UTC)."""
        user = FakeUser(user_id, name or user_id.lower(), tz, is_admin, extra=extra)
        self._users[user_id] = user
        return user

    def fail_next(
        self,
        method: str,
        status: int | None = None,
        *,
        error: str | None = None,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail.

        ``status=429`` answers ratelimited with ``Retry-After``; ``status=5xx`` an HTTP error;
        ``error="x"`` alone answers HTTP 200 ``{"ok": false, "error": "x"}`` like most Slack errors.
        """
        if status is None and error is None:
            raise ValueError("fail_next needs status= or error=")
        status = status or 200
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        wait = retry_after if status == 429 else None
        self._failures[method] = _Failure(status, error, wait, times)

    def response_url(self, name: str = "response") -> str:
        """A response_url served by this fake; POSTs to it are recorded as ``response_url``."""
        key = uuid.uuid4().hex
        self._response_urls[key] = name
        return f"{self.url}/response/{key}"

    # ----------------------------------------------------------------- inspection

    @property
    def calls(self) -> list[Call]:
        """Every recorded call, failed attempts included, oldest first."""
        return list(self._calls)

    def calls_to(self, method: str, *, include_failed: bool = False) -> list[Call]:
        """Calls to ``method``; pass ``include_failed=True`` to count retry attempts."""
        return [c for c in self._calls if c.method == method and (include_failed or not c.failed)]

    def clear(self) -> None:
        """Forget recorded calls (not users, failures or views)."""
        self._calls.clear()

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5,
        predicate: Callable[[Call], bool] | None = None,
        *,
        include_failed: bool = False,
    ) -> list[Call]:
        """Poll until ``count`` matching calls were recorded; Bolt listeners run after ack()."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matches = [
                c
                for c in self.calls_to(method, include_failed=include_failed)
                if predicate is None or predicate(c)
            ]
            if len(matches) >= count:
                return matches
            if asyncio.get_running_loop().time() >= deadline:
                raise AssertionError(
                    f"expected {count} call(s) to {method}, got {len(matches)} within {timeout}s;"
                    f" recorded:\n{self.describe_calls()}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    def describe_calls(self, limit: int = 300) -> str:
        """Short human-readable list of recorded calls, for assertion messages."""
        if not self._calls:
            return "  (no calls)"
        lines = []
        for call in self._calls:
            flag = " [failed]" if call.failed else ""
            lines.append(f"  {call.method}{flag} {json.dumps(call.params, default=str)[:limit]}")
        return "\n".join(lines)

    def assert_all_valid(self) -> None:
        """Validate every recorded ``blocks``/``view``/response_url payload as Slack would."""
        problems = []
        for index, call in enumerate(self._calls):
            try:
                _validate_call(call)
            except BlockKitError as exc:
                problems.append(f"call #{index} {call.method}: {exc}")
        if problems:
            raise AssertionError("invalid Block Kit payloads:\n" + "\n".join(problems))

    # ----------------------------------------------------------------- HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        headers = dict(request.headers)
        failure = self._take_failure(method)
        self._calls.append(Call(method, params, headers, time.time(), failed=failure is not None))
        if failure is not None:
            return _failure_response(failure)
        call = self._calls[-1]
        return web.json_response(self._reply(call))

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        name = self._response_urls.get(request.match_info["key"])
        if name is None:
            return web.Response(status=404, text="expired_url")
        body = await request.text()
        params = json.loads(body) if body else {}
        failure = self._take_failure("response_url")
        call = Call("response_url", params, dict(request.headers), time.time(), bool(failure), name)
        self._calls.append(call)
        if failure is not None:
            return _failure_response(failure)
        # Slack answers response_url POSTs with a bare "ok" body, not JSON.
        return web.Response(text="ok")

    def _take_failure(self, method: str) -> _Failure | None:
        failure = self._failures.get(method)
        if failure is None:
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            del self._failures[method]
        return failure

    # ----------------------------------------------------------------- canned replies

    def _reply(self, call: Call) -> dict[str, Any]:
        handler = _REPLIES.get(call.method)
        if handler is None:
            return {"ok": True}
        return handler(self, call)

    def _next_ts(self) -> str:
        """Unique, increasing message ts like Slack's ``1700000000.000100``."""
        n = next(self._ts)
        return f"{1700000000 + n // 10000}.{(n % 10000) * 100:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _auth_test(self, call: Call) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": "gpubook",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _users_info(self, call: Call) -> dict[str, Any]:
        user_id = call.params.get("user", "")
        user = self._users.get(user_id) or FakeUser(user_id, user_id.lower())
        return {"ok": True, "user": user.to_slack()}

    def _post_message(self, call: Call) -> dict[str, Any]:
        ts = self._next_ts()
        channel = _dm_channel(call.params.get("channel", ""))
        return {"ok": True, "channel": channel, "ts": ts, "message": _message(call.params, ts)}

    def _post_ephemeral(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, call: Call) -> dict[str, Any]:
        p = call.params
        ts = p.get("ts", "")
        return {
            "ok": True,
            "channel": p.get("channel"),
            "ts": ts,
            "text": p.get("text", ""),
            "message": _message(p, ts),
        }

    def _chat_delete(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "channel": call.params.get("channel"), "ts": call.params.get("ts")}

    def _conversations_open(self, call: Call) -> dict[str, Any]:
        users = str(call.params.get("users") or call.params.get("channel") or "")
        first = users.split(",")[0]
        return {"ok": True, "no_op": False, "channel": {"id": _dm_channel(first)}}

    def _conversations_info(self, call: Call) -> dict[str, Any]:
        channel = str(call.params.get("channel", ""))
        is_im = channel.startswith("D")
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": "" if is_im else "general",
                "is_channel": channel.startswith("C"),
                "is_im": is_im,
                "is_private": channel.startswith("G"),
                "is_member": True,
            },
        }

    def _views(self, call: Call) -> dict[str, Any]:
        """Echo the view back with id/hash; views.update enforces ``hash`` like Slack."""
        p = call.params
        view_id = p.get("view_id") or self._new_id("V")
        if call.method == "views.update" and p.get("hash"):
            current = self._view_hashes.get(view_id)
            if current is not None and current != p["hash"]:
                return {"ok": False, "error": "hash_conflict"}
        view = dict(p.get("view") or {})
        new_hash = f"{time.time():.6f}.{uuid.uuid4().hex[:8]}"
        self._view_hashes[view_id] = new_hash
        view.update(
            id=view_id,
            team_id=TEAM_ID,
            app_id=APP_ID,
            bot_id=BOT_ID,
            hash=new_hash,
            root_view_id=view_id,
            previous_view_id=None,
            state={"values": {}},
        )
        view.setdefault("private_metadata", "")
        view.setdefault("callback_id", "")
        view.setdefault("external_id", p.get("external_id", ""))
        return {"ok": True, "view": view}

    def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        """Socket Mode needs an app-level token; Slack rejects bot tokens here."""
        if not (call.token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_mode.issue_url()}


_REPLIES: dict[str, Callable[[FakeSlackWebAPI, Call], dict[str, Any]]] = {
    "auth.test": FakeSlackWebAPI._auth_test,
    "users.info": FakeSlackWebAPI._users_info,
    "chat.postMessage": FakeSlackWebAPI._post_message,
    "chat.postEphemeral": FakeSlackWebAPI._post_ephemeral,
    "chat.update": FakeSlackWebAPI._chat_update,
    "chat.delete": FakeSlackWebAPI._chat_delete,
    "conversations.open": FakeSlackWebAPI._conversations_open,
    "conversations.info": FakeSlackWebAPI._conversations_info,
    "views.open": FakeSlackWebAPI._views,
    "views.update": FakeSlackWebAPI._views,
    "views.push": FakeSlackWebAPI._views,
    "views.publish": FakeSlackWebAPI._views,
    "apps.connections.open": FakeSlackWebAPI._apps_connections_open,
}


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string and body (slack_sdk sends GET params, forms, JSON or multipart)."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {"_body": body})
        else:
            form = await request.post()
            params.update({k: v if isinstance(v, str) else repr(v) for k, v in form.items()})
    return {k: _decode_json_field(k, v) for k, v in params.items()}


def _decode_json_field(key: str, value: Any) -> Any:
    if key in _JSON_FIELDS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _failure_response(failure: _Failure) -> web.Response:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    body = {"ok": False, "error": failure.error}
    return web.json_response(body, status=failure.status, headers=headers)


def _dm_channel(channel: str) -> str:
    """Posting to a user ID lands in the app's DM with them, which Slack reports as D<user>."""
    return f"D{channel}" if channel[:1] in ("U", "W") else channel


def _message(params: dict[str, Any], ts: str) -> dict[str, Any]:
    message = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": params.get("text", ""),
        "ts": ts,
    }
    if params.get("blocks") is not None:
        message["blocks"] = params["blocks"]
    if params.get("thread_ts"):
        message["thread_ts"] = params["thread_ts"]
    return message


def _validate_call(call: Call) -> None:
    """Dispatch one recorded call to the right Block Kit validator."""
    if call.method in _VIEW_METHODS and call.params.get("view") is not None:
        validate_view(call.params["view"])
    elif call.method in _MESSAGE_METHODS or call.method == "response_url":
        validate_message_payload(call.params)
