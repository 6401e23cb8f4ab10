"""Host agents' reports at fleet scale: ingest latency, slash-command acks beside them, and
database growth (what each part measures and why: ``bench/README.md``).

A real ``gpubook serve`` (SQLite, or a PostgreSQL database) is fed by a simulated fleet:
``--hosts`` (500) of ``--gpus`` cards (8), each host reporting every ``--interval`` s (15),
phases spread evenly; every card a bound GPU, so each sweep reconciles all of them.

- **ingest**: send → answer per report, the first of each host apart; target p99 < 50 ms. Before
  the fleet starts, 200 reports one by one: latency *alone* and the serve's CPU per report. The
  serve is told an interval 4 × the fleet's, so holding the fleet back for the quiet acks makes
  no host silent (and hundreds of admin notices) mid-measure.
- **acks**: waves of signed ``book`` and ``list`` (``bench/ack_latency.py``'s pieces) with the
  fleet silent, then as many during it, then silent again; target: unchanged within noise, the
  noise being how far the two silent phases differ. Not ``status``: over
  thousands of cards it measures status (``bench/scale_bench.py`` does).
- **client lag**: how late this process's event loop wakes a 10 ms sleep while the fleet runs;
  the bodies are built before each phase, so what the client does meanwhile is send. This
  process's objects are frozen out of the garbage collector before the phases (``gc.freeze``):
  its full collections, rescanning the setup's objects, paused it for up to 220 ms, and every
  report in flight then counted the pause as the server's latency. The longest collection
  while the fleet runs is reported (``client GC max``).
- **growth**: bytes per sample and per hourly row (table and indexes) × what a day adds.

    .venv/bin/python -m bench.agent_bench [--quick] [--hosts 500] [--seconds 60] [--backends sqlite]
        [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, insert, select, text

from bench import ack_latency
from bench.common import (
    backends_and_machine,
    parse_args,
    percentiles_ms,
    print_table,
    table_bytes,
    write_results,
)
from bench.soak import fresh_postgres
from bench.throughput_bench import cpu_seconds, until_idle
from bot.booking import Actor, BookingService
from bot.lifecycle.usage_rollup import roll_up
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Gpu, UsageHour, UsageSample
from tests.procs.serve import Replica, start_replica
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req

ADMIN = Actor("UADMIN", slack_req.TEAM_ID, is_workspace_admin=True)
CARD_MIB = 80 * 1024
LOGINS = [f"user{n:02d}" for n in range(40)]
#: The commands whose acks are compared (see the module docstring for why not ``status``).
ACK_COMMANDS = {k: v for k, v in ack_latency.COMMANDS.items() if k != "status"}
PG_DATABASE = "gpubook_agent_bench"
#: Reports sent one by one at the end, for the cost of one without load.
ONE_BY_ONE = 200
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
#: The ack phases, as the results and the table name them.
ACK_PHASES = {"quiet": "quiet", "loaded": "loaded", "quiet_again": "again"}
#: The client's event-loop probe sleeps this long (s) and records how late it wakes.
LAG_PROBE = 0.01
#: How long a wave's replies may take under load before the run is called failed.
SETTLE_SECONDS = 180
#: What the warm-up wrote, analyzed after it on PostgreSQL (see :func:`vacuum_analyze`).
TO_ANALYZE = ("gpus", "agent_devices", "agent_hosts", "agent_tokens", "usage_samples", "bookings")


@dataclass(frozen=True)
class Fleet:
    hosts: int
    gpus: int
    interval: int
    seconds: float
    concurrency: int
    waves: int

    @property
    def cards(self) -> int:
        return self.hosts * self.gpus


QUICK = Fleet(hosts=4, gpus=2, interval=1, seconds=3, concurrency=2, waves=2)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--gpus", type=int, default=8, help="cards per host")
    parser.add_argument("--interval", type=int, default=15, help="seconds between reports")
    parser.add_argument("--seconds", type=float, default=60, help="length of the loaded phase")
    parser.add_argument("--concurrency", type=int, default=10, help="commands per ack wave")
    parser.add_argument("--waves", type=int, default=10, help="ack waves per command and phase")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the serve on the first core, this client on the others (see pin_apart)",
    )


def host_name(host: int) -> str:
    return f"host-{host:03d}"


def card_uuid(host: int, index: int) -> str:
    return f"GPU-bench{host:05d}-{index:02d}"


def report(host: int, fleet: Fleet, rng: random.Random) -> bytes:
    """One report of ``host``, in the contract's JSON."""
    devices = []
    for index in range(fleet.gpus):
        processes = [
            {"pid": rng.randrange(1000, 99999), "user": rng.choice(LOGINS), "used_mib": mib}
            for mib in (rng.randrange(256, 20_000) for _ in range(rng.randrange(3)))
        ]
        devices.append(
            {
                "uuid": card_uuid(host, index),
                "index": index,
                "name": "NVIDIA A100-SXM4-80GB",
                "total_mib": CARD_MIB,
                "used_mib": sum(p["used_mib"] for p in processes),
                "processes": processes,
            }
        )
    sent_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return json.dumps({"host": host_name(host), "sent_at": sent_at, "devices": devices}).encode()


