"""One console session: the real bot (assembled as ``gpubook serve`` assembles it, against the
Slack double), who is typing, and their screen.

The session wires three parts and lets the REPL talk to them as one: the double
(:mod:`bot.console.double`) stands in for Slack, the :class:`~bot.console.screen.Screen` renders
what the bot shows, and the :class:`~bot.console.sender.Sender` turns what is typed into the
requests Slack would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.console.demo import DEMO_IDLE_AFTER, DEMO_REPORT_SECONDS, DemoAgent, demo_login, seed_demo
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
        demo_report_seconds: float | None = DEMO_REPORT_SECONDS,
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
        #: The demo's simulated agent (``start(demo=True, simulate=True)`` on a new database),
        #: reporting every ``demo_report_seconds`` in the background (None: only when told to).
        self.demo_agent: DemoAgent | None = None
        self._demo_report_seconds = demo_report_seconds
        self._demo_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, demo: bool = False, simulate: bool = False) -> list[str]:
        """Migrate, build the app against the double, start the scheduler; notes to print.

        ``demo`` adds demo GPUs to a database that has none; ``simulate`` (``--demo`` on the
        command line) also runs a simulated host agent there (:mod:`bot.console.demo`).
        """
        notes: list[str] = []
        simulate = demo and simulate
        if simulate:  # an idle booking should show within a minute, not half an hour
            usage = replace(self.settings.usage, idle_after=DEMO_IDLE_AFTER)
            self.settings = replace(self.settings, usage=usage)
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
            login = demo_login(self.user_name)
            seeded, self.demo_agent = await seed_demo(
                self.bot.service, self.settings.team, self.user_id, login, simulate=simulate
            )
            notes.extend(seeded)
        await self.bot.start_lifecycle()
        if self.demo_agent is not None and self._demo_report_seconds is not None:
            self._demo_task = asyncio.create_task(self.demo_agent.run(self._demo_report_seconds))
        return notes

    async def close(self) -> None:
        """Stop the demo's agent, the bot (the scheduler first), then the double the bot was
        posting to."""
        if self._demo_task is not None:
            self._demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._demo_task
        if self.bot is not None:
            await self.bot.close()
        await self.double.close()

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
