"""One console session: the real bot (assembled as ``gpubook serve`` assembles it, against the
Slack double), who is typing, and their screen.

The session wires three parts and lets the REPL talk to them as one: the double
(:mod:`bot.console.double`) stands in for Slack, the :class:`~bot.console.screen.Screen` renders
what the bot shows, and the :class:`~bot.console.sender.Sender` turns what is typed into the
requests Slack would send.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.booking import Actor
from bot.console.double import CONSOLE_CHANNEL, SlackDouble, Workspace
from bot.console.render import Reader, Style
from bot.console.screen import Button, Screen
from bot.console.sender import Sender, settle_after
from bot.core.clock import Clock
from bot.runtime.assembly import Assembly, assemble
from bot.runtime.config import Settings

#: The bot token the app is built with: the double accepts anything, Slack is never called.
CONSOLE_TOKEN = "xoxb-console"
#: Scheduler sweeps in the console: short, so "booking started" appears about when it happens.
CONSOLE_SWEEP_SECONDS = 5
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
        # The console is one workspace with its own token, even where serve installs by OAuth.
        self.settings = replace(
            settings,
            channel=settings.channel or CONSOLE_CHANNEL,
            sweep_seconds=sweep_seconds,
            slack_client_id=None,
            slack_client_secret=None,
        )
        self.clock = clock
        self.workspace = Workspace(self.settings.team, tz_name or local_zone_name())
        user_id = self.workspace.add_user(user)
        if admin:
            self.workspace.admins.add(user_id)
        self.screen = Screen(self.workspace, user_id, clock, style, show)
        self.double = SlackDouble(self.workspace, self.screen.on_shown)
        self._secret = secrets.token_hex(16)
        self.bot: Assembly | None = None
        self._sender: Sender | None = None

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
        self._sender = Sender(self.bot.app, self.double, self.screen, self._secret)
        if demo:
            notes.extend(await self._seed_demo())
        await self.bot.start_lifecycle()
        return notes

    async def close(self) -> None:
        """Stop the bot (the scheduler first), then the double the bot was posting to."""
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
        await settle_after(self.bot.lifecycle.sweep())

    # ------------------------------------------------------------------ identity

    @property
    def user_id(self) -> str:
        return self.screen.user_id

    @property
    def user_name(self) -> str:
        return self.workspace.names[self.user_id]

    @property
    def is_admin(self) -> bool:
        return self.user_id in self.workspace.admins

    def switch_user(self, name: str) -> str:
        """Act as ``name`` from now on; returns their user id."""
        self.screen.user_id = self.workspace.add_user(name)
        self.screen.viewing_home = False
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

    # ------------------------------------------------------------------ screen

    def reader(self) -> Reader:
        return self.screen.reader()

    def button(self, number: int) -> Button | None:
        return self.screen.button(number)

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

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.double.modal

    def cancel_modal(self) -> None:
        """The user closed the modal (Slack sends nothing unless ``notify_on_close`` is set)."""
        self.double.close_modals()

    # ------------------------------------------------------------------ requests

    @property
    def send(self) -> Sender:
        """What the user does, sent to the bot (``command``, ``press``, ``submit``…)."""
        assert self._sender is not None, "start the session first"
        return self._sender
