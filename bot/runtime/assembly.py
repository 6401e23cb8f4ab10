"""The one wiring of a running gpubook: database → booking service → Bolt app → lifecycle.

``gpubook serve``, the console and the benchmarks run the bot against different Slacks (the real
one, the console's double, the tests' fake) but must run the same bot, or the console would show
and the benchmarks measure something production does not run. So they all assemble it here.

This module (with the rest of ``bot/runtime``) is also the one place that knows the Slack
interface in ``handlers/``: the listeners' dependencies and the notice renderer come from here,
so neither the lower layers nor the console import ``handlers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import BookingService
from bot.core.clock import Clock, system_clock
from bot.lifecycle.notifier import Notifier
from bot.lifecycle.routing import TeamClients
from bot.lifecycle.scheduler import LifecycleScheduler, start_lifecycle
from bot.runtime.app import GpubookApp, build_app, build_deps
from bot.runtime.config import Settings
from bot.runtime.metrics import Metrics
from bot.runtime.oauth import InstallationStore, InstalledClients, oauth_app_options
from bot.runtime.slack_client import build_client
from handlers.blocks.notifications import render as render_notices
from handlers.context import Deps
from storage.db import Database
from storage.migrate import upgrade


@dataclass
class Assembly:
    """A migrated database, the service over it, the Bolt app serving it and, once started, the
    lifecycle; bookings, requests and notifications all count into ``metrics``."""

    settings: Settings
    db: Database
    deps: Deps
    app: GpubookApp
    metrics: Metrics
    #: Who posts for each workspace outside requests; ``None``: the app's one client.
    team_clients: TeamClients | None = None
    lifecycle: LifecycleScheduler | None = None

    @property
    def service(self) -> BookingService:
        return self.deps.service

    def forget_user(self, team_id: str, user_id: str) -> None:
        """Drop what the app cached about a user (their admin rights change on the next request)."""
        self.deps.users.forget(team_id, user_id)

    async def start_lifecycle(self) -> LifecycleScheduler:
        """Start sweeping every ``settings.sweep_seconds``, posting with each workspace's token."""
        self.lifecycle = await start_lifecycle(
            self.db,
            self.team_clients or self.app.client,
            self.service.config,
            self.service.clock,
            render=render_notices,
            sweep_seconds=self.settings.sweep_seconds,
            reminder_before=self.settings.reminder_before,
            on_flush=self.metrics.count_flush,
            after_free=self.service.after_freeing,
        )
        return self.lifecycle

    async def close(self) -> None:
        """Stop the lifecycle (its sweep in flight finishes), then close what it used."""
        if self.lifecycle is not None:
            await self.lifecycle.shutdown()
        await self.service.settled_days.stop()
        await self.deps.homes.drain()
        await self.deps.users.close()
        if self.app.client.session is not None:
            await self.app.client.session.close()
        await self.db.dispose()


async def assemble(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    token: str | None,
    signing_secret: str | None,
    api_url: str | None,
) -> Assembly:
    """Migrate the database of ``settings`` and build the service and the app over it.

    ``signing_secret`` is ``None`` only for Socket Mode (see ``build_app``); the lifecycle is
    started separately (:meth:`Assembly.start_lifecycle`), once the caller is ready for posts.
    """
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    except BaseException:
        await db.dispose()
        raise
    metrics = Metrics()
    deps = build_deps(settings, db, clock, metrics=metrics)
    client, oauth, team_clients = None, None, None
    if settings.distributed:  # no token of its own: one per installed workspace
        store = InstallationStore(str(settings.slack_client_id), db)
        client = build_client(None, api_url)
        oauth = oauth_app_options(settings, store, client)
        team_clients = InstalledClients(store, api_url)
    app = build_app(
        deps,
        token=token,
        signing_secret=signing_secret,
        client=client,
        api_url=api_url,
        metrics=metrics,
        oauth=oauth,
    )
    # One connection pool for every Web API call: without a session, slack_sdk opens (and with
    # TLS, handshakes) a new connection for each call.
    app.client.session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=app.client.timeout)
    )
    return Assembly(settings, db, deps, app, metrics, team_clients)


def build_notifier(
    db: Database, client: AsyncWebClient | TeamClients, clock: Clock, **options: Any
) -> Notifier:
    """The notifier as the lifecycle builds it (same renderer), for driving flushes by hand."""
    return Notifier(db, client, clock, render=render_notices, **options)
