"""A fake Slack Web API on loopback, so the bot can run its real slack_sdk client in tests.

Slack is unreachable from CI, and mocking ``AsyncWebClient`` would skip the HTTP encoding,
retry handlers and error mapping we actually depend on. Instead the bot is pointed at
``fake.base_url``. The canned replies are the console's Slack double
(:class:`bot.console.slackapi.SlackWebAPI`); this fake records every request as a :class:`Call`,
fails calls on demand, validates Block Kit and serves Socket Mode.
"""

# The wait helpers take timeout= on purpose: on expiry they raise an AssertionError that
# shows what WAS received, which asyncio.timeout() around the call could not do.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from bot.console.slack_requests import SlackIdentity
from bot.console.slackapi import ResponseTarget, SlackUser, SlackWebAPI
from tests.slackfake.blockkit import (
    BlockKitError,
    validate_blocks,
    validate_message_payload,
    validate_view,
)
from tests.slackfake.requests import APP_ID, IDENTITY
from tests.slackfake.socket_mode import FakeSocketMode

__all__ = [
    "Call",
    "FakeSlackWebAPI",
    "FakeUser",
    "BlockKitError",
    "validate_blocks",
    "validate_view",
]

POLL_INTERVAL = 0.01
#: A workspace member as ``users.info`` reports it (see :meth:`FakeSlackWebAPI.set_user`).
FakeUser = SlackUser

_MESSAGE_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
)
_VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})


@dataclass(frozen=True)
class Call:
    """One request the fake received (``failed`` marks attempts answered by ``fail_next`` or
    during an ``outage``)."""

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


#: The method name of :meth:`FakeSlackWebAPI.record_ack`'s calls: a message sent in an ack.
ACK = "ack"
#: Every answer to a command or a button: in its ack, or posted to its response_url.
REPLIES = ("response_url", ACK)


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    remaining: int


