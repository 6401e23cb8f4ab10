"""`gpubook serve`: run the bot over Socket Mode or HTTP until SIGTERM.

Socket Mode (when ``SLACK_APP_TOKEN`` is set) needs no public URL; HTTP mode serves Slack's
requests on ``POST /slack/events``, a health check on ``GET /healthz`` for load balancers and
orchestrators, Prometheus metrics on ``GET /metrics`` and private calendar feeds on
``GET /ics/<token>.ics`` (Socket Mode serves the last three on a small HTTP server of its own). Settings are checked before anything starts, and each problem is reported in one
sentence with exit code 2, pointing at the console for trying gpubook without Slack.

The pieces (:func:`web_app`, :func:`start_http`, :func:`start_socket_mode`) are separate so tests
and benchmarks can run the real endpoint in-process on a random port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.booking import BookingService
from bot.cli.registry import Subparsers, add_command
from bot.lifecycle.scheduler import LifecycleScheduler
from bot.runtime.agent_endpoint import add_agent_route
from bot.runtime.assembly import assemble
from bot.runtime.config import Settings
from bot.runtime.feeds import add_feed_route
from bot.runtime.heap import start_heap_trimming
from bot.runtime.logs import configure as configure_logs
from bot.runtime.metrics import CONTENT_TYPE, Metrics
from bot.runtime.oauth import add_oauth_routes, distribution_problems
from handlers.ack import settle
from storage.db import Database

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
#: On SIGTERM, how long in-flight HTTP requests, then listeners still running after their ack,
#: may take to finish (orchestrators usually kill after 30 s).
SHUTDOWN_TIMEOUT = 10.0
EXIT_CONFIG = 2
CONSOLE_HINT = "To try gpubook without Slack, run `gpubook console`."

#: A named health check: True when that part of the bot works. The scheduler adds its own.
HealthCheck = Callable[[], Awaitable[bool]]


class ConfigError(Exception):
    """Settings that cannot work; ``str()`` lists one sentence per problem."""


def check_settings(settings: Settings) -> str:
    """The mode to run in (``socket`` or ``http``), or ConfigError naming every missing setting."""
    problems: list[str] = []
    bot_token = settings.slack_bot_token
    if settings.distributed:
        problems.extend(distribution_problems(settings))
    elif not bot_token:
        problems.append("SLACK_BOT_TOKEN is not set; copy the bot token (`xoxb-…`) from your app.")
    elif not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN should start with `xoxb-` (the bot token, not another).")
    if settings.slack_app_token:
        mode = "socket"
        if not settings.slack_app_token.startswith("xapp-"):
            problems.append(
                "SLACK_APP_TOKEN should start with `xapp-` (an app-level token with "
                "`connections:write`); unset it to use HTTP mode."
            )
    else:
        mode = "http"
        if not settings.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set; HTTP mode needs it to verify Slack's requests "
                "(or set SLACK_APP_TOKEN to use Socket Mode)."
            )
    if problems:
        raise ConfigError("\n".join([*problems, CONSOLE_HINT]))
    return mode


def web_app(
    app: AsyncApp | None,
    health_checks: Mapping[str, HealthCheck],
    path: str = EVENTS_PATH,
    metrics: Metrics | None = None,
    service: BookingService | None = None,
) -> web.Application:
    """``POST path`` for Slack (commands, interactions, events, options), ``GET /healthz``,
    given ``metrics``, ``GET /metrics`` and, given ``service``, ``POST /agent/report`` for host
    agents and the calendar feeds (:mod:`bot.runtime.feeds`).

    Without ``app`` (Socket Mode) only the health check is served: an events endpoint whose
    requests are not verified must never be exposed.
    """

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        results = {name: await _safe(check) for name, check in health_checks.items()}
        ok = all(results.values())
        return web.json_response({"ok": ok, **results}, status=200 if ok else 503)

    application = web.Application()
    if app is not None:
        application.router.add_post(path, slack_events)
        if app.oauth_flow is not None:
            add_oauth_routes(application.router, app.oauth_flow)
    application.router.add_get(HEALTH_PATH, healthz)
    if metrics is not None:

        async def exposition(request: web.Request) -> web.Response:
            return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

        application.router.add_get(METRICS_PATH, exposition)
    if service is not None:
        add_agent_route(application, service, metrics)
        add_feed_route(application, service)
    return application


async def _safe(check: HealthCheck) -> bool:
    try:
        return bool(await check())
    except Exception:
        log.exception("health check failed")
        return False


def default_health_checks(db: Database) -> dict[str, HealthCheck]:
    return {"database": db.ping}


def scheduler_health(lifecycle: LifecycleScheduler) -> HealthCheck:
    async def check() -> bool:
        return lifecycle.healthy()

    return check


async def start_http(
    app: AsyncApp | None,
    health_checks: Mapping[str, HealthCheck],
    host: str | None = None,
    port: int = 3000,
    metrics: Metrics | None = None,
    service: BookingService | None = None,
) -> web.AppRunner:
    """Serve :func:`web_app` on ``host`` (``None``: every interface); ``port=0`` picks a free
    port (read it from ``runner.addresses``).

    ``runner.cleanup()`` stops listening, then waits up to :data:`SHUTDOWN_TIMEOUT` for requests
    in flight.
    """
    runner = web.AppRunner(
        web_app(app, health_checks, metrics=metrics, service=service),
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def start_socket_mode(app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """Connect to Slack over Socket Mode; Slack spreads requests over every connected replica."""
    handler = AsyncSocketModeHandler(app, app_token=app_token)
    await handler.connect_async()
    return handler


async def wait_for_listeners(within: float = SHUTDOWN_TIMEOUT) -> None:
    """Let the listeners' work carried on after their acks finish (their replies and posts)."""
    await settle(within)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows' default loop
            loop.add_signal_handler(sig, stop.set)


