"""The agent's sender and loop: bounded backoff, one log line per change of state, never a
traceback; and `gpubook agent` as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bot.agent.sender import MAX_BACKOFF, AgentLoop, Sender, backoff
from bot.agent.standin import StandinProbe
from bot.booking import Actor, BookingService
from bot.core.agent_report import DeviceReading
from bot.core.clock import FrozenClock
from bot.runtime.runner import start_http
from tests.conftest import T0


def test_backoff_doubles_from_the_interval_and_is_bounded() -> None:
    interval = timedelta(seconds=15)
    waits = [backoff(interval, n) for n in range(12)]
    assert waits[:4] == [interval, interval * 2, interval * 4, interval * 8]
    assert max(waits) == MAX_BACKOFF and waits[-1] == MAX_BACKOFF


class Bot:
    """A stand-in bot whose answer the test sets: a status, or down (connection refused)."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[dict] = []
        self.got_one = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.got_one.set()
        return web.json_response(
            {"ok": self.status < 300, "reason": "token revoked"}, status=self.status
        )


@pytest.fixture
async def bot() -> AsyncIterator[tuple[Bot, web.AppRunner, str]]:
    fake = Bot()
    app = web.Application()
    app.router.add_post("/agent/report", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield fake, runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


class Flaky:
    """A probe that fails when told to, like NVML losing the driver."""

    def __init__(self) -> None:
        self.broken = False

    def open(self) -> None: ...

    def close(self) -> None: ...

    def read(self) -> tuple[DeviceReading, ...]:
        if self.broken:
            raise RuntimeError("NVML: Driver Not Loaded")
        return (DeviceReading("GPU-1", 0, "Stand-in", 24576, 0),)


async def test_one_line_per_change_of_state_and_no_traceback(
    bot: tuple[Bot, web.AppRunner, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, runner, url = bot
    probe = Flaky()
    sender = Sender(url, "gpb_x")
    loop = AgentLoop(probe, sender, "gpu-host-1", timedelta(seconds=15), clock=FrozenClock(T0))
    caplog.set_level(logging.INFO, logger="gpubook.agent")
    try:
        for _ in range(2):
            assert (await loop.attempt()).ok
        fake.status = 401
        for _ in range(3):
            assert not (await loop.attempt()).ok
        assert loop.failures == 3
        probe.broken = True
        for _ in range(2):
            await loop.attempt()
        probe.broken = False
        fake.status = 200
        await loop.attempt()
        await runner.cleanup()  # the bot goes away
        for _ in range(2):
            await loop.attempt()
    finally:
        await sender.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "reporting"
    assert lines[1].startswith("the bot refused the report: HTTP 401, token revoked")
    assert lines[2] == "cannot read the cards (NVML: Driver Not Loaded); retrying with backoff"
    assert lines[3] == "reporting"
    assert lines[4].startswith(f"the bot at {url}/agent/report is unreachable")
    assert len(lines) == 5
    assert not [r for r in caplog.records if r.exc_info]
    assert fake.received[0]["host"] == "gpu-host-1"


async def test_the_loop_stops_when_told(bot: tuple[Bot, web.AppRunner, str]) -> None:
    fake, _, url = bot
    sender = Sender(url, "gpb_x")
    loop = AgentLoop(StandinProbe("h"), sender, "h", timedelta(hours=1))
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.wait_for(fake.got_one.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 5)
    await sender.close()
    assert len(fake.received) == 1


def _gpubook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    gpubook = Path(sys.executable).with_name("gpubook")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPUBOOK_")}
    return subprocess.run(
        [str(gpubook), *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_real_agent_process_reports_once_to_the_real_endpoint(
    service: BookingService, admin: Actor, tmp_path: Path
) -> None:
    _, secret = await service.create_agent_token(admin, "gpu-host-1")
    runner = await start_http(None, {}, host="127.0.0.1", port=0, service=service)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    cards = [
        {
            "uuid": "GPU-s0",
            "index": 0,
            "name": "Stand-in",
            "total_mib": 24576,
            "used_mib": 9000,
            "processes": [{"pid": 7, "user": "alice", "used_mib": 9000}],
        }
    ]
    (tmp_path / "cards.json").write_text(json.dumps(cards))
    args = (
        "agent",
        "--once",
        "--probe",
        "standin",
        "--standin",
        str(tmp_path / "cards.json"),
        "--host",
        "gpu-host-1",
    )
    try:
        ok = await asyncio.to_thread(
            _gpubook, *args, env={"GPUBOOK_AGENT_URL": url, "GPUBOOK_AGENT_TOKEN": secret}
        )
        forged = await asyncio.to_thread(
            _gpubook, *args, env={"GPUBOOK_AGENT_URL": url, "GPUBOOK_AGENT_TOKEN": "gpb_forged"}
        )
    finally:
        await runner.cleanup()
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "gpubook agent: reporting.\n", "")
    assert forged.returncode == 1
    assert "HTTP 401" in forged.stderr and "Traceback" not in forged.stderr
    [device] = await service.unbound_devices(admin)
    assert (device.uuid, device.used_mib) == ("GPU-s0", 9000)


@pytest.mark.slow
def test_without_nvml_the_agent_says_so_in_one_sentence() -> None:
    done = _gpubook("agent", "--once", "--print", env={})
    assert done.returncode == 1
    assert done.stderr.startswith("gpubook agent: NVML is not usable on this machine")
    assert "--probe standin" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_once_print_shows_the_reading_without_sending_and_sending_needs_settings() -> None:
    shown = _gpubook("agent", "--once", "--print", "--probe", "standin", "--host", "h", env={})
    assert shown.returncode == 0
    report = json.loads(shown.stdout)
    assert report["host"] == "h" and len(report["devices"]) == 2
    unsent = _gpubook("agent", "--probe", "standin", env={})
    assert unsent.returncode == 2 and "set GPUBOOK_AGENT_URL" in unsent.stderr
