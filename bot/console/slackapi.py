"""A Slack Web API double on loopback: the methods gpubook calls and the ``response_url``s it
answers, with Slack's reply shapes. The console's in-process Slack and the test suite's fake
Slack are both built on it.

It is served over HTTP rather than faked inside an ``AsyncWebClient`` subclass, because that is
the only seam every client of the real app honours: Bolt builds a fresh ``AsyncWebClient`` for
each request from the app client's ``base_url`` (a subclass would be dropped), ``respond()``
posts to the ``response_url`` with a webhook client of its own, and the HTTP encoding, retry
handlers and error mapping are part of what runs.

The double keeps what a Slack client would show — messages (channel, ephemeral, DM), modals,
App Homes and shared files (uploaded to ``/upload/<file id>`` as ``files_upload_v2`` does) — and
reports every change to :meth:`SlackWebAPI.shown`. Subclasses hook in there (the
console renders), at :meth:`SlackWebAPI.api_response` and
:meth:`SlackWebAPI.response_url_response` (the test fake records calls and injects failures),
at :meth:`SlackWebAPI.upload_response` (the upload URL), at :meth:`SlackWebAPI.user` (who
``users.info`` describes) and :meth:`SlackWebAPI.add_routes`.
What each Web API method answers is in :mod:`bot.console.slack_methods`.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.console.slack_methods import METHODS
from bot.console.slack_model import Message, ResponseTarget, Shown, SlackFile, SlackUser
from bot.console.slack_requests import SlackIdentity

#: Fields slack_sdk sends as JSON text inside a form-encoded call; handlers want objects.
JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "options"}
)


class SlackWebAPI:
    """The Web API and response URLs on ``host:<free port>``; see the module docstring."""

    #: Answer unknown messages and views as Slack does (``message_not_found``, ``not_found``).
    #: Off for the test fake, whose tests click messages and views they made up.
    strict = False
    #: Close each connection after its response, so no keep-alive task outlives the request that
    #: caused it (the console waits for every task a request starts).
    keep_alive = True

    def __init__(self, identity: SlackIdentity, host: str = "127.0.0.1") -> None:
        self.identity = identity
        self.host = host
        self.port = 0
        self.messages: dict[tuple[str, str], Message] = {}
        self.views: dict[str, dict[str, Any]] = {}
        #: Who ``users.info`` knows; anyone else is a UTC user named after their id.
        self.users: dict[str, SlackUser] = {}
        #: Files by id, from the moment an upload is announced.
        self.files: dict[str, SlackFile] = {}
        self._responses: dict[str, ResponseTarget] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ serving

    async def start(self) -> None:
        """Bind port 0 so parallel runs never collide, then read back the real port."""
        app = web.Application(middlewares=[] if self.keep_alive else [_close_connections])
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
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

    def new_response_url(self, target: ResponseTarget) -> str:
        """A new ``response_url`` answering ``target``."""
        key = uuid.uuid4().hex
        self._responses[key] = target
        return f"{self.url}/response/{key}"

    # ------------------------------------------------------------------ hooks

    def add_routes(self, app: web.Application) -> None:
        """More routes on the same server (Socket Mode in the test fake)."""

    def shown(self, shown: Shown) -> None:
        """A message or view changed; what a Slack client would now show."""

    def user(self, user_id: str) -> SlackUser:
        """Who ``users.info`` describes."""
        return self.users.get(user_id) or SlackUser(user_id, user_id.lower())

    async def api_response(
        self, method: str, args: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        """The HTTP answer to a Web API call: Slack's canned reply."""
        return web.json_response(self.reply(method, args))

    async def response_url_response(
        self, target: ResponseTarget, body: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        """The HTTP answer to a ``response_url`` POST, after showing it: Slack's bare ``ok``."""
        self.apply_response(target, body)
        return web.Response(text="ok")

    async def upload_response(
        self, file_id: str, data: bytes, request: web.Request
    ) -> web.StreamResponse:
        """The HTTP answer to an upload's bytes: Slack's 200 once the file was announced."""
        file = self.files.get(file_id)
        if file is None:
            return web.Response(status=404, text="not_found")
        file.content = data
        return web.Response(text=f"OK - {len(data)}")

    # ------------------------------------------------------------------ state

    def current(self, key: tuple[str, str]) -> Message | None:
        return self.messages.get(key)

    def store_view(
        self, view: dict[str, Any], view_id: str | None = None, external_id: str = ""
    ) -> dict[str, Any]:
        """Keep ``view`` as Slack returns it: with its id, a fresh ``hash`` and empty state."""
        view_id = view_id or self.new_id("V")
        stored = {
            **view,
            "id": view_id,
            "team_id": self.identity.team_id,
            "app_id": self.identity.app_id,
            "bot_id": self.identity.bot_id,
            "hash": f"{next(self._ids)}.{uuid.uuid4().hex[:8]}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "state": {"values": {}},
        }
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", external_id)
        self.views[view_id] = stored
        return stored

    def apply_response(self, target: ResponseTarget, body: dict[str, Any]) -> None:
        """What a ``response_url`` answer shows: the clicked message replaced or deleted, or a
        new message (ephemeral unless ``in_channel``)."""
        if target.channel is None:
            return
        original = target.message
        text = body.get("text", "")
        if original is not None and body.get("delete_original"):
            self.change(original, deleted=True)
        elif original is not None and body.get("replace_original"):
            self.change(original, text=text, blocks=body.get("blocks") or [])
        elif body.get("response_type") == "in_channel":
            self.post(target.channel, text, body.get("blocks"))
        else:
            self.post(target.channel, text, body.get("blocks"), target.user_id)

    def _next_ts(self) -> str:
        """Unique, increasing message ts like Slack's ``1700000000.000100``."""
        n = next(self._ts)
        return f"{1700000000 + n // 10000}.{(n % 10000) * 100:06d}"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def post(self, channel: str, text: str, blocks: Any, only_user: str | None = None) -> Message:
        """A new message in ``channel`` (ephemeral with ``only_user``), shown at once."""
        message = Message(channel, self._next_ts(), text or "", list(blocks or []), only_user)
        self.messages[message.key] = message
        self.shown(message)
        return message

    def change(self, key: tuple[str, str], **changes: Any) -> Message | None:
        """Update or delete the message at ``key`` as a new version (``None``: no such message)."""
        old = self.messages.get(key)
        if old is None:
            return None
        new = replace(old, version=old.version + 1, **changes)
        self.messages[key] = new
        self.shown(new)
        return new

    # ------------------------------------------------------------------ HTTP

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        args = await read_arguments(request)
        return await self.api_response(request.match_info["method"], args, request)

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        data = await request.read()
        return await self.upload_response(request.match_info["file_id"], data, request)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        target = self._responses.get(request.match_info["key"])
        if target is None:
            return web.Response(status=404, text="expired_url")
        raw = await request.text()
        return await self.response_url_response(target, json.loads(raw) if raw else {}, request)

    # ------------------------------------------------------------------ Web API methods

    def reply(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's reply to ``method``: ``ok`` with the method's fields, or ``ok: false`` with
        its ``error``; methods without a canned reply just succeed."""
        handler = METHODS.get(method)
        result = handler(self, args) if handler else {}
        return {"ok": "error" not in result, **result}


@web.middleware
async def _close_connections(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.force_close()
    return response


async def read_arguments(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments, merged from the query and the body (slack_sdk sends GET
    params, forms, JSON or multipart), with JSON-string fields (blocks, view…) decoded."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            args.update(body if isinstance(body, dict) else {"_body": body})
        else:
            form = await request.post()
            args.update({k: v if isinstance(v, str) else repr(v) for k, v in form.items()})
    return {k: _decode_json_field(k, v) for k, v in args.items()}


def _decode_json_field(key: str, value: Any) -> Any:
    if key in JSON_FIELDS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
