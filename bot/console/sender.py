"""Sending what the person does to the bot as Slack would: signed requests into the real app.

Every line typed becomes a signed request (slash command form body, ``block_actions`` or
``view_submission`` payload, ``app_home_opened`` event) handed to ``app.async_dispatch`` — what
Bolt's HTTP adapter does with a POST — so the console runs the same listeners as Slack.

Bolt acks first and runs the listener in a task of its own, so after a dispatch the sender
waits for every task the request started (see :func:`settle_after`): only then is the answer
complete and the prompt may come back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.console import slack_requests as shapes
from bot.console.double import CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME, SlackDouble
from bot.console.screen import Button, Screen
from bot.console.slack_model import Message, ResponseTarget
from bot.console.slack_requests import SignedRequest

COMMAND = "/gpubook"
#: How long a request's listener may run before the prompt comes back anyway.
SETTLE_TIMEOUT = 30.0

T = TypeVar("T")


class Sender:
    """Sends as the screen's user, signed with ``secret``, and shows what the acks carry."""

    def __init__(self, app: AsyncApp, double: SlackDouble, screen: Screen, secret: str) -> None:
        self.app = app
        self.double = double
        self.screen = screen
        self._signing: shapes.SignOptions = {"signing_secret": secret}

    @property
    def user_id(self) -> str:
        return self.screen.user_id

    async def command(self, text: str) -> None:
        """``/gpubook <text>`` from the console channel."""
        self.screen.viewing_home = False
        payload = shapes.slash_command(
            self.double.identity,
            self.screen.workspace.command_text(text),
            command=COMMAND,
            user_id=self.user_id,
            user_name=self.screen.workspace.names[self.user_id],
            channel_id=CONSOLE_CHANNEL,
            channel_name=CONSOLE_CHANNEL_NAME,
            response_url=self.double.new_response_url(
                ResponseTarget(CONSOLE_CHANNEL, self.user_id)
            ),
        )
        self._show_ack(await self._dispatch(shapes.form_request(payload, **self._signing)))

    async def open_home(self) -> None:
        """Open the App Home tab: Slack sends ``app_home_opened`` and the bot publishes it."""
        self.screen.viewing_home = True
        event = shapes.app_home_opened(self.user_id)
        payload = shapes.event_callback(self.double.identity, event)
        await self._dispatch(shapes.json_request(payload, **self._signing))

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
            self.screen.viewing_home = button.view.get("type") == "home"
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

    def _interaction(self, kind: str) -> dict[str, Any]:
        return shapes.interaction(
            self.double.identity,
            kind,
            self.user_id,
            user_name=self.screen.workspace.names[self.user_id],
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
            channel={
                "id": message.channel,
                "name": self.screen.workspace.channel_name(message.channel),
            },
            message=self.double.message_payload(current),
            response_url=self.double.new_response_url(
                ResponseTarget(message.channel, self.user_id, message.key)
            ),
        )

    async def _dispatch_interaction(
        self, payload: dict[str, Any], *, show_ack: bool = True
    ) -> BoltResponse:
        response = await self._dispatch(shapes.interaction_request(payload, **self._signing))
        if show_ack:
            self._show_ack(response)
        return response

    async def _dispatch(self, request: SignedRequest) -> BoltResponse:
        """Dispatch a signed request as Bolt's HTTP adapter would; return once the listener has
        finished."""
        bolt_request = AsyncBoltRequest(body=request.text, headers=request.headers)
        return await settle_after(self.app.async_dispatch(bolt_request))

    def _show_ack(self, response: BoltResponse) -> None:
        """What an ack carried — a message, shown as Slack shows one sent to the response_url
        (ephemeral, its buttons live) — or an HTTP failure."""
        if response.status != 200:
            self.screen.show(f"(the app answered HTTP {response.status}: {response.body})")
            return
        ack = _ack_json(response)
        if ack.get("text") or ack.get("blocks"):
            self.double.apply_response(ResponseTarget(CONSOLE_CHANNEL, self.user_id), ack)


async def settle_after(work: Awaitable[T]) -> T:
    """Await ``work``, then the tasks it started (the listener Bolt runs after its ack, the
    lookups and replies it starts), and theirs, up to :data:`SETTLE_TIMEOUT`."""
    before = asyncio.all_tasks()
    result = await work
    seen = set(before) | {asyncio.current_task()}
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT
    while True:
        started = {t for t in asyncio.all_tasks() if t not in seen}
        remaining = deadline - asyncio.get_running_loop().time()
        if not started or remaining <= 0:
            return result
        seen |= started
        await asyncio.wait(started, timeout=remaining)


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
