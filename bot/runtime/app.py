"""The one async Bolt app, used by HTTP mode, Socket Mode and the console alike.

Its Web API client retries what is safe to retry — connection errors and HTTP 429 after
``Retry-After`` — and can be pointed at another API base (``SLACK_API_URL``: a test double,
GovSlack). Slack redelivers an event it thinks was not acked in time; the redelivery is acked and
dropped, since the first delivery is already being handled.

Every request is timed, counted (``bot.runtime.metrics``) and logged as one line (``bot.runtime.logs``) around
:meth:`GpubookApp.async_dispatch`, the one entry point of HTTP, Socket Mode and the console. Not
in a Bolt global middleware: async Bolt runs global middleware *before* the listeners (``next()``
only sets a flag), so time around ``next()`` measures nothing. ``async_dispatch`` returns once the
listener has acked (a command alone, with its answer: ``handlers.ack``), while its work carries
on in a task of its own; so the latency recorded is time-to-ack (what Slack's 3-second deadline
is about), not the whole listener's run, and the
outcome is "error" when dispatch raised or answered ≥ 400 (bad signature, unhandled, a listener
that crashed before its ack). Failures after the ack are answered and logged by
``handlers.context.answer``; booking outcomes are counted in the service (``bot.runtime.metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.clock import Clock, system_clock
from bot.render.chart import chart_png
from bot.runtime.config import Settings
from bot.runtime.logs import log_request
from bot.runtime.metrics import MeteredBookingService, Metrics
from bot.runtime.slack_client import build_client
from handlers import register_all
from handlers.command_parser import VERBS as COMMAND_VERBS
from handlers.context import Deps
from handlers.home_refresh import HomeRefresher
from handlers.users import UserDirectory
from storage.db import Database

log = logging.getLogger(__name__)

#: How long a changed App Home waits for more changes before it is rebuilt: a person clicking
#: through several bookings sees the result within a second, and pays for one rebuild.
HOME_REFRESH_DELAY = 1.0


def build_deps(
    settings: Settings, db: Database, clock: Clock = system_clock, metrics: Metrics | None = None
) -> Deps:
    """The listeners' dependencies from the operator's settings; bookings count into ``metrics``."""
    service = MeteredBookingService(
        db, settings.service_config(), clock, metrics=metrics or Metrics()
    )
    return Deps(
        service=service,
        users=UserDirectory(),
        public_url=settings.public_url,
        draw_chart=chart_png,
        homes=HomeRefresher(HOME_REFRESH_DELAY),
        answering=asyncio.Semaphore(settings.answers_at_once),
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


#: Events telling that a workspace removed gpubook (its tokens are deleted in many-workspace mode).
UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")


async def _nothing_to_forget() -> None:
    """A single-token bot keeps its token in its settings, not in the database."""


def describe_request(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(kind, command, user)`` of a Slack request body, for metrics labels and the log line.

    ``command`` is the subcommand (first word of the text, ``""`` for none, ``other`` for an
    unknown word: a label must not take whatever users type), the button's action_id, the form's
    callback_id or the event type.
    """
    if "command" in body:
        words = str(body.get("text") or "").split()
        verb = words[0].lower() if words else ""
        return (
            "command",
            verb if not verb or verb in COMMAND_VERBS else "other",
            body.get("user_id"),
        )
    kind = str(body.get("type") or "unknown")
    user = (body.get("user") or {}).get("id")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return kind, str(actions[0].get("action_id", "")), user
    if kind in ("view_submission", "view_closed"):
        return kind, str((body.get("view") or {}).get("callback_id", "")), user
    if kind == "event_callback":
        event = body.get("event") or {}
        return "event", str(event.get("type", "")), event.get("user")
    return kind, "", user


class GpubookApp(AsyncApp):
    """The Bolt app, timing, counting and logging every request it dispatches."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await super().async_dispatch(req)
            outcome = "ok" if response.status < 400 else "error"
            return response
        finally:
            self._record(req.body, outcome, time.perf_counter() - started)

    def _record(self, body: dict[str, Any], outcome: str, seconds: float) -> None:
        kind, command, user = describe_request(body)
        self.metrics.observe_request(kind, command, outcome, seconds)
        log_request(
            kind=kind,
            command=command,
            user=user,
            outcome=outcome,
            latency_ms=round(seconds * 1e3, 1),
        )


def build_app(
    deps: Deps,
    *,
    token: str | None,
    signing_secret: str | None,
    client: AsyncWebClient | None = None,
    api_url: str | None = None,
    metrics: Metrics | None = None,
    oauth: Mapping[str, Any] | None = None,
) -> GpubookApp:
    """The Bolt app with every gpubook listener registered.

    ``signing_secret`` may be ``None`` only for Socket Mode, whose requests are not signed.
    Requests count into ``metrics`` (pass the one ``build_deps`` got, to serve both together).
    ``oauth`` (``bot.runtime.oauth.oauth_app_options``) installs it into many workspaces instead
    of serving the one of ``token``; an uninstall then deletes that workspace's tokens.
    """
    app = GpubookApp(
        metrics=metrics or Metrics(),
        client=client or build_client(token, api_url),
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        name="gpubook",
        # Answer Slack as soon as the listener returns: each acks, then hands the rest of its
        # work to ``handlers.context.after_ack``. Without it Bolt runs the listener in a task
        # and polls every 10 ms for the ack, which put 10 ms on every request.
        process_before_response=True,
        **(oauth or {}),
    )
    app.middleware(_skip_event_redeliveries)
    if oauth:
        app.enable_token_revocation_listeners()
    else:  # one workspace: nothing to forget, but acked, or Slack would redeliver them
        for event in UNINSTALL_EVENTS:
            app.event(event)(_nothing_to_forget)

    @app.error
    async def on_error(error: Exception, body: dict) -> None:
        # Listeners answer their own failures; this catches what escapes Bolt's machinery.
        log.error("unhandled error for %s request", body.get("type"), exc_info=error)

    register_all(app, deps)
    return app
