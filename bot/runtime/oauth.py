"""Many workspaces: Slack's OAuth install flow and a bot token per workspace, in gpubook's database.

With ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` set, gpubook serves ``GET /slack/install``
(a page with the *Add to Slack* button) and ``GET /slack/oauth_redirect`` (Slack sends the
installer back there with a code; Bolt trades it for the workspace's bot token) through
slack-bolt's ``AsyncOAuthFlow``. Tokens and OAuth states live in slack-sdk's own SQLAlchemy
stores on gpubook's database (tables in ``storage.models``, created by the migrations), not in
Bolt's default local files, so every replica sees every install.

Each request is then answered with its workspace's token: Bolt's installation-store authorisation
looks the bot up by the request's team. Its ``auth.test`` per token is cached (Bolt's own cache):
without it every request would wait for one more Slack call. An uninstall or a revoked token
deletes that workspace's tokens (Bolt's built-in listeners); its bookings stay, and the command
line still exports them. The lifecycle has no request to take a token from, so it asks
:class:`InstalledClients` for each notice's workspace.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.phrases import Code
from bot.core.sentence import say
from bot.core.wording import render
from bot.runtime.config import Settings
from bot.runtime.slack_client import build_client
from handlers.wording import SlackText
from storage.db import Database

log = logging.getLogger(__name__)

#: How long an install link stays valid (Bolt's default).
STATE_SECONDS = 600


class InstallationStore(AsyncInstallationStore):
    """slack-sdk's SQLAlchemy installation store, whose lookups never take SQLite's write lock.

    Every request looks its workspace's bot up; on SQLite each transaction of gpubook's engine
    starts with ``BEGIN IMMEDIATE`` (``storage.db``), so those lookups read through the database's
    read-only engine and only installs and uninstalls write.
    """

    def __init__(self, client_id: str, db: Database) -> None:
        self.engine = db.engine
        self._writer = AsyncSQLAlchemyInstallationStore(client_id, db.engine)
        self._reader = AsyncSQLAlchemyInstallationStore(client_id, db.reading_engine)

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await self._writer.async_save(installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._writer.async_save_bot(bot)

    async def async_find_bot(self, **kwargs: Any) -> Bot | None:
        return await self._reader.async_find_bot(**kwargs)

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        return await self._reader.async_find_installation(**kwargs)

    async def async_delete_bot(self, **kwargs: Any) -> None:
        await self._writer.async_delete_bot(**kwargs)

    async def async_delete_installation(self, **kwargs: Any) -> None:
        await self._writer.async_delete_installation(**kwargs)


def oauth_app_options(
    settings: Settings, store: InstallationStore, client: AsyncWebClient
) -> dict[str, Any]:
    """The ``AsyncApp`` arguments of many-workspace mode: the OAuth flow over gpubook's database,
    the per-workspace authorisation (bot tokens only, ``auth.test`` cached per token) and what a
    workspace without a token is told."""
    assert settings.slack_client_id and settings.slack_client_secret, "see distribution_problems"
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(settings.slack_scopes),
        installation_store=store,
        installation_store_bot_only=True,
        state_store=AsyncSQLAlchemyOAuthStateStore(STATE_SECONDS, store.engine),
        state_expiration_seconds=STATE_SECONDS,
    )
    authorize = AsyncInstallationStoreAuthorize(
        logger=log,
        installation_store=store,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        bot_only=True,
        cache_enabled=True,
        client=client,
    )
    return {
        "oauth_settings": oauth,
        "authorize": authorize,
        "user_facing_authorize_error_message": render(say(Code.NOT_INSTALLED), SlackText()),
    }


def add_oauth_routes(router: web.UrlDispatcher, flow: AsyncOAuthFlow) -> None:
    """``GET`` the install page and the redirect Slack sends the installer back to."""

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(
            await flow.handle_installation(await to_bolt_request(request))
        )

    async def redirect(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    router.add_get(flow.install_path, install)
    router.add_get(flow.redirect_uri_path, redirect)


class InstalledClients:
    """A Web API client with a workspace's bot token, for posts made outside any request.

    ``None`` for a workspace without a token (uninstalled, or its token revoked). Looked up on
    each call, so an uninstall takes effect at once on every replica.
    """

    def __init__(self, store: AsyncInstallationStore, api_url: str | None) -> None:
        self.store = store
        self.api_url = api_url

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return build_client(bot.bot_token, self.api_url)


def distribution_problems(settings: Settings) -> list[str]:
    """What keeps many-workspace mode (``SLACK_CLIENT_ID``/``SECRET``) from working, one sentence
    each; ``gpubook serve`` adds them to its own checks."""
    problems = []
    for key, value in (
        ("SLACK_CLIENT_ID", settings.slack_client_id),
        ("SLACK_CLIENT_SECRET", settings.slack_client_secret),
    ):
        if not value:
            problems.append(
                f"{key} is not set; installing into many workspaces needs both SLACK_CLIENT_ID "
                "and SLACK_CLIENT_SECRET (Basic Information → App Credentials)."
            )
    if settings.slack_bot_token:
        problems.append(
            "SLACK_BOT_TOKEN is set as well as SLACK_CLIENT_ID/SECRET; with OAuth each workspace's "
            "token comes from its install: unset SLACK_BOT_TOKEN (or the OAuth settings)."
        )
    if settings.slack_app_token:
        problems.append(
            "SLACK_APP_TOKEN is set; installing into many workspaces works over HTTP "
            "(GET /slack/install): unset SLACK_APP_TOKEN."
        )
    return problems