async def serve(
    settings: Settings,
    *,
    health_checks: Mapping[str, HealthCheck] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Migrate, start in the configured mode, and run until SIGTERM/SIGINT (or ``stop``).

    Stopping drains in order: no new requests (Socket Mode disconnects, the HTTP site closes),
    requests and listeners in flight finish, the lifecycle's sweep in flight finishes, and only
    then does the database close under them.
    """
    mode = check_settings(settings)
    bot = await assemble(
        settings,
        token=settings.slack_bot_token,
        signing_secret=settings.slack_signing_secret if mode == "http" else None,
        api_url=settings.slack_api_url,
    )
    app, metrics = bot.app, bot.metrics
    trimming = start_heap_trimming()
    try:
        lifecycle = await bot.start_lifecycle()
        # Statistics' settled days, read in the background: the first `admin stats` is quick.
        try:
            await bot.service.keep_settled_days()
        except Exception:  # only makes the first `admin stats` sum its window directly
            log.exception("could not start reading the statistics' settled days")
        checks = {
            **default_health_checks(bot.db),
            "scheduler": scheduler_health(lifecycle),
            **(health_checks or {}),
        }
        stop = stop or asyncio.Event()
        _stop_on_signals(stop)
        if mode == "socket":
            assert settings.slack_app_token is not None
            handler = await start_socket_mode(app, settings.slack_app_token)
            checks["socket_mode"] = handler.client.is_connected
            runner = await start_http(
                None, checks, settings.host, settings.port, metrics, bot.service
            )
            log.info("gpubook is connected over Socket Mode; health on %s", _where(settings))
            freeze_startup_objects()
            await stop.wait()
            await handler.close_async()
        else:
            runner = await start_http(
                app, checks, settings.host, settings.port, metrics, bot.service
            )
            log.info("gpubook listens on %s (%s, %s)", _where(settings), EVENTS_PATH, HEALTH_PATH)
            freeze_startup_objects()
            await stop.wait()
        await runner.cleanup()  # stops listening, then waits for HTTP requests in flight
        await wait_for_listeners()
    finally:
        if trimming is not None:
            trimming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trimming
        await bot.close()
    log.info("gpubook stopped")


def _where(settings: Settings) -> str:
    return f"{settings.host or 'all interfaces'}, port {settings.port}"


def freeze_startup_objects() -> None:
    # Startup objects live forever; frozen, GC stops rescanning them (30-day search tail ~3x).
    gc.collect()
    gc.freeze()


def run(settings: Settings) -> int:
    """The `serve` subcommand: exit code 0 after a clean stop, 2 for unusable settings."""
    try:
        check_settings(settings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    configure_logs(settings.log_level)
    asyncio.run(serve(settings))
    return 0


def add_serve(commands: Subparsers) -> None:
    """Register `gpubook serve` on the command line's subparsers (see ``bot.cli.main.COMMANDS``)."""
    add_command(
        commands,
        "serve",
        "Run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on PORT).",
        lambda args, settings, clock: run(settings),
        description="Run the Slack bot until SIGTERM.",
    )
