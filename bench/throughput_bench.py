"""Bookings per second over HTTP, server CPU per booking, and reply latency under a burst.

A real ``gpubook serve`` process (HTTP mode, SQLite file, 8 × 80 GB GPUs) answers signed
``/gpubook book`` commands; this process plays Slack: it signs and posts the commands and runs
the fake Slack Web API that receives every reply that is not in the ack (``response_url``), users.info
lookup and App Home publish. Each booking asks for its own window, so all succeed. Five runs, each on a fresh
database:

- **sequential**: 50 users take turns; the next command is sent once the previous reply has
  arrived — delivered-reply throughput, as the seed's own system was measured (128.6/s);
- **one user**: the same, every booking by one person (who ends up holding all of them) — the cost
  must not grow with what the asker holds;
- **…, Homes open**: the same two, each user having opened their App Home first, so changes
  rebuild it (at most once a second per user, ``HOME_REFRESH_DELAY``) — what a booking costs
  when its Home may be on screen;
- **burst**: 20 clients, each sending its share as fast as its replies arrive — reply latency
  (send → reply received: the ack that carried it, else the fake Slack's response_url) p50/p99,
  and when the last reply arrived.

Server CPU per booking is the serve process's user+system CPU time (``/proc/PID/stat``) from just
before the first command until it has gone idle after the last (so App Home refreshes and other
work after the reply are included), divided by the bookings made.

Targets (issue "operate at scale"): CPU ≤ 8 ms per booking, whatever the asker holds; sequential
throughput ≥ 128/s; burst reply p99 < 250 ms.

    .venv/bin/python -m bench.throughput_bench [--quick] [--bookings 500]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    machine,
    parse_args,
    percentiles_ms,
    print_machine,
    print_table,
    write_results,
)
from bot.booking import Actor
from bot.console.slackapi import ResponseTarget
from bot.core.clock import system_clock
from bot.runtime.assembly import assemble
from bot.runtime.config import Settings
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import ACK, REPLIES

SECRET = slack_req.DEFAULT_SIGNING_SECRET
TEAM = slack_req.TEAM_ID
GPUS = 8
CLIENTS = 20
USERS = 50
ADMIN = Actor("UADMIN", TEAM, is_workspace_admin=True)
TICKS = os.sysconf("SC_CLK_TCK")
#: Where the serve process writes cProfile stats (``GPUBOOK_BENCH_PROFILE``), to find the cost.
PROFILE = os.environ.get("GPUBOOK_BENCH_PROFILE")
#: The server counts as idle once it used no CPU over this long.
IDLE_PROBE = 0.3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def until_idle(pid: int) -> float:
    """Wait until the process stops using CPU; its CPU time then."""
    before = cpu_seconds(pid)
    while True:
        await asyncio.sleep(IDLE_PROBE)
        after = cpu_seconds(pid)
        if after == before:
            return after
        before = after


class Server:
    """``gpubook serve`` on a fresh SQLite file, pointed at the fake Slack Web API."""

    def __init__(self, fake: FakeSlackWebAPI, folder: Path) -> None:
        self.fake, self.database = fake, folder / "bench.db"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        settings = Settings(database_url=f"sqlite:///{self.database}")
        bot = await assemble(
            settings, token="xoxb-bench", signing_secret=SECRET, api_url=self.fake.base_url
        )
        for n in range(GPUS):
            await bot.service.add_gpu(ADMIN, f"a100-{n}", "80GB")
        await bot.close()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.fake.base_url,
            "PORT": str(self.port),
            "GPUBOOK_LOG_LEVEL": "WARNING",
        }
        env.pop("SLACK_APP_TOKEN", None)
        profile = ["-m", "cProfile", "-o", str(PROFILE)] if PROFILE else []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *profile, "-m", "bot", env=env, stderr=asyncio.subprocess.PIPE
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if self.process.returncode is not None:
                    _, err = await self.process.communicate()
                    raise RuntimeError(f"gpubook serve exited: {err.decode()[-2000:]}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("gpubook serve did not become healthy")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        _, err = await self.process.communicate()
        if self.process.returncode not in (0, -15):
            raise RuntimeError(f"gpubook serve failed: {err.decode()[-2000:]}")


class BenchSlack(FakeSlackWebAPI):
    """The fake Slack, telling the moment each named reply arrives.

    Without polling: on a 2-core box, clients polling the recorded calls in a loop would take
    the CPU the server is being measured on.
    """

    def __init__(self) -> None:
        super().__init__()
        self._arrivals: dict[str, asyncio.Future[float]] = {}

    def arrival(self, name: str) -> asyncio.Future[float]:
        """When the reply to the response_url named ``name`` arrived (``time.time()``)."""
        if name not in self._arrivals:
            self._arrivals[name] = asyncio.get_running_loop().create_future()
        return self._arrivals[name]

    async def response_url_response(
        self, target: ResponseTarget, body: dict[str, Any], request: web.Request
    ) -> web.StreamResponse:
        arrived = self.arrival(target.name)
        if not arrived.done():
            arrived.set_result(time.time())
        return await super().response_url_response(target, body, request)


class Replies:
    """Waits for a named reply to reach the fake Slack."""

    def __init__(self, fake: BenchSlack) -> None:
        self.fake = fake

    async def wait(self, name: str, within: float = 30) -> float:
        try:
            return await asyncio.wait_for(asyncio.shield(self.fake.arrival(name)), within)
        except TimeoutError:
            raise RuntimeError(f"no reply for {name} within {within}s") from None


def command_for(n: int, user: str, fake: FakeSlackWebAPI) -> slack_req.SignedRequest:
    """Booking ``n``: its own hour on GPU ``n % GPUS``, starting tomorrow (never conflicts)."""
    start = (system_clock() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    start += timedelta(hours=n // GPUS)
    when = start.strftime("%Y-%m-%d %H:%M")
    text = f"book a100-{n % GPUS} 1GB {when} for 1h bench-{n}"
    return slack_req.slash_command(text, user_id=user, response_url=fake.response_url(f"r{n}"))


async def client(
    session: aiohttp.ClientSession,
    server: Server,
    replies: Replies,
    numbers: Sequence[int],
    user_of: Callable[[int], str],
) -> tuple[list[float], list[float]]:
    """Send each command once the previous reply arrived; (ack latencies, reply latencies) in s.

    A reply is the message the ack carried or, when the answer came later than the ack, the
    one posted to the response_url."""
    acks, delivered = [], []
    for n in numbers:
        request = command_for(n, user_of(n), server.fake)
        sent = time.time()
        async with session.post(server.url, data=request.body, headers=request.headers) as resp:
            answer = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status} for booking {n}")
        acked = time.time()
        acks.append(acked - sent)
        if answer:
            server.fake.record_ack(f"r{n}", json.loads(answer))
            delivered.append(acked - sent)
        else:
            delivered.append(await replies.wait(f"r{n}") - sent)
    return acks, delivered


async def open_homes(session: aiohttp.ClientSession, server: Server, users: set[str]) -> None:
    """Each user opens their App Home (so changes from then on rebuild it); wait until shown."""
    for user in sorted(users):
        request = slack_req.event(slack_req.app_home_opened(user))
        async with session.post(server.url, data=request.body, headers=request.headers) as resp:
            await resp.read()
    await server.fake.wait_for("views.publish", count=len(users), timeout=120)


async def one_run(
    name: str,
    bookings: int,
    clients: int,
    user_of: Callable[[int], str],
    *,
    homes_open: bool = False,
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with BenchSlack() as fake:
            server = Server(fake, Path(tmp))
            await server.start()
            try:
                replies = Replies(fake)
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as session:
                    # Warm-up outside the measurement: imports, caches, first users.info.
                    await client(session, server, replies, [bookings + 10_000], user_of)
                    if homes_open:
                        await open_homes(session, server, {user_of(n) for n in range(bookings)})
                    cpu_before = await until_idle(server.pid)
                    published_before = len(fake.calls_to("views.publish"))
                    started = time.time()
                    shares = [range(bookings)[i::clients] for i in range(clients)]
                    results = await asyncio.gather(
                        *(client(session, server, replies, s, user_of) for s in shares)
                    )
                    elapsed = time.time() - started
                    cpu_after = await until_idle(server.pid)
                    rebuilt = len(fake.calls_to("views.publish")) - published_before
                booked = sum(1 for c in fake.calls_to(REPLIES) if "Booked" in str(c.params))
                in_ack = len(fake.calls_to(ACK))
            finally:
                await server.stop()
    acks = [a for r in results for a in r[0]]
    delivered = [d for r in results for d in r[1]]
    if booked != bookings + 1:
        raise RuntimeError(f"{name}: {booked} of {bookings + 1} bookings confirmed")
    return {
        "run": name,
        "bookings": bookings,
        "clients": clients,
        "per_second": round(bookings / elapsed, 1),
        "cpu_ms_per_booking": round((cpu_after - cpu_before) * 1000 / bookings, 2),
        "ack": percentiles_ms([int(a * 1e9) for a in acks]),
        "reply": percentiles_ms([int(d * 1e9) for d in delivered]),
        "last_reply_s": round(elapsed, 2),
        "answered_in_ack": in_ack,
        "homes_rebuilt": rebuilt,
    }


async def run(bookings: int) -> list[dict[str, Any]]:
    return [
        await one_run("sequential", bookings, 1, lambda n: f"U{n % USERS:03d}"),
        await one_run(
            "sequential, Homes open", bookings, 1, lambda n: f"U{n % USERS:03d}", homes_open=True
        ),
        await one_run("one user", bookings, 1, lambda n: "UONE"),
        await one_run("one user, Home open", bookings, 1, lambda n: "UONE", homes_open=True),
        await one_run("burst", bookings, CLIENTS, lambda n: f"U{n % USERS:03d}"),
    ]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(__doc__.splitlines()[0], argv)
    info = machine()
    print_machine(info)
    bookings = 40 if args.quick else 500
    results = asyncio.run(run(bookings))
    print(
        f"\n{bookings} bookings over HTTP to `gpubook serve` (SQLite), replies in the ack or later:"
    )
    print_table(
        (
            "run",
            "clients",
            "booked/s",
            "CPU ms/booking",
            "ack p99 ms",
            "reply p50 ms",
            "reply p99 ms",
            "last reply s",
            "in ack",
            "Homes rebuilt",
        ),
        [
            (
                r["run"],
                r["clients"],
                r["per_second"],
                r["cpu_ms_per_booking"],
                r["ack"]["p99_ms"],
                r["reply"]["p50_ms"],
                r["reply"]["p99_ms"],
                r["last_reply_s"],
                r["answered_in_ack"],
                r["homes_rebuilt"],
            )
            for r in results
        ],
    )
    if not args.quick:
        write_results("throughput_bench", {"runs": results, "machine": info}, args.out)
    return results


if __name__ == "__main__":
    main()
