"""An in-process Slack: the Web API methods gpubook calls, and the ``response_url``s it answers.

It is served over HTTP on a loopback port rather than faked inside an ``AsyncWebClient``
subclass, because that is the only seam every client of the real app honours: Bolt builds a
fresh ``AsyncWebClient`` for each request from the app client's ``base_url`` (a subclass would be
dropped), and ``respond()`` posts to the ``response_url`` with a webhook client of its own. With
a URL, the bot runs exactly as in production (``build_app(api_url=…)``, like ``SLACK_API_URL``)
and nothing leaves the machine. Responses close their connection so no keep-alive task outlives
the request that caused it (the console waits for a request's tasks to finish).

The double keeps what a Slack client would show — messages (channel, ephemeral, DM), modals, the
App Home — and tells its listener about every change; it renders nothing itself.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

BOT_USER_ID = "UGPUBOOK"
BOT_ID = "BGPUBOOK"
APP_ID = "AGPUBOOK"
#: The channel the console posts commands from and announcements go to, unless configured.
CONSOLE_CHANNEL = "CGPUBOOK"
CONSOLE_CHANNEL_NAME = "gpu-bookings"
#: Fields Slack sends as JSON text inside a form-encoded call.
_JSON_FIELDS = ("blocks", "view", "attachments")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def user_id_for(name: str) -> str:
    """A Slack-shaped user id for a console name: ``alice`` → ``UALICE``; ids are kept as given.

    Ids must look like Slack's (``U…``): the bot's sentences keep only such ``<@…>`` mentions.
    """
    text = name.strip().lstrip("@")
    if _SLACK_ID.match(text):
        return text
    return "U" + (re.sub(r"[^A-Z0-9]", "", text.upper()) or "ANON")


@dataclass(frozen=True)
class Message:
    """A message as one reader sees it. ``version`` grows on every update (old buttons die)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    #: Set for an ephemeral message: the only user who sees it.
    only_user: str | None = None
    version: int = 0
    deleted: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.ts)

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")


@dataclass(frozen=True)
class ViewShown:
    """A modal opened/updated/pushed, or an App Home published (``view["type"] == "home"``)."""

    how: str
    view: dict[str, Any]
    user_id: str | None = None


Shown = Message | ViewShown


@dataclass(frozen=True)
class ResponseTarget:
    """Where a ``response_url`` answers: the channel and user of the request, and the message
    clicked (``replace_original`` replaces it)."""

    channel: str
    user_id: str
    message: tuple[str, str] | None = None


@dataclass
class Workspace:
    """Who exists and who administers: what ``users.info`` answers."""

    team_id: str
    tz_name: str
    names: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)

    def add_user(self, name: str) -> str:
        user_id = user_id_for(name)
        self.names.setdefault(user_id, name.strip().lstrip("@") or user_id)
        return user_id


