"""The console's async core: the real Bolt app, the Slack double, the lifecycle scheduler, and
requests shaped exactly like Slack's.

Every line typed becomes a signed request (slash command form body, ``block_actions`` or
``view_submission`` payload, ``app_home_opened`` event) handed to ``app.async_dispatch`` — what
Bolt's HTTP adapter does with a POST — so the console runs the same listeners as Slack. Whatever
the bot shows comes back through :class:`~bot.console.double.SlackDouble` and is rendered for the
person at the keyboard.

Bolt acks first and runs the listener in a task of its own, so after a dispatch the session
waits for every task the request started (see :meth:`Session._settle`): only then is the answer
complete and the prompt may come back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.booking.service import Actor
from bot.console import slack_requests as shapes
from bot.console.double import (
    BOT_USER_ID,
    CONSOLE_CHANNEL,
    CONSOLE_CHANNEL_NAME,
    SlackDouble,
    Workspace,
)
from bot.console.render import Reader, Style, render_message, render_view
from bot.console.slack_requests import SignedRequest
from bot.console.slackapi import Message, ResponseTarget, Shown
from bot.core.clock import Clock
from bot.runtime.assembly import Assembly, assemble
from bot.runtime.config import Settings

log = logging.getLogger(__name__)

COMMAND = "/gpubook"
#: The bot token the app is built with: the double accepts anything, Slack is never called.
CONSOLE_TOKEN = "xoxb-console"
#: Scheduler sweeps in the console: short, so "booking started" appears about when it happens.
CONSOLE_SWEEP_SECONDS = 5
#: How long a request's listener may run before the prompt comes back anyway.
SETTLE_TIMEOUT = 30.0
#: GPUs ``--demo`` adds to a database that has none.
DEMO_GPUS = (
    ("rtx-0", "24GB", "demo RTX 4090"),
    ("rtx-1", "24GB", "demo RTX 4090"),
    ("a100-1", "80GB", "demo A100"),
    ("a100-2", "80GB", "demo A100"),
)


def local_zone_name() -> str:
    """This machine's IANA zone: what the console's users get from ``users.info``.

    ``TZ`` when it names a zone, else the ``/etc/localtime`` link target, else UTC.
    """
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        candidates.append(target.partition("zoneinfo/")[2])
    for name in candidates:
        try:
            if name:
                ZoneInfo(name)
                return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


@dataclass(frozen=True)
class Button:
    """A button shown on screen under ``number``, and where it was shown (for the payload)."""

    number: int
    element: dict[str, Any]
    block_id: str
    #: The message it sits in (its version at the time), or the view (modal or App Home).
    message: Message | None = None
    view: dict[str, Any] | None = None


class Session:
    """One console: who is typing, the app they talk to, and what they have been shown."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        user: str,
        admin: bool = False,
        tz_name: str | None = None,
        style: Style = Style(),
        show: Callable[[str], None] = print,
        sweep_seconds: int = CONSOLE_SWEEP_SECONDS,
    ) -> None:
        # Announcements need a channel; the console's own stands in when none is configured.
        self.settings = replace(
            settings, channel=settings.channel or CONSOLE_CHANNEL, sweep_seconds=sweep_seconds
        )
        self.clock = clock
        self.style = style
        self.show = show
        self.workspace = Workspace(self.settings.team, tz_name or local_zone_name())
        self.user_id = self.workspace.add_user(user)
        if admin:
            self.workspace.admins.add(self.user_id)
        self.double = SlackDouble(self.workspace, self._on_shown)
        self._secret = secrets.token_hex(16)
        self._buttons: dict[int, Button] = {}
        #: Whether App Home publishes are shown (after `:home`, until the next command).
        self.viewing_home = False
        self.bot: Assembly | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, demo: bool = False) -> list[str]:
        """Migrate, build the app against the double, start the scheduler; notes to print."""
        notes: list[str] = []
        await self.double.start()
        self.bot = await assemble(
            self.settings,
            clock=self.clock,
            token=CONSOLE_TOKEN,
            signing_secret=self._secret,
            api_url=self.double.api_url,
        )
        if demo:
            notes.extend(await self._seed_demo())
        await self.bot.start_lifecycle()  # the same scheduler as `gpubook serve`
        return notes

    async def close(self) -> None:
        """Stop the bot (its scheduler first), then the double the bot was posting to."""
        if self.bot is not None:
            await self.bot.close()
        await self.double.close()

    async def _seed_demo(self) -> list[str]:
        assert self.bot is not None
        service = self.bot.service
        admin = Actor("console", self.settings.team, is_workspace_admin=True)
        if await service.list_gpus(admin, include_retired=True):
            return []
        for name, size, description in DEMO_GPUS:
            await service.add_gpu(admin, name, size, description)
        names = ", ".join(f"{name} ({size})" for name, size, _ in DEMO_GPUS)
        return [f"Added demo GPUs: {names}."]

    async def sweep(self) -> None:
        """Run one lifecycle sweep now (tests move a frozen clock, then call this)."""
        assert self.bot is not None and self.bot.lifecycle is not None
        await self._settle_after(self.bot.lifecycle.sweep())

    # ------------------------------------------------------------------ identity

    @property
    def user_name(self) -> str:
        return self.workspace.names[self.user_id]

    @property
    def is_admin(self) -> bool:
        return self.user_id in self.workspace.admins

    def switch_user(self, name: str) -> str:
        """Act as ``name`` from now on; returns their user id."""
        self.user_id = self.workspace.add_user(name)
        self.viewing_home = False
        return self.user_id

    def toggle_admin(self) -> bool:
        """Make the current user a workspace admin, or not; the bot sees it on the next request."""
        if self.is_admin:
            self.workspace.admins.discard(self.user_id)
        else:
            self.workspace.admins.add(self.user_id)
        assert self.bot is not None
        self.bot.forget_user(self.settings.team, self.user_id)
        return self.is_admin

    # ------------------------------------------------------------------ rendering

    def reader(self) -> Reader:
        return Reader(ZoneInfo(self.workspace.tz_name), self.clock(), self.style, self.names)

    @property
    def names(self) -> dict[str, str]:
        return {**self.workspace.names, BOT_USER_ID: "gpubook"}

    def _name(self, user_id: str) -> str:
        return (
            "you" if user_id == self.user_id else "@" + self.workspace.names.get(user_id, user_id)
        )

    def _label(self, message: Message) -> str:
        if message.is_dm:
            where = f"DM from gpubook to {self._name(message.channel[1:])}"
        else:
            name = CONSOLE_CHANNEL_NAME if message.channel == CONSOLE_CHANNEL else message.channel
            where = f"#{name}"
        if message.only_user:
            where += f" · only {self._name(message.only_user)} can see this"
        if message.version:
            where += " · updated"
        return where

    def _on_shown(self, shown: Shown) -> None:
        """Render what the bot just showed. Modals are not printed: the REPL prompts for them."""
        if isinstance(shown, Message):
            self.show(self._render_message(shown))
        elif shown.how == "publish" and shown.user_id == self.user_id and self.viewing_home:
            self.show(render_view(shown.view, self.reader(), self._numberer(view=shown.view)))

    def _render_message(self, message: Message) -> str:
        reader = self.reader()
        if message.deleted:
            return reader.style.dim(f"── {self._label(message)}: message deleted ──")
        number = self._numberer(message=message)
        return render_message(self._label(message), message.text, message.blocks, reader, number)

    def _numberer(
        self, *, message: Message | None = None, view: dict[str, Any] | None = None
    ) -> Callable[[dict[str, Any], str], int]:
        def number(element: dict[str, Any], block_id: str) -> int:
            n = len(self._buttons) + 1
            self._buttons[n] = Button(n, element, block_id, message, view)
            return n

        return number

    # ------------------------------------------------------------------ buttons

    def button(self, number: int) -> Button | None:
        return self._buttons.get(number)

    def stale_reason(self, button: Button) -> str | None:
        """Why a button can no longer be pressed: its message or view changed since it was shown."""
        if button.message is not None:
            now = self.double.current(button.message.key)
            if now is None or now.deleted:
                return "its message was deleted"
            if now.version != button.message.version:
                return "its message has been updated; press a button of the newer one"
        if button.view is not None:
            now_view = self.double.views.get(button.view["id"])
            if now_view is None or now_view["hash"] != button.view["hash"]:
                return "that view has been refreshed; use its newer buttons"
        return None

    async def press(self, button: Button) -> None:
        """Send the ``block_actions`` a click on ``button`` sends."""
        action = {
            "action_id": button.element.get("action_id", ""),
            "block_id": button.block_id,
            "type": "button",
            "text": button.element.get("text"),
            "value": button.element.get("value", ""),
            "action_ts": shapes.now_ts(),
        }
        if button.view is not None:
            self.viewing_home = button.view.get("type") == "home"
            payload = self._view_action(self.double.views[button.view["id"]], action)
        else:
            assert button.message is not None
            payload = self._message_action(button.message, action)
        await self._dispatch_interaction(payload)

    async def select(
        self,
        view: dict[str, Any],
        block_id: str,
        element: dict[str, Any],
        option: dict[str, Any],
        values: dict[str, Any],
    ) -> None:
        """A select with ``dispatch_action`` changed in a modal: Slack sends block_actions."""
        action = {
            "action_id": element.get("action_id", ""),
            "block_id": block_id,
            "type": element.get("type", "static_select"),
            "selected_option": option,
            "action_ts": shapes.now_ts(),
        }
        await self._dispatch_interaction(self._view_action(_with_state(view, values), action))

    def _interaction(self, kind: str) -> dict[str, Any]:
        return shapes.interaction(
            self.double.identity, kind, self.user_id, user_name=self.user_name
        )

    def _view_action(self, view: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        return shapes.block_actions(
            self._interaction("block_actions"),
            action,
            container=shapes.view_container(view["id"]),
            view=view,
        )

    def _message_action(self, message: Message, action: dict[str, Any]) -> dict[str, Any]:
        current = self.double.current(message.key) or message
        return shapes.block_actions(
            self._interaction("block_actions"),
            action,
            container=shapes.message_container(
                message.ts, message.channel, is_ephemeral=message.only_user is not None
            ),
            channel={"id": message.channel, "name": self._channel_name(message.channel)},
            message=self.double.message_payload(current),
            response_url=self.double.new_response_url(
                ResponseTarget(message.channel, self.user_id, message.key)
            ),
        )

    @staticmethod
    def _channel_name(channel: str) -> str:
        return CONSOLE_CHANNEL_NAME if channel == CONSOLE_CHANNEL else channel

    # ------------------------------------------------------------------ modals

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.double.modal

    async def submit(self, view: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
        """Submit the modal with ``values`` (``{block_id: {action_id: state}}``).

        Returns the errors the app answered with (``response_action: errors``) — the modal then
        stays open — or ``{}`` when the modal closed or was replaced as the ack said.
        """
        payload = shapes.view_submission(
            self._interaction("view_submission"), _with_state(view, values)
        )
        ack = _ack_json(await self._dispatch_interaction(payload, show_ack=False))
        action = ack.get("response_action")
        if action == "errors":
            return dict(ack.get("errors") or {})
        if action in ("update", "push"):
            self.double.answer_view(action, ack.get("view") or {}, view["id"])
        elif action == "clear":
            self.double.close_modals()
        else:
            self.double.close_top(view["id"])
        return {}

    def cancel_modal(self) -> None:
        """The user closed the modal (Slack sends nothing unless ``notify_on_close`` is set)."""
        self.double.close_modals()

    # ------------------------------------------------------------------ requests

    async def command(self, text: str) -> None:
        """``/gpubook <text>`` from the console channel."""
        self.viewing_home = False
        payload = shapes.slash_command(
            self.double.identity,
            _as_slack_sends(text),
            command=COMMAND,
            user_id=self.user_id,
            user_name=self.user_name,
            channel_id=CONSOLE_CHANNEL,
            channel_name=CONSOLE_CHANNEL_NAME,
            response_url=self.double.new_response_url(
                ResponseTarget(CONSOLE_CHANNEL, self.user_id)
            ),
        )
        self._show_ack(await self._dispatch(shapes.form_request(payload, **self._signing)))

    async def open_home(self) -> None:
        """Open the App Home tab: Slack sends ``app_home_opened`` and the bot publishes it."""
        self.viewing_home = True
        event = shapes.app_home_opened(self.user_id)
        payload = shapes.event_callback(self.double.identity, event)
        await self._dispatch(shapes.json_request(payload, **self._signing))

    async def _dispatch_interaction(
        self, payload: dict[str, Any], *, show_ack: bool = True
    ) -> BoltResponse:
        response = await self._dispatch(shapes.interaction_request(payload, **self._signing))
        if show_ack:
            self._show_ack(response)
        return response

    @property
    def _signing(self) -> shapes.SignOptions:
        return {"signing_secret": self._secret}

    async def _dispatch(self, request: SignedRequest) -> BoltResponse:
        """Dispatch a signed request as Bolt's HTTP adapter would; return once the listener has
        finished."""
        assert self.bot is not None
        bolt_request = AsyncBoltRequest(body=request.text, headers=request.headers)
        return await self._settle_after(self.bot.app.async_dispatch(bolt_request))

    async def _settle_after(self, work: Any) -> Any:
        before = asyncio.all_tasks()
        result = await work
        await self._settle(before)
        return result

    async def _settle(self, before: set[asyncio.Task[Any]]) -> None:
        """Wait for the tasks started since ``before`` (the listener Bolt runs after its ack, the
        lookups and replies it starts), and for theirs, up to :data:`SETTLE_TIMEOUT`."""
        seen = set(before) | {asyncio.current_task()}
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT
        while True:
            started = {t for t in asyncio.all_tasks() if t not in seen}
            remaining = deadline - asyncio.get_running_loop().time()
            if not started or remaining <= 0:
                return
            seen |= started
            await asyncio.wait(started, timeout=remaining)

    def _show_ack(self, response: BoltResponse) -> None:
        """What an ack carried (text or blocks shown only to the user), or an HTTP failure."""
        if response.status != 200:
            self.show(f"(the app answered HTTP {response.status}: {response.body})")
            return
        ack = _ack_json(response)
        if ack.get("text") or ack.get("blocks"):
            message = Message(
                CONSOLE_CHANNEL,
                "ack",
                ack.get("text", ""),
                ack.get("blocks") or [],
                only_user=self.user_id,
            )
            self.show(self._render_message(message))


def _with_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return {**view, "state": {"values": values}}


def _ack_json(response: BoltResponse) -> dict[str, Any]:
    """An ack's body as a dict: JSON, plain text as ``{"text": …}``, nothing as ``{}``."""
    if not response.body:
        return {}
    try:
        body = json.loads(response.body)
    except json.JSONDecodeError:
        return {"text": response.body}
    return body if isinstance(body, dict) else {}


def _as_slack_sends(text: str) -> str:
    """Slack escapes ``&``, ``<`` and ``>`` in slash-command text; the console does the same, so
    the handlers read exactly what they would read from Slack."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
