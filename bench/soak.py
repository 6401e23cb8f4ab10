"""Soak: signed `/gpubook` requests at a steady rate, for minutes, against a running `gpubook serve`.

A real `gpubook serve` process (HTTP mode, its lifecycle sweeping as in production) on PostgreSQL
takes ``--rate`` signed slash commands per second for ``--duration`` seconds, sent open-loop (on
schedule, whether or not earlier ones were answered) over loopback, with the fake Slack Web API as
Slack. A seeded mix of commands: half bookings (1 GB on one of 8 GPUs, up to ~40 days ahead, so
the bookings table grows all along), the rest list, status, free and calendar.

It reports the ack latency (send → HTTP response, what Slack's 3 s is about) for the warm-up and
for the rest, and the server's resident memory (``VmRSS``) at start, after warm-up and at the end:
the target is RSS growth < 10 % from the end of warm-up to the end, and every acked request
answered. The machine's load average is printed beside the figures: they are only comparable on
an otherwise quiet machine.

Each memory sample also counts the replies still owed (acked, not yet answered): when the machine
is too loaded for the server to keep up, that backlog of work in flight, not anything kept,
is what the RSS grows with (and CPython keeps the peak: a partly used pymalloc arena is never
given back). So the RSS is taken once more after the last reply, when the backlog is gone.

    .venv/bin/python -m bench.soak                          # 20/s for 10 min on PostgreSQL
    .venv/bin/python -m bench.soak --duration 10            # a short smoke run
    .venv/bin/python -m bench.soak --database sqlite --quick

PostgreSQL comes from ``GPUBOOK_TEST_PG_URL``'s server: the database ``gpubook_soak`` there is
dropped and made anew (or pass ``--database-url`` for one of your own, which must be empty).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from bench.common import (
    RESULTS_DIR,
    machine,
    percentiles_ms,
    print_machine,
    print_table,
    write_results,
)
from bot.booking import Actor, BookingService
from storage.db import Database, normalise_url
from storage.migrate import upgrade
from tests.conftest import PG_URL
from tests.procs.serve import Replica, start_replica
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES

GPUS = 8
USERS = 200
SOAK_DATABASE = "gpubook_soak"
#: Target: resident memory grows less than this from the end of warm-up to the end.
RSS_GROWTH_LIMIT = 0.10
#: (weight, command template) of the request mix; ``{gpu}`` and ``{hours}`` are filled per request.
MIX = (
    (50, "book {gpu} 1GB in {hours}h for 1h soak"),
    (20, "list"),
    (15, "status"),
    (10, "free 8GB for 2h"),
    (5, "calendar {gpu} tomorrow"),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    parser.add_argument("--warmup", type=float, help="seconds excluded (default: a tenth, ≤ 60)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--database-url", help="an empty database of your own")
    parser.add_argument("--quick", action="store_true", help="3 s at 10/s: proves the script runs")
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rate = 3.0, 10.0
    if args.warmup is None:
        args.warmup = min(args.duration / 10, 60.0)
    return args


def rss_kib(pid: int) -> int:
    """The process's resident set size in KiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def fresh_postgres(database: str = SOAK_DATABASE) -> str:
    """``database`` (``gpubook_soak``) on the test server, dropped and made anew; its URL."""
    url = make_url(normalise_url(PG_URL))
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {database}")
    finally:
        await conn.close()
    return url.set(database=database).render_as_string(hide_password=False)


async def prepare(url: str) -> None:
    """Migrate and add the GPUs, as an admin would before opening the bot to users."""
    db = Database(url)
    try:
        await upgrade(db)
        service = BookingService(db)
        admin = Actor("UADMIN", slack_req.TEAM_ID, is_workspace_admin=True)
        for n in range(GPUS):
            await service.add_gpu(admin, f"gpu-{n}", "80GB")
    finally:
        await db.dispose()


@dataclass
class Run:
    """What the load loop saw: ack latencies by phase, failures, memory samples."""

    warmup_ns: list[int] = field(default_factory=list)
    steady_ns: list[int] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    failed: list[str] = field(default_factory=list)
    #: (seconds since the load began, RSS KiB, replies owed: acked but not yet answered)
    rss: list[tuple[float, int, int]] = field(default_factory=list)


def command_text(rng: random.Random) -> str:
    weights, templates = zip(*MIX, strict=True)
    [template] = rng.choices(templates, weights)
    return template.format(gpu=f"gpu-{rng.randrange(GPUS)}", hours=rng.randrange(1, 1000))


async def load(args: argparse.Namespace, replica: Replica, fake: FakeSlackWebAPI, run: Run) -> None:
    """Send ``rate`` requests per second for ``duration`` seconds, each on its own schedule."""
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    url = f"{replica.url}/slack/events"
    total = int(args.duration * args.rate)
    started = loop.time()
    pending: set[asyncio.Task[None]] = set()
    sample_every = max(1.0, min(10.0, args.duration / 20))
    next_sample = 0.0

    async def one(req: slack_req.SignedRequest, name: str, warm: bool) -> None:
        t = time.perf_counter_ns()
        try:
            async with http.post(url, data=req.body, headers=req.headers) as resp:
                answer = await resp.read()
                status = resp.status
        except aiohttp.ClientError as exc:
            run.failed.append(f"{type(exc).__name__}: {exc}")
            return
        elapsed = time.perf_counter_ns() - t
        if status != 200:
            run.failed.append(f"HTTP {status}")
            return
        run.acked += 1
        (run.warmup_ns if warm else run.steady_ns).append(elapsed)
        if answer:  # answered in the ack itself, not later through the response_url
            fake.record_ack(name, json.loads(answer))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(total):
            at = i / args.rate
            if at >= next_sample:
                sample(run, loop.time() - started, replica, fake)
                next_sample += sample_every
            await asyncio.sleep(max(0.0, started + at - loop.time()))
            req = slack_req.slash_command(
                command_text(rng),
                user_id=f"U{rng.randrange(USERS):04d}",
                response_url=fake.response_url(f"soak-{i}"),
            )
            task = asyncio.create_task(one(req, f"soak-{i}", at < args.warmup))
            pending.add(task)
            task.add_done_callback(pending.discard)
            run.sent += 1
        if pending:
            await asyncio.wait(pending)
    sample(run, loop.time() - started, replica, fake)


