"""Operations of `gpubook serve`: /healthz, /metrics, one log line per request, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.web.async_client import AsyncWebClient

import bot.runtime.assembly as assembly_module
from bot.booking import BookingService
from bot.core.clock import FrozenClock
from bot.lifecycle.notifier import Notifier
from bot.lifecycle.scheduler import LifecycleScheduler, start_lifecycle
from bot.lifecycle.sweep import Lifecycle
from bot.runtime.app import build_app, describe_request
from bot.runtime.config import Settings
from bot.runtime.logs import REQUEST_LOGGER, JsonFormatter
from bot.runtime.metrics import MeteredBookingService, Metrics
from bot.runtime.runner import (
    default_health_checks,
    scheduler_health,
    serve,
    start_http,
    wait_for_listeners,
)
from bot.runtime.slack_client import build_client
from handlers.blocks.notifications import render as render_notices
from handlers.context import Deps
from handlers.users import UserDirectory
from storage.db import Database
from tests.e2e.conftest import SECRET, Bot
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req

#: Generous bound for polling a server that runs in this very loop.
WAIT = 10.0


@pytest.fixture
async def metered(fake: FakeSlackWebAPI, service: BookingService) -> AsyncIterator[Bot]:
    """The bot as `serve` wires it: bookings and requests counted into one Metrics, /metrics on."""
    metrics = Metrics()
    metered_service = MeteredBookingService(
        service.db, service.config, service.clock, metrics=metrics
    )
    deps = Deps(service=metered_service, users=UserDirectory())
    app = build_app(
        deps, token="xoxb-test", signing_secret=SECRET, api_url=fake.base_url, metrics=metrics
    )
    runner = await start_http(
        app, default_health_checks(service.db), host="127.0.0.1", port=0, metrics=metrics
    )
    yield Bot(f"http://127.0.0.1:{runner.addresses[0][1]}", fake, metered_service, deps)
    await wait_for_listeners(within=WAIT)
    await runner.cleanup()
    await deps.users.close()
    fake.assert_all_valid()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def sample(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_bookings_and_latency(metered: Bot) -> None:
    await metered.add_gpu("rtx-0", "24GB")
    await metered.command("book rtx-0 20GB 10:00 for 2h first")
    await metered.command("book rtx-0 20GB 10:00 for 2h second")  # does not fit: refused
    await metered.command("book any 4GB for 2h asap queued")  # flexible: counted too
    await metered.command("frobnicate now")

    status, text = await get(f"{metered.url}/metrics")

    assert status == 200
    requests = "gpubook_requests_total"
    assert sample(text, requests, kind="command", command="book", outcome="ok") == 3
    assert sample(text, requests, kind="command", command="other", outcome="ok") == 1
    assert sample(text, "gpubook_request_seconds_count", kind="command") == 4
    assert sample(text, "gpubook_bookings_total", outcome="created") == 2
    assert sample(text, "gpubook_bookings_total", outcome="refused_capacity") == 1


async def test_metrics_count_each_occurrence_of_a_series_and_a_refused_series_once(
    metered: Bot,
) -> None:
    await metered.add_gpu("rtx-0", "24GB")
    await metered.command("book rtx-0 20GB every day 10:00 for 1h 3 times daily-job")
    await metered.command("book rtx-0 8GB every day 10:00 for 1h 2 times refused")
    _, text = await get(f"{metered.url}/metrics")
    assert sample(text, "gpubook_bookings_total", outcome="created") == 3
    assert sample(text, "gpubook_bookings_total", outcome="refused_capacity") == 1


async def test_a_badly_signed_request_counts_as_an_error(metered: Bot) -> None:
    req = slack_req.slash_command("status", signing_secret="not-the-secret")
    status, _ = await metered.send(req)

    assert status == 401
    _, text = await get(f"{metered.url}/metrics")
    assert (
        sample(text, "gpubook_requests_total", kind="command", command="status", outcome="error")
        == 1
    )


async def test_notifications_are_counted_from_the_sweep(
    metered: Bot, fake: FakeSlackWebAPI
) -> None:
    await metered.add_gpu("rtx-0", "24GB")
    await metered.command("book rtx-0 10GB now for 1h train")
    metrics = metered.service.metrics  # type: ignore[attr-defined]
    service = metered.service
    scheduler = LifecycleScheduler(
        Lifecycle(service.db, service.config, service.clock),
        Notifier(
            service.db,
            fake_client(fake),
            service.clock,
            render=render_notices,
            default_channel=service.config.default_channel,
        ),
        on_flush=metrics.count_flush,
    )

    result = await scheduler.sweep()

    assert result.flushed.sent >= 1
    text = metrics.exposition().decode()
    assert sample(text, "gpubook_notifications_total", outcome="sent") == result.flushed.sent
    assert sample(text, "gpubook_notifications_total", outcome="failed") == 0


def test_requests_are_labelled_by_what_they_ask() -> None:
    def described(req: slack_req.SignedRequest) -> tuple[str, str, str | None]:
        return describe_request(req.payload)

    assert described(slack_req.slash_command("", user_id="U1")) == ("command", "", "U1")
    assert described(slack_req.slash_command("BOOK a", user_id="U1")) == ("command", "book", "U1")
    assert described(slack_req.slash_command("<@U2> hi", user_id="U1"))[1] == "other"
    assert described(slack_req.block_action("gpubook_extend", "7", user_id="U3")) == (
        "block_actions",
        "gpubook_extend",
        "U3",
    )
    assert described(slack_req.view_submission("gpubook_book", user_id="U4")) == (
        "view_submission",
        "gpubook_book",
        "U4",
    )
    assert described(slack_req.event(slack_req.app_home_opened("U5"))) == (
        "event",
        "app_home_opened",
        "U5",
    )


async def test_one_structured_log_line_per_request(
    metered: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        await metered.command("status", user="UWHO")

    [record] = [r for r in caplog.records if r.name == REQUEST_LOGGER]
    line = json.loads(JsonFormatter().format(record))
    assert line["kind"] == "command" and line["command"] == "status"
    assert line["user"] == "UWHO" and line["outcome"] == "ok"
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0


async def test_healthz_reports_scheduler_and_database(
    fake: FakeSlackWebAPI, service: BookingService, clock: FrozenClock
) -> None:
    lifecycle = await start_lifecycle(
        service.db, fake_client(fake), service.config, clock, render=render_notices
    )
    checks = {**default_health_checks(service.db), "scheduler": scheduler_health(lifecycle)}
    runner = await start_http(None, checks, host="127.0.0.1", port=0)
    try:
        status, body = await get(f"http://127.0.0.1:{runner.addresses[0][1]}/healthz")
    finally:
        await runner.cleanup()
        await lifecycle.shutdown()

    assert status == 200
    assert json.loads(body) == {"ok": True, "database": True, "scheduler": True}


async def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    unreachable = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'gpubook.db'}")
    runner = await start_http(
        None, default_health_checks(unreachable), host="127.0.0.1", port=0, metrics=Metrics()
    )
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        status, body = await get(f"{base}/healthz")
        metrics_status, _ = await get(f"{base}/metrics")
    finally:
        await runner.cleanup()
        await unreachable.dispose()

    assert (status, json.loads(body)) == (503, {"ok": False, "database": False})
    assert metrics_status == 200  # Socket Mode's health server serves metrics too


def fake_client(fake: FakeSlackWebAPI) -> AsyncWebClient:
    return build_client("xoxb-test", fake.base_url)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.fixture
def unfreeze() -> Iterator[None]:
    """serve() freezes the GC's view of startup objects; give the test process its GC back."""
    yield
    gc.unfreeze()


