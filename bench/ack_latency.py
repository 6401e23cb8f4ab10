"""Ack latency of `/gpubook` over the real HTTP endpoint, beside a bare Bolt app that only acks.

Slack gives an app 3 s to ack. gpubook answers a slash command *in* its ack when no other
command is being answered and the answer is ready within ``Deps.answer_in_ack_within`` (1 s);
else it acks empty at once and answers through the response_url. So in a wave the first
command's ack is its answer (reported apart: "answered in ack", never more than that bound plus
Bolt's own), the others' acks are empty; the bare app's are Bolt's floor. Both apps run in this process, behind the same
aiohttp endpoint (``bot.runtime.runner.start_http``), and are measured in alternating waves of
``--concurrency`` simultaneous signed requests, so they share the machine's conditions.
Latency is from sending a signed request to receiving the HTTP response (the ack); signing
happens before the timer starts.

Target: empty acks p99 < 100 ms at 20 concurrent, and within 2x the bare app.

    .venv/bin/python -m bench.ack_latency [--quick] [--concurrency 20] [--waves 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import (
    RESULTS_DIR,
    T0,
    machine,
    percentiles_ms,
    print_machine,
    print_table,
    write_results,
)
from bot.booking import Actor
from bot.core.clock import FrozenClock
from bot.runtime.assembly import Assembly, assemble
from bot.runtime.config import Settings
from bot.runtime.runner import freeze_startup_objects, start_http
from tests.slackfake import FakeSlackWebAPI
from tests.slackfake import requests as slack_req
from tests.slackfake.webapi import REPLIES

SECRET = slack_req.DEFAULT_SIGNING_SECRET
#: Suffix of the samples of commands whose ack carried their answer (the first of a wave: the
#: others arrive while it is being answered, so they ack at once and answer later).
IN_ACK = " in ack"
TEAM = slack_req.TEAM_ID
COMMANDS = {
    "status": "status",
    "book": "book a100-{n} 1GB 10:00 for 1h bench",
    "list": "list",
}
GPUS = 8


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the script runs")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--waves", type=int, default=15, help="waves per command and app")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def bare_app(fake: FakeSlackWebAPI) -> AsyncApp:
    """The floor: Bolt's own cost of verifying, parsing and acking a slash command."""
    client = AsyncWebClient(token="xoxb-bench", base_url=fake.base_url)
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/gpubook")
    async def ack_only(ack: Any) -> None:
        await ack()

    return app


async def _gpubook(fake: FakeSlackWebAPI, database: Path) -> Assembly:
    """The bot as `gpubook serve` assembles it, over a fresh SQLite file with GPUS GPUs."""
    settings = Settings(database_url=f"sqlite:///{database}", admins=frozenset({"UADMIN"}))
    bot = await assemble(
        settings,
        clock=FrozenClock(T0),
        token="xoxb-bench",
        signing_secret=SECRET,
        api_url=fake.base_url,
    )
    for n in range(GPUS):
        await bot.service.add_gpu(Actor("UADMIN", TEAM), f"a100-{n}", "80GB")
    return bot


async def wave(
    session: aiohttp.ClientSession, url: str, fake: FakeSlackWebAPI, text: str, size: int
) -> list[tuple[int, bool]]:
    """``size`` simultaneous signed commands from distinct users; ack latencies in ns, each
    with whether the ack carried the answer."""
    requests = [
        slack_req.slash_command(
            text.format(n=i % GPUS), user_id=f"U{i:03d}", response_url=fake.response_url()
        )
        for i in range(size)
    ]

    async def one(req: slack_req.SignedRequest) -> tuple[int, bool]:
        started = time.perf_counter_ns()
        async with session.post(url, data=req.body, headers=req.headers) as resp:
            answer = await resp.read()
            assert resp.status == 200, resp.status
        elapsed = time.perf_counter_ns() - started
        if answer:  # the answer came in the ack: it is owed no more
            fake.record_ack(None, json.loads(answer))
        return elapsed, bool(answer)

    return list(await asyncio.gather(*(one(r) for r in requests)))


async def settle(fake: FakeSlackWebAPI, expected: int, within: float = 30) -> None:
    """Let every listener finish (its answer, in the ack or posted to the response_url, and what
    follows it) so waves do not pile up unboundedly."""
    await fake.wait_for(REPLIES, count=expected, timeout=within)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    concurrency = 4 if args.quick else args.concurrency
    waves = 2 if args.quick else args.waves
    samples: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlackWebAPI() as fake:
            gpubook = await _gpubook(fake, Path(tmp) / "bench.db")
            runners = {
                "gpubook": await start_http(gpubook.app, {}, "127.0.0.1", 0),
                "bare": await start_http(bare_app(fake), {}, "127.0.0.1", 0),
            }
            urls = {
                name: f"http://127.0.0.1:{r.addresses[0][1]}/slack/events"
                for name, r in runners.items()
            }
            freeze_startup_objects()  # as `gpubook serve` does once it has started
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                # Warm-up: auth.test, users.info for every user, SQLAlchemy's statement cache.
                answered = 0  # the bare app answers nothing
                for text in COMMANDS.values():
                    await wave(session, urls["gpubook"], fake, text, concurrency)
                    await wave(session, urls["bare"], fake, text, concurrency)
                    answered += concurrency
                await settle(fake, answered)
                for number in range(waves):
                    for command, text in COMMANDS.items():
                        # Alternate which app goes first; gpubook's post-ack work is settled
                        # before the bare app's wave, so it only weighs on gpubook's own acks.
                        order = ("gpubook", "bare") if number % 2 == 0 else ("bare", "gpubook")
                        for app in order:
                            for ns, in_ack in await wave(
                                session, urls[app], fake, text, concurrency
                            ):
                                key = f"{app}/{command}" + (IN_ACK if in_ack else "")
                                samples.setdefault(key, []).append(ns)
                            if app == "gpubook":
                                answered += concurrency
                                await settle(fake, answered)
            for runner in runners.values():
                await runner.cleanup()
            await gpubook.close()
    results = {key: percentiles_ms(ns) for key, ns in samples.items()}
    return {"concurrency": concurrency, "waves": waves, "latency": results}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    info = machine()
    print_machine(info)
    results = asyncio.run(run(args))
    latency = results["latency"]
    print(f"\nAck latency, {results['concurrency']} concurrent signed /gpubook commands:")
    rows = []
    for command in COMMANDS:
        ours, bare = latency[f"gpubook/{command}"], latency[f"bare/{command}"]
        answers = latency.get(f"gpubook/{command}{IN_ACK}", {"n": 0, "p50_ms": "-", "p99_ms": "-"})
        rows.append(
            (
                command,
                ours["n"],
                ours["p50_ms"],
                ours["p99_ms"],
                bare["p50_ms"],
                bare["p99_ms"],
                round(ours["p99_ms"] / bare["p99_ms"], 2),
                answers["n"],
                answers["p50_ms"],
                answers["p99_ms"],
            )
        )
    print_table(
        (
            "command",
            "acks",
            "p50 ms",
            "p99 ms",
            "bare p50 ms",
            "bare p99 ms",
            "p99 x",
            "answered in ack",
            "p50 ms",
            "p99 ms",
        ),
        rows,
    )
    results["machine"] = info
    if not args.quick:
        write_results("ack_latency", results, args.out)
    return results


if __name__ == "__main__":
    main()
