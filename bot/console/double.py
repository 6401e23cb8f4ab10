"""The console's in-process Slack: the shared Web API double (:mod:`bot.console.slackapi`) as
one console workspace sees it.

With its URL the bot runs exactly as in production (``build_app(api_url=…)``, like
``SLACK_API_URL``) and nothing leaves the machine. On top of the shared double it answers
``users.info`` from the console's :class:`Workspace`, keeps the stack of open modals, and tells
its listener about every change; it renders nothing itself.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.console.slack_model import Message, Shown, SlackUser, ViewShown
from bot.console.slack_requests import SlackIdentity, message_payload
from bot.console.slackapi import SlackWebAPI
from bot.core.slack_ids import MENTION, is_user_id

BOT_USER_ID = "UGPUBOOK"
BOT_ID = "BGPUBOOK"
APP_ID = "AGPUBOOK"
#: The channel the console posts commands from and announcements go to, unless configured.
CONSOLE_CHANNEL = "CGPUBOOK"
CONSOLE_CHANNEL_NAME = "gpu-bookings"


def user_id_for(name: str) -> str:
    """A Slack-shaped user id for a console name: ``alice`` → ``UALICE``; ids are kept as given.

    Ids must look like Slack's (``U…``): the bot's sentences keep only such ``<@…>`` mentions.
    """
    text = name.strip().lstrip("@")
    if is_user_id(text):
        return text
    return "U" + (re.sub(r"[^A-Z0-9]", "", text.upper()) or "ANON")


def console_identity(team_id: str) -> SlackIdentity:
    """The console workspace and app, as its payloads and the double's replies name them."""
    return SlackIdentity(
        team_id=team_id,
        team_name="console",
        team_domain="console",
        url="https://console.invalid/",
        app_id=APP_ID,
        bot_user_id=BOT_USER_ID,
        bot_id=BOT_ID,
        verification_token="console",
    )


#: ``#name``: Slack's channel names are lower-case letters, digits, ``-`` and ``_``. One letter at
#: least, so ``cancel #42`` stays a booking number.
_CHANNEL_NAME = r"(?<![\w&#])#([a-z0-9_-]*[a-z][a-z0-9_-]*)(?![\w-])"
#: A mention in Slack's own form is passed on as typed; ``#name`` becomes one.
_MENTION_OR_CHANNEL = re.compile(rf"({MENTION})|{_CHANNEL_NAME}")


@dataclass
class Workspace:
    """Who exists and who administers (what ``users.info`` answers), and its channels."""

    team_id: str
    tz_name: str
    names: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    #: Channel ids by name; a channel exists once someone names it (``#ml-team``).
    channels: dict[str, str] = field(
        default_factory=lambda: {CONSOLE_CHANNEL_NAME: CONSOLE_CHANNEL}
    )

    def add_user(self, name: str) -> str:
        user_id = user_id_for(name)
        self.names.setdefault(user_id, name.strip().lstrip("@") or user_id)
        return user_id

    def channel_id(self, name: str) -> str:
        """The id of channel ``name``, made up in Slack's shape the first time it is named."""
        if name not in self.channels:
            base = "C" + re.sub(r"[^A-Z0-9]", "", name.upper())
            taken = set(self.channels.values())
            candidate = base
            for n in itertools.count(2):
                if candidate not in taken:
                    break
                candidate = f"{base}{n}"
            self.channels[name] = candidate
        return self.channels[name]

    def channel_name(self, channel_id: str) -> str:
        """The name of a channel the console knows, else its id."""
        names = {known: name for name, known in self.channels.items()}
        return names.get(channel_id, channel_id)

    def command_text(self, text: str) -> str:
        """``text`` as Slack sends it in a slash command with ``should_escape`` (manifest.yml):
        ``&``, ``<`` and ``>`` as entities and ``#name`` as ``<#C…|name>``, so the handlers read
        exactly what they would read from Slack. Mentions already in that form are sent as typed.
        """
        parts, pos = [], 0
        for match in _MENTION_OR_CHANNEL.finditer(text):
            parts.append(_escape(text[pos : match.start()]))
            mention, channel = match.group(1), match.group(2)
            parts.append(mention or f"<#{self.channel_id(channel)}|{channel}>")
            pos = match.end()
        parts.append(_escape(text[pos:]))
        return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackDouble(SlackWebAPI):
    """The console's Slack on ``127.0.0.1:<free port>``; see the module docstring."""

    strict = True
    keep_alive = False

    def __init__(self, workspace: Workspace, listener: Callable[[Shown], None]) -> None:
        super().__init__(console_identity(workspace.team_id))
        self.workspace = workspace
        self._listener = listener
        #: Open modals, bottom first (``views.push`` stacks them, like Slack).
        self.modal_stack: list[str] = []

    @property
    def api_url(self) -> str:
        """The Web API base for ``AsyncWebClient(base_url=…)`` (with the trailing slash)."""
        return self.base_url

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(
            user_id,
            self.workspace.names.get(user_id, user_id),
            tz=self.workspace.tz_name,
            is_admin=user_id in self.workspace.admins,
        )

    def shown(self, shown: Shown) -> None:
        if isinstance(shown, ViewShown) and shown.how == "open":
            self.modal_stack = [shown.view["id"]]
        elif isinstance(shown, ViewShown) and shown.how == "push":
            self.modal_stack.append(shown.view["id"])
        self._listener(shown)

    # ------------------------------------------------------------------ modals

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
            self.shown(ViewShown("update", self.store_view(view, view_id)))
        else:
            self.shown(ViewShown("push", self.store_view(view)))

    def message_payload(self, message: Message) -> dict[str, Any]:
        """``message`` as Slack embeds it in a ``block_actions`` payload."""
        return message_payload(self.identity, message.ts, message.text, message.blocks)