def sample(run: Run, at: float, replica: Replica, fake: FakeSlackWebAPI) -> None:
    owed = run.acked - len(fake.calls_to(REPLIES))
    run.rss.append((round(at, 1), rss_kib(replica.pid), owed))


def rss_after(run: Run, seconds: float) -> tuple[int, int]:
    """The first memory sample taken at or after ``seconds`` into the load: (RSS KiB, replies owed)."""
    return next((kib, owed) for at, kib, owed in run.rss if at >= seconds)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url:
            url = args.database_url
        elif args.database == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'soak.db'}"
        else:
            url = await fresh_postgres()
        await prepare(url)
        async with FakeSlackWebAPI() as fake:
            replica = await start_replica(
                {"DATABASE_URL": url, "SLACK_API_URL": fake.base_url, "GPUBOOK_CHANNEL": "CSOAK"}
            )
            try:
                rss_start = rss_kib(replica.pid)
                load_before = load_average()
                run = Run()
                await load(args, replica, fake, run)
                answered = await _answered(fake, run.acked)
                rss_drained = rss_kib(replica.pid)
                load_after = load_average()
            finally:
                await replica.stop()
    (warm, warm_owed), (half, _) = rss_after(run, args.warmup), rss_after(run, args.duration / 2)
    end, end_owed = run.rss[-1][1:]
    return {
        "database": make_url(normalise_url(url)).get_backend_name(),
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "warmup_s": args.warmup,
        "sent": run.sent,
        "acked": run.acked,
        "answered": answered,
        "failed": run.failed[:20],
        "ack_warmup": percentiles_ms(run.warmup_ns) if len(run.warmup_ns) > 1 else None,
        "ack_steady": percentiles_ms(run.steady_ns) if len(run.steady_ns) > 1 else None,
        "rss_kib": {
            "start": rss_start,
            "after_warmup": warm,
            "half_time": half,
            "end": end,
            "drained": rss_drained,
        },
        "owed": {"after_warmup": warm_owed, "end": end_owed},
        "rss_growth": round((end - warm) / warm, 4),
        # Once every reply is sent: what the process keeps, without the work it was behind on.
        "rss_growth_drained": round((rss_drained - warm) / warm, 4),
        # A leak keeps growing; caches filling (statements prepared per pooled connection) level off.
        "rss_growth_second_half": round((end - half) / half, 4),
        "rss_samples": run.rss,
        "load_average": {"before": load_before, "after": load_after},
    }


async def _answered(fake: FakeSlackWebAPI, acked: int, within: float = 60.0) -> int:
    """How many acked requests got their reply (waiting up to ``within`` s for stragglers)."""
    with contextlib.suppress(AssertionError):  # reported as fewer answered than acked
        await fake.wait_for(REPLIES, acked, timeout=within)
    return len(fake.calls_to(REPLIES))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    results = asyncio.run(soak(args))
    results["machine"] = info
    rss = results["rss_kib"]
    print(
        f"\nSoak: {results['rate_per_s']:g} signed /gpubook requests/s for "
        f"{results['duration_s']:g} s on {results['database']} (warm-up {results['warmup_s']:g} s);"
        f" load average {results['load_average']['before']} → {results['load_average']['after']}"
    )
    rows = [
        (phase, stats["n"], stats["p50_ms"], stats["p99_ms"])
        for phase, stats in (("warm-up", results["ack_warmup"]), ("after", results["ack_steady"]))
        if stats is not None
    ]
    print_table(("ack latency", "n", "p50 ms", "p99 ms"), rows)
    growth = results["rss_growth"]
    verdict = "ok" if growth < RSS_GROWTH_LIMIT else "OVER the 10 % target"
    print(
        f"RSS: {rss['start'] / 1024:.1f} MiB at start, {rss['after_warmup'] / 1024:.1f} after "
        f"warm-up, {rss['end'] / 1024:.1f} at the end: {growth:+.1%} after warm-up ({verdict}), "
        f"{results['rss_growth_second_half']:+.1%} over the second half"
    )
    owed = results["owed"]
    print(
        f"replies owed: {owed['after_warmup']} after warm-up, {owed['end']} at the end; "
        f"RSS once all were sent: {rss['drained'] / 1024:.1f} MiB "
        f"({results['rss_growth_drained']:+.1%} after warm-up)"
    )
    print(
        f"sent {results['sent']}, acked {results['acked']}, answered {results['answered']}, "
        f"failed {len(results['failed'])}"
    )
    if not args.quick:
        write_results("soak", results, args.out)
    return results


if __name__ == "__main__":
    main()