async def wait_healthy(url: str) -> dict[str, bool]:
    """Poll /healthz until it answers 200 (serve is starting in this loop)."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                status, body = await get(url)
            except aiohttp.ClientConnectionError:
                status, body = 0, ""
            if status == 200:
                return json.loads(body)
            await asyncio.sleep(0.05)


async def test_serve_stops_cleanly_on_sigterm(
    fake: FakeSlackWebAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unfreeze: None,
) -> None:
    started: list[LifecycleScheduler] = []

    async def spy_lifecycle(*args: object, **kwargs: object) -> LifecycleScheduler:
        scheduler = await start_lifecycle(*args, **kwargs)  # type: ignore[arg-type]
        started.append(scheduler)
        return scheduler

    monkeypatch.setattr(assembly_module, "start_lifecycle", spy_lifecycle)
    port = free_port()
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "PORT": str(port),
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    base = f"http://127.0.0.1:{port}"

    assert await wait_healthy(f"{base}/healthz") == {
        "ok": True,
        "database": True,
        "scheduler": True,
    }
    status, _, _ = await slack_req.post(base, slack_req.slash_command("help"))
    assert status == 200
    os.kill(os.getpid(), signal.SIGTERM)  # serve's handler turns it into `stop`
    await asyncio.wait_for(task, WAIT)

    assert stop.is_set() and task.result() is None
    [scheduler] = started
    assert scheduler._scheduler is not None and not scheduler._scheduler.running
    with pytest.raises(aiohttp.ClientConnectionError):  # nothing listens any more
        await get(f"{base}/healthz")


async def test_serve_listens_only_on_the_host_it_is_given(
    fake: FakeSlackWebAPI, tmp_path: Path, unfreeze: None
) -> None:
    host = "127.0.0.2"  # loopback too, but not the address a client of 127.0.0.1 reaches
    try:
        port = free_port(host)
    except OSError:
        pytest.skip(f"{host} is not a loopback address here")
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "HOST": host,
            "PORT": str(port),
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    try:
        assert (await wait_healthy(f"http://{host}:{port}/healthz"))["ok"]
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(f"http://127.0.0.1:{port}/healthz")
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