async def prepare(url: str, fleet: Fleet) -> dict[int, str]:
    """Migrate; add the ack bench's GPUs and one bound GPU per card; a token per host."""
    db = Database(url)
    try:
        await upgrade(db)
        service = BookingService(db)
        for n in range(ack_latency.GPUS):
            await service.add_gpu(ADMIN, f"a100-{n}", "80GB")
        now = datetime.now(UTC)
        rows = [
            {
                "team_id": ADMIN.team_id,
                "name": f"h{host:03d}-{index}",
                "capacity_mib": CARD_MIB,
                "created_at": now,
                "updated_at": now,
                "device_uuid": card_uuid(host, index),
            }
            for host in range(fleet.hosts)
            for index in range(fleet.gpus)
        ]
        async with db.write() as session:
            await session.execute(insert(Gpu), rows)
        tokens = {}
        for host in range(fleet.hosts):
            _, tokens[host] = await service.create_agent_token(ADMIN, host_name(host))
        return tokens
    finally:
        await db.dispose()


async def vacuum_analyze(url: str) -> None:
    """On PostgreSQL, ``VACUUM ANALYZE`` the tables the warm-up filled, as autovacuum would have
    by then in a deployment (the test server runs with it off): never analyzed, the planner read
    each report's cards through every GPU of the workspace (2 ms a statement, not 0.2)."""
    db = Database(url)
    try:
        if db.backend != "postgresql":
            return
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in TO_ANALYZE:
                await conn.execute(text(f"VACUUM ANALYZE {table}"))
    finally:
        await db.dispose()


@dataclass
class Ingest:
    """Client-side latencies of the reports, in ns, the answers' statuses, the hosts heard."""

    first_ns: list[int] = field(default_factory=list)
    steady_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seen: set[int] = field(default_factory=set)

    @property
    def stored(self) -> int:
        """Reports answered 200: each was stored in its own transaction before the answer."""
        return self.statuses[200]


async def fleet_load(
    http: aiohttp.ClientSession,
    url: str,
    tokens: dict[int, str],
    fleet: Fleet,
    until: float,
    ingest: Ingest,
    rng: random.Random,
) -> None:
    """Every host reports every interval, phases spread evenly, until the loop time ``until``
    (moved on by however long building the bodies took)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Bodies are built before the phase, so the client's own work while it runs is sending.
    rounds = int((until - start) // fleet.interval) + 1
    bodies = {h: [report(h, fleet, rng) for _ in range(rounds)] for h in range(fleet.hosts)}
    built = loop.time()
    start, until = built, until + built - start

    async def host(h: int) -> None:
        due = start + h * fleet.interval / fleet.hosts
        for body in bodies[h]:
            if due >= until:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            status, took = await post_report(http, url, tokens[h], body)
            (ingest.steady_ns if h in ingest.seen else ingest.first_ns).append(took)
            ingest.seen.add(h)
            ingest.statuses[status] += 1
            due += fleet.interval

    await asyncio.gather(*(host(h) for h in range(fleet.hosts)))


async def loop_lag(until: float, lags_ns: list[int]) -> None:
    """How late this process's event loop wakes a 10 ms sleep, until the loop time ``until``:
    the fleet and the commands are sent from here, so a late loop would show as server latency
    that is the client's own."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        asked = loop.time()
        await asyncio.sleep(LAG_PROBE)
        lags_ns.append(max(0, int((loop.time() - asked - LAG_PROBE) * 1e9)))