class SlackDouble:
    """The Web API and response URLs on ``127.0.0.1:<free port>``; see the module docstring."""

    def __init__(self, workspace: Workspace, listener: Callable[[Shown], None]) -> None:
        self.workspace = workspace
        self._listener = listener
        self._runner: web.AppRunner | None = None
        self._base = ""
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self.messages: dict[tuple[str, str], Message] = {}
        self.views: dict[str, dict[str, Any]] = {}
        #: Open modals, bottom first (``views.push`` stacks them, like Slack).
        self.modal_stack: list[str] = []
        self._responses: dict[str, ResponseTarget] = {}

    # ------------------------------------------------------------------ serving

    async def start(self) -> None:
        app = web.Application(middlewares=[_close_connections])
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{token}", self._respond)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._base = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """The Web API base for ``AsyncWebClient(base_url=…)`` (with the trailing slash)."""
        return f"{self._base}/api/"

    def response_url(self, target: ResponseTarget) -> str:
        """A new ``response_url`` answering ``target``."""
        token = f"R{next(self._ids)}"
        self._responses[token] = target
        return f"{self._base}/respond/{token}"

    # ------------------------------------------------------------------ state

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal on top, if one is open."""
        return self.views[self.modal_stack[-1]] if self.modal_stack else None

    def close_modals(self) -> None:
        self.modal_stack.clear()

    def close_top(self, view_id: str) -> None:
        """A submitted modal closes; the one under it (after ``views.push``) shows again."""
        if view_id in self.modal_stack:
            del self.modal_stack[self.modal_stack.index(view_id) :]

    def answer_view(self, action: str, view: dict[str, Any], view_id: str) -> None:
        """A submission acked with ``response_action: update`` (same id) or ``push`` (new one)."""
        if action == "update":
            self._listener(ViewShown("update", self._store_view(view, view_id)))
        else:
            stored = self._store_view(view)
            self.modal_stack.append(stored["id"])
            self._listener(ViewShown("push", stored))

    def current(self, key: tuple[str, str]) -> Message | None:
        return self.messages.get(key)

    def _new_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _post(self, channel: str, text: str, blocks: Any, only_user: str | None = None) -> Message:
        message = Message(channel, self._new_ts(), text or "", list(blocks or []), only_user)
        self.messages[message.key] = message
        self._listener(message)
        return message

    def _change(self, key: tuple[str, str], **changes: Any) -> Message | None:
        old = self.messages.get(key)
        if old is None:
            return None
        new = replace(old, version=old.version + 1, **changes)
        self.messages[key] = new
        self._listener(new)
        return new

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        stored = {
            **view,
            "id": view_id or f"V{next(self._ids):06d}",
            "hash": f"h{next(self._ids)}",
            "team_id": self.workspace.team_id,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "state": {"values": {}},
        }
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        self.views[stored["id"]] = stored
        return stored

    # ------------------------------------------------------------------ HTTP

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        handler = _METHODS.get(method)
        result = handler(self, args) if handler else {}
        if "error" in result:
            return web.json_response({"ok": False, **result})
        return web.json_response({"ok": True, **result})

    async def _respond(self, request: web.Request) -> web.Response:
        target = self._responses.get(request.match_info["token"])
        if target is None:
            return web.Response(status=404, text="unknown response_url")
        body = await request.json()
        original = target.message
        if original is not None and body.get("delete_original"):
            self._change(original, deleted=True)
        elif original is not None and body.get("replace_original"):
            self._change(original, text=body.get("text", ""), blocks=body.get("blocks") or [])
        elif body.get("response_type") == "in_channel":
            self._post(target.channel, body.get("text", ""), body.get("blocks"))
        else:
            self._post(target.channel, body.get("text", ""), body.get("blocks"), target.user_id)
        return web.Response(text="ok")

    # ------------------------------------------------------------------ Web API methods

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://console.invalid/",
            "team": "console",
            "user": "gpubook",
            "team_id": self.workspace.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user", "")
        admin = user_id in self.workspace.admins
        return {
            "user": {
                "id": user_id,
                "team_id": self.workspace.team_id,
                "name": self.workspace.names.get(user_id, user_id),
                "tz": self.workspace.tz_name,
                "is_admin": admin,
                "is_owner": False,
                "is_bot": False,
            }
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("users", "")).split(",")[0]
        return {"channel": {"id": f"D{user}"}}

    def _channel(self, args: dict[str, Any]) -> str:
        """A DM when posting to a user id (Slack opens the app's DM with them)."""
        channel = str(args.get("channel", ""))
        return f"D{channel}" if channel.startswith(("U", "W")) else channel

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._post(self._channel(args), args.get("text", ""), args.get("blocks"))
        return {"channel": message.channel, "ts": message.ts, "message": message_payload(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._post(
            self._channel(args), args.get("text", ""), args.get("blocks"), args.get("user")
        )
        return {"message_ts": message.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (self._channel(args), str(args.get("ts", "")))
        changes: dict[str, Any] = {"text": args.get("text", "")}
        if "blocks" in args:
            changes["blocks"] = args.get("blocks") or []
        message = self._change(key, **changes)
        if message is None:
            return {"error": "message_not_found"}
        return {"channel": message.channel, "ts": message.ts, "text": message.text}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (self._channel(args), str(args.get("ts", "")))
        if self._change(key, deleted=True) is None:
            return {"error": "message_not_found"}
        return {"channel": key[0], "ts": key[1]}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._store_view(args.get("view") or {})
        self.modal_stack = [view["id"]]
        self._listener(ViewShown("open", view))
        return {"view": view}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._store_view(args.get("view") or {})
        self.modal_stack.append(view["id"])
        self._listener(ViewShown("push", view))
        return {"view": view}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id") or next(
            (
                v["id"]
                for v in self.views.values()
                if v.get("external_id") == args.get("external_id")
            ),
            None,
        )
        if view_id not in self.views:
            return {"error": "not_found"}
        if args.get("hash") and args["hash"] != self.views[view_id]["hash"]:
            return {"error": "hash_conflict"}
        view = self._store_view(args.get("view") or {}, view_id)
        self._listener(ViewShown("update", view))
        return {"view": view}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user_id", ""))
        view = self._store_view(args.get("view") or {}, f"VHOME{user_id}")
        self._listener(ViewShown("publish", view, user_id))
        return {"view": view}


_METHODS: dict[str, Callable[[SlackDouble, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackDouble._auth_test,
    "users.info": SlackDouble._users_info,
    "conversations.open": SlackDouble._conversations_open,
    "chat.postMessage": SlackDouble._chat_post_message,
    "chat.postEphemeral": SlackDouble._chat_post_ephemeral,
    "chat.update": SlackDouble._chat_update,
    "chat.delete": SlackDouble._chat_delete,
    "views.open": SlackDouble._views_open,
    "views.push": SlackDouble._views_push,
    "views.update": SlackDouble._views_update,
    "views.publish": SlackDouble._views_publish,
}


@web.middleware
async def _close_connections(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    response.force_close()
    return response


async def _arguments(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments from the query, a form or a JSON body, as slack_sdk sends them."""
    args: dict[str, Any] = dict(request.query)
    raw = await request.text()
    if request.content_type == "application/json" and raw:
        args.update(json.loads(raw))
    elif raw:
        args.update(parse_qsl(raw, keep_blank_values=True))
    for name in _JSON_FIELDS:
        if isinstance(args.get(name), str):
            args[name] = json.loads(args[name])
    return args


def message_payload(message: Message) -> dict[str, Any]:
    """A message as Slack embeds it in a ``block_actions`` payload."""
    return {
        "type": "message",
        "ts": message.ts,
        "text": message.text,
        "blocks": message.blocks,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
    }
