"""The one async Bolt app, used by HTTP mode, Socket Mode and the console alike.

Its Web API client retries what is safe to retry — connection errors and HTTP 429 after
``Retry-After`` — and can be pointed at another API base (``SLACK_API_URL``: a test double,
GovSlack). Slack redelivers an event it thinks was not acked in time; the redelivery is acked and
dropped, since the first delivery is already being handled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.service import BookingService
from handlers import register_all
from handlers.context import Deps
from handlers.users import UserDirectory
from storage.db import Database

log = logging.getLogger(__name__)

#: Retries of a 429 before the call fails (each waits Retry-After seconds).
RATE_LIMIT_RETRIES = 2


def build_deps(settings: Settings, db: Database, clock: Clock = system_clock) -> Deps:
    """The listeners' dependencies from the operator's settings."""
    service = BookingService(db, settings.service_config(), clock)
    return Deps(service=service, users=UserDirectory())


def build_client(token: str | None, api_url: str | None = None) -> AsyncWebClient:
    """A Web API client with retries; ``api_url`` must end in ``/`` (slack_sdk joins onto it)."""
    kwargs = {"base_url": api_url} if api_url else {}
    return AsyncWebClient(
        token=token,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
        **kwargs,
    )


async def _skip_event_redeliveries(
    req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
) -> BoltResponse | None:
    """Ack an Events API redelivery (``X-Slack-Retry-Num`` ≥ 1) without handling it twice.

    Socket Mode mirrors the envelope's ``retry_attempt`` into the same header (0 on first try).
    """
    retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
    if req.body.get("type") == "event_callback" and retry not in ("", "0"):
        log.info("ignoring redelivery %s of event %s", retry, req.body.get("event_id"))
        return BoltResponse(status=200, body="")
    await next()
    return None


def build_app(
    deps: Deps,
    *,
    token: str | None,
    signing_secret: str | None,
    client: AsyncWebClient | None = None,
    api_url: str | None = None,
) -> AsyncApp:
    """The Bolt app with every gpubook listener registered.

    ``signing_secret`` may be ``None`` only for Socket Mode, whose requests are not signed.
    """
    app = AsyncApp(
        client=client or build_client(token, api_url),
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        name="gpubook",
    )
    app.middleware(_skip_event_redeliveries)

    @app.error
    async def on_error(error: Exception, body: dict) -> None:
        # Listeners answer their own failures; this catches what escapes Bolt's machinery.
        log.error("unhandled error for %s request", body.get("type"), exc_info=error)

    register_all(app, deps)
    return app