async def post_report(
    http: aiohttp.ClientSession, url: str, token: str, body: bytes
) -> tuple[int, int]:
    """Send one report; its answer's status and the ns from sending to the answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent = time.perf_counter_ns()
    async with http.post(f"{url}/agent/report", data=body, headers=headers) as resp:
        await resp.read()
    return resp.status, time.perf_counter_ns() - sent


async def one_by_one(
    http: aiohttp.ClientSession,
    replica: Replica,
    tokens: dict[int, str],
    fleet: Fleet,
    rng: random.Random,
) -> tuple[list[int], float]:
    """Up to :data:`ONE_BY_ONE` reports, each sent once the previous was answered, nothing else
    running: their latencies (ns) and the server's CPU ms per report, its cost without load.
    The CPU time is read as soon as the last is answered, not once the server is idle again,
    so that a sweep starting meanwhile is not charged to the reports."""
    hosts = range(min(fleet.hosts, ONE_BY_ONE))
    cpu_before = await until_idle(replica.pid)
    latencies = []
    for h in hosts:
        status, took = await post_report(http, replica.url, tokens[h], report(h, fleet, rng))
        if status != 200:
            raise RuntimeError(f"report refused: HTTP {status}")
        latencies.append(took)
    return latencies, (cpu_seconds(replica.pid) - cpu_before) * 1000 / len(hosts)


async def ack_waves(
    http: aiohttp.ClientSession,
    url: str,
    fake: FakeSlackWebAPI,
    fleet: Fleet,
    answered: list[int],
    spread_over: float = 0.0,
) -> dict[str, list[int]]:
    """``fleet.waves`` waves of each command, each wave's replies settled before the next; with
    ``spread_over`` seconds, the waves start evenly over that long."""
    loop = asyncio.get_running_loop()
    start, total = loop.time(), fleet.waves * len(ACK_COMMANDS)
    samples: dict[str, list[int]] = {}
    for n in range(total):
        await asyncio.sleep(max(0.0, start + n * spread_over / total - loop.time()))
        command, text_ = list(ACK_COMMANDS.items())[n % len(ACK_COMMANDS)]
        for ns, in_ack in await ack_latency.wave(http, url, fake, text_, fleet.concurrency):
            # A wave's first command is answered in its ack (its answer's latency): apart.
            samples.setdefault(command + (ack_latency.IN_ACK if in_ack else ""), []).append(ns)
        answered[0] += fleet.concurrency
        await ack_latency.settle(fake, answered[0], SETTLE_SECONDS)
    return samples


class GcPauses:
    """The longest garbage collection of this process while recording (ms)."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = (time.perf_counter() - self._started) * 1000
            self.longest_ms = max(self.longest_ms, round(took, 1))


