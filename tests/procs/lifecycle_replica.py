"""One bot replica's lifecycle: sweeps (advance + flush) at a fixed list of frozen times.

``tests/test_lifecycle_replicas.py`` starts two of these on one PostgreSQL schema (or one on a
SQLite file) against one fake Slack Web API (acceptance scenario 16). Each opens its own
``Database``, ``Lifecycle`` and ``Notifier``, prints ``ready``, waits for a line on stdin (so the
replicas really overlap), sweeps at every ``--times`` instant in order and prints one JSON line
with what it did.

The lease is long (``--lease-minutes``): the replicas' frozen clocks run at different speeds, so
a short lease could look stale to a replica that is "later" while its holder is still posting.
Taking over a dead worker's stale lease is tested on its own in ``tests/test_notifier.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.booking import ServiceConfig
from bot.core.clock import FrozenClock
from bot.lifecycle.notifier import Notifier
from bot.lifecycle.sweep import Lifecycle
from handlers.blocks.notifications import render as render_notices
from storage.db import Database
from tests.conftest import pg_database


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--schema", help="PostgreSQL schema holding the tables")
    parser.add_argument("--base-url", required=True, help="the fake Slack Web API")
    parser.add_argument("--worker", required=True)
    parser.add_argument("--channel", required=True, help="default notification channel")
    parser.add_argument("--times", required=True, help="comma-separated ISO instants")
    parser.add_argument("--lease-minutes", type=int, default=24 * 60)
    return parser.parse_args()


async def main() -> None:
    args = _arguments()
    times = [datetime.fromisoformat(t) for t in args.times.split(",")]
    db = pg_database(args.url, args.schema) if args.schema else Database(args.url)
    clock = FrozenClock(times[0])
    client = AsyncWebClient(token="xoxb-test", base_url=args.base_url)
    lifecycle = Lifecycle(db, ServiceConfig(default_channel=args.channel), clock)
    notifier = Notifier(
        db,
        client,
        clock,
        render=render_notices,
        worker_id=args.worker,
        lease=timedelta(minutes=args.lease_minutes),
        default_channel=args.channel,
    )
    totals = {"started": 0, "ended": 0, "posts": 0, "sent": 0, "failed": 0}
    try:
        await db.ping()
        print("ready", flush=True)
        sys.stdin.readline()
        for now in times:
            clock.set(now)
            counts = await lifecycle.advance(now)
            stats = await notifier.flush(now)
            totals["started"] += counts.started
            totals["ended"] += counts.ended
            totals["posts"] += stats.posts
            totals["sent"] += stats.sent
            totals["failed"] += stats.failed
    finally:
        await db.dispose()
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