class FakeSlackWebAPI(SlackWebAPI):
    """aiohttp server on 127.0.0.1:<random port> that answers like Slack and records calls.

    Use as ``async with FakeSlackWebAPI() as fake:`` and build clients with
    ``AsyncWebClient(token="xoxb-test", base_url=fake.base_url)``.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(IDENTITY, host)
        self._calls: list[Call] = []
        self._failures: dict[str, _Failure] = {}
        #: While set, every call fails (see :meth:`outage`).
        self._outage: _Failure | None = None
        self._hang = False
        self._recovered = asyncio.Event()
        self.socket_mode = FakeSocketMode(self)
        #: Bot tokens of the workspaces added with :meth:`add_workspace`, and their identities.
        self.workspaces: dict[str, SlackIdentity] = {}
        #: OAuth codes ``oauth.v2.access`` trades for a workspace's bot token.
        self.install_codes: dict[str, str] = {}

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_routes(self, app: web.Application) -> None:
        self.socket_mode.add_routes(app)

    async def close(self) -> None:
        """Close WebSockets first: runner.cleanup() would otherwise wait on them."""
        self.recover()  # calls still hanging in an outage answer now
        await self.socket_mode.close_all()
        await super().close()

    # ----------------------------------------------------------------- configuration

    def set_user(
        self,
        user_id: str,
        *,
        tz: str = "UTC",
        is_admin: bool = False,
        name: str | None = None,
        email: str | None = None,
        **extra: Any,
    ) -> FakeUser:
        """Configure what ``users.info`` returns for ``user_id`` (unknown users get UTC), and
        the address ``users.lookupByEmail`` finds them by."""
        user = FakeUser(user_id, name or user_id.lower(), tz, is_admin, extra=extra, email=email)
        self.users[user_id] = user
        return user

    def add_workspace(
        self, team_id: str, token: str, *, install_code: str | None = None
    ) -> SlackIdentity:
        """A workspace the app is (or, given ``install_code``, will be) installed in.

        ``auth.test`` with ``token`` answers as ``team_id`` (other tokens as the test workspace);
        ``oauth.v2.access`` with ``install_code`` hands ``token`` out, as Slack does at the end of
        an install.
        """
        identity = dataclasses.replace(IDENTITY, team_id=team_id, team_name=f"Team {team_id}")
        self.workspaces[token] = identity
        if install_code is not None:
            self.install_codes[install_code] = token
        return identity

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

    def outage(self, status: int = 503, *, hang: bool = False) -> None:
        """Fail every call (Web API and response_url) until :meth:`recover`: answer HTTP
        ``status``, or (``hang``) answer nothing until then, so clients time out."""
        self._outage = _Failure(status, "service_unavailable", None, 0)
        self._hang = hang
        self._recovered.clear()

    def recover(self) -> None:
        """End an :meth:`outage`; calls still hanging in it get its error now."""
        self._outage = None
        self._recovered.set()

    def response_url(self, name: str = "response") -> str:
        """A response_url served by this fake; POSTs to it are recorded as ``response_url``."""
        return self.new_response_url(ResponseTarget(name=name))

    # ----------------------------------------------------------------- inspection

    @property
    def calls(self) -> list[Call]:
        """Every recorded call, failed attempts included, oldest first."""
        return list(self._calls)

    def calls_to(
        self, method: str | tuple[str, ...], *, include_failed: bool = False
    ) -> list[Call]:
        """Calls to ``method`` (or any of several); ``include_failed=True`` counts retry attempts."""
        methods = (method,) if isinstance(method, str) else method
        return [c for c in self._calls if c.method in methods and (include_failed or not c.failed)]

    def clear(self) -> None:
        """Forget recorded calls (not users, failures or views)."""
        self._calls.clear()

    async def wait_for(
        self,
        method: str | tuple[str, ...],
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

    # ----------------------------------------------------------------- HTTP answers

    async def api_response(
        self, method: str, args: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        failure = self._take_failure(method)
        call = Call(method, args, dict(request.headers), time.time(), failed=failure is not None)
        self._calls.append(call)
        if failure is not None:
            return await self._fail(failure)
        if method == "apps.connections.open":
            return web.json_response(self._apps_connections_open(call))
        if method == "auth.test" and call.token in self.workspaces:
            return web.json_response(_auth_test(self.workspaces[call.token]))
        if method == "oauth.v2.access":
            return web.json_response(self._oauth_v2_access(args))
        return await super().api_response(method, args, request)

    async def upload_response(
        self, file_id: str, data: bytes, request: web.Request
    ) -> web.StreamResponse:
        """A file's bytes POSTed to its upload URL, recorded as ``file_upload`` (``fail_next``
        with that name answers the POST with an HTTP error)."""
        failure = self._take_failure("file_upload")
        params = {"file_id": file_id, "length": len(data)}
        self._calls.append(
            Call("file_upload", params, dict(request.headers), time.time(), bool(failure))
        )
        if failure is not None:
            return _failure_response(failure)
        return await super().upload_response(file_id, data, request)

    async def response_url_response(
        self, target: ResponseTarget, body: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        failure = self._take_failure("response_url")
        headers = dict(request.headers)
        call = Call("response_url", body, headers, time.time(), bool(failure), target.name)
        self._calls.append(call)
        if failure is not None:
            return await self._fail(failure)
        return await super().response_url_response(target, body, request)

    def record_ack(self, name: str | None, body: dict[str, Any]) -> Call:
        """Record a message the bot sent *as its ack* to the request of response_url ``name``
        (Slack shows it as it shows a response_url reply), so it is validated like one."""
        call = Call(ACK, body, {}, time.time(), name=name)
        self._calls.append(call)
        return call

    async def _fail(self, failure: _Failure) -> web.Response:
        if failure is self._outage and self._hang:
            await self._recovered.wait()
        return _failure_response(failure)

    def _take_failure(self, method: str) -> _Failure | None:
        if self._outage is not None:
            return self._outage
        failure = self._failures.get(method)
        if failure is None:
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            del self._failures[method]
        return failure

    def _apps_connections_open(self, call: Call) -> dict[str, Any]:
        """Socket Mode needs an app-level token; Slack rejects bot tokens here."""
        if not (call.token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_mode.issue_url()}

    def _oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        """The bot token of the workspace an install ``code`` was issued for (Slack's shape)."""
        token = self.install_codes.get(str(args.get("code")))
        if token is None:
            return {"ok": False, "error": "invalid_code"}
        identity = self.workspaces[token]
        return {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": "UINSTALLER"},
            "scope": "commands,chat:write,chat:write.public,users:read,im:write",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": identity.bot_user_id,
            "team": {"id": identity.team_id, "name": identity.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }


def _auth_test(identity: SlackIdentity) -> dict[str, Any]:
    return {
        "ok": True,
        "url": identity.url,
        "team": identity.team_name,
        "user": "gpubook",
        "team_id": identity.team_id,
        "user_id": identity.bot_user_id,
        "bot_id": identity.bot_id,
        "is_enterprise_install": False,
    }


def _failure_response(failure: _Failure) -> web.Response:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    body = {"ok": False, "error": failure.error}
    return web.json_response(body, status=failure.status, headers=headers)


def _validate_call(call: Call) -> None:
    """Dispatch one recorded call to the right Block Kit validator."""
    if call.method in _VIEW_METHODS and call.params.get("view") is not None:
        validate_view(call.params["view"])
    elif call.method in _MESSAGE_METHODS or call.method in ("response_url", ACK):
        validate_message_payload(call.params)