def pin_apart(serve_pid: int) -> None:
    """``--pin``: every thread of the serve on the first core, this process on the others, as a
    real fleet's agents run on other machines (PostgreSQL's processes stay where the system puts
    them). Without it the fleet's client, the serve and the database share every core."""
    cores = os.cpu_count() or 1
    if cores < 2:
        raise SystemExit("--pin needs two cores or more")
    for task in Path(f"/proc/{serve_pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {0})
    os.sched_setaffinity(0, set(range(1, cores)))


async def measure(url: str, fleet: Fleet, seed: int, pin: bool = False) -> dict[str, Any]:
    """Prepare ``url``, start `gpubook serve` on it, warm up, ack quietly, then under load."""
    tokens = await prepare(url, fleet)
    gc.collect()
    gc.freeze()  # see the module docstring (client lag)
    try:
        return await _measure(url, fleet, seed, tokens, pin)
    finally:
        gc.unfreeze()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


async def _measure(
    url: str, fleet: Fleet, seed: int, tokens: dict[int, str], pin: bool
) -> dict[str, Any]:
    rng = random.Random(seed)
    ingest, answered, lags = Ingest(), [0], []
    async with FakeSlackWebAPI() as fake:
        settings = {
            "DATABASE_URL": url,
            "SLACK_API_URL": fake.base_url,
            # Silence is 3 intervals: told 4 x the fleet's, the serve does not call hosts silent
            # (and tell admins about hundreds) while the fleet is held back for the quiet acks.
            "GPUBOOK_AGENT_INTERVAL": f"{4 * fleet.interval}s",
            "GPUBOOK_LOG_LEVEL": "WARNING",
        }
        replica = await start_replica(settings)
        if pin:
            pin_apart(replica.pid)
        slack = f"{replica.url}/slack/events"
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                loop = asyncio.get_running_loop()
                # Warm-up: every host's first report (its cards' rows), a wave per command.
                warm_up = loop.time() + fleet.interval  # every host once
                await fleet_load(http, replica.url, tokens, fleet, warm_up, ingest, rng)
                for command in ACK_COMMANDS.values():
                    await ack_latency.wave(http, slack, fake, command, fleet.concurrency)
                    answered[0] += fleet.concurrency
                await ack_latency.settle(fake, answered[0])
                await vacuum_analyze(url)
                alone, cpu_ms = await one_by_one(http, replica, tokens, fleet, rng)
                quiet = await ack_waves(http, slack, fake, fleet, answered)
                until = loop.time() + fleet.seconds
                load = fleet_load(http, replica.url, tokens, fleet, until, ingest, rng)
                acks = ack_waves(http, slack, fake, fleet, answered, fleet.seconds * 0.9)
                with GcPauses() as pauses:
                    _, loaded, _ = await asyncio.gather(load, acks, loop_lag(until, lags))
                again = await ack_waves(http, slack, fake, fleet, answered)
        finally:
            await replica.stop()
    phases = dict(zip(ACK_PHASES, (quiet, loaded, again), strict=True))
    return {
        "reports": sum(ingest.statuses.values()),
        "statuses": {str(k): v for k, v in sorted(ingest.statuses.items())},
        "first_report": percentiles_ms(ingest.first_ns),
        "ingest": percentiles_ms(ingest.steady_ns),
        "one_by_one": percentiles_ms(alone),
        "cpu_ms_per_report": round(cpu_ms, 2),
        "client_loop_lag": percentiles_ms(lags),
        "client_gc_max_ms": pauses.longest_ms,
        "acks": {
            kind: {phase: percentiles_ms(found[kind]) for phase, found in phases.items()}
            for kind in sorted(quiet.keys() & loaded.keys() & again.keys())
            if min(len(found[kind]) for found in phases.values()) > 1  # percentiles need two
        },
    }


async def growth(url: str, fleet: Fleet) -> dict[str, Any]:
    """Bytes per sample and per hourly row, and what a day of the fleet adds of each."""
    db = Database(url)
    try:
        async with db.read() as session:
            samples = int(await session.scalar(select(func.count()).select_from(UsageSample)))
            last = await session.scalar(select(func.max(UsageSample.at)))
        sample_bytes = await table_bytes(db, UsageSample.__tablename__)
        assert last is not None
        # Past the retention: every sample becomes hourly rows, as the sweep does after 7 days.
        await roll_up(db, last + timedelta(hours=2), timedelta(hours=1))
        async with db.read() as session:
            hours = int(await session.scalar(select(func.count()).select_from(UsageHour)))
        hour_bytes = await table_bytes(db, UsageHour.__tablename__)
    finally:
        await db.dispose()
    per_sample, per_hour = sample_bytes / samples, hour_bytes / max(hours, 1)
    samples_per_day = fleet.cards * int(timedelta(days=1).total_seconds()) // fleet.interval
    return {
        "samples_measured": samples,
        "bytes_per_sample": round(per_sample, 1),
        "samples_per_day": samples_per_day,
        "sample_mb_per_day": round(samples_per_day * per_sample / 1e6, 1),
        "hourly_rows_measured": hours,
        "bytes_per_hourly_row": round(per_hour, 1),
        "hourly_rows_per_day": fleet.cards * 24,
        "hourly_mb_per_day": round(fleet.cards * 24 * per_hour / 1e6, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet = (
        QUICK
        if args.quick
        else Fleet(args.hosts, args.gpus, args.interval, args.seconds, args.concurrency, args.waves)
    )
    backends, info = await backends_and_machine(args.backends)
    results: dict[str, Any] = {
        "fleet": fleet.__dict__,
        "pinned": args.pin,
        "machine": info,
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'agent_bench.db'}"
            else:
                url = await fresh_postgres(PG_DATABASE)
            found = await measure(url, fleet, args.seed, args.pin)
            found["growth"] = await growth(url, fleet)
            results["backends"][backend] = found
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    results = asyncio.run(run(args))
    fleet = results["fleet"]
    print(
        f"\n{fleet['hosts']} hosts x {fleet['gpus']} cards, a report per host every "
        f"{fleet['interval']} s, {fleet['seconds']} s loaded"
        + (", the serve on core 0 and this client on the others:" if results["pinned"] else ":")
    )
    columns = {  # header: (part of the results, key)
        "reports": (None, "reports"),
        "first p99 ms": ("first_report", "p99_ms"),
        "ingest p50 ms": ("ingest", "p50_ms"),
        "ingest p99 ms": ("ingest", "p99_ms"),
        "alone p50": ("one_by_one", "p50_ms"),
        "alone p99": ("one_by_one", "p99_ms"),
        "CPU ms/report": (None, "cpu_ms_per_report"),
        "client lag p99": ("client_loop_lag", "p99_ms"),
        "client GC max": (None, "client_gc_max_ms"),
        "B/sample": ("growth", "bytes_per_sample"),
        "samples MB/day": ("growth", "sample_mb_per_day"),
        "hourly MB/day": ("growth", "hourly_mb_per_day"),
    }
    print_table(
        ("backend", *columns),
        [
            (backend, *((found[part] if part else found)[key] for part, key in columns.values()))
            for backend, found in results["backends"].items()
        ],
    )
    print(
        f"\nAck latency, {fleet['concurrency']} concurrent commands: fleet quiet, reporting, "
        "quiet again (the two quiet phases differ by the noise):"
    )
    print_table(
        ("backend/command", "n")
        + tuple(f"{label} {key[:3]}" for label in ACK_PHASES.values() for key in PERCENTILES),
        [
            (f"{backend}/{command}", phases["quiet"]["n"])
            + tuple(phases[phase][key] for phase in ACK_PHASES for key in PERCENTILES)
            for backend, found in results["backends"].items()
            for command, phases in found["acks"].items()
        ],
    )
    if not args.quick:
        write_results("agent_bench", results, args.out)
    return results


if __name__ == "__main__":
    main()
