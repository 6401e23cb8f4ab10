"""One of several OS processes booking the same GPU window at once (acceptance scenario 11).

``tests/test_concurrency.py`` starts a few of these on one database. Each opens its own
``Database`` and ``BookingService``, prints ``ready``, waits for a line on stdin (the start
barrier, so the processes really overlap), fires ``--count`` concurrent bookings and prints one
JSON line: how many were booked, how many were refused for capacity, and anything else that went
wrong (which the test expects to be nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

from bot.booking import Actor, BookingService
from bot.core.clock import FrozenClock
from bot.core.errors import CapacityError
from storage.db import Database
from tests.conftest import pg_database


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--schema", help="PostgreSQL schema holding the tables")
    parser.add_argument("--name", required=True, help="tells this process's users apart")
    parser.add_argument("--gpu", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--memory", required=True)
    parser.add_argument("--start", type=datetime.fromisoformat, required=True)
    parser.add_argument("--end", type=datetime.fromisoformat, required=True)
    parser.add_argument("--now", type=datetime.fromisoformat, required=True)
    return parser.parse_args()


async def _book(service: BookingService, args: argparse.Namespace, index: int) -> str:
    try:
        await service.create(
            Actor(f"U{args.name}-{index}"),
            gpu=args.gpu,
            memory=args.memory,
            start=args.start,
            end=args.end,
            task=f"{args.name} #{index}",
        )
    except CapacityError:
        return "refused"
    except Exception as exc:  # reported to the test, which fails on any of these
        return f"{type(exc).__name__}: {exc}"
    return "booked"


async def main() -> None:
    args = _arguments()
    db = pg_database(args.url, args.schema) if args.schema else Database(args.url)
    service = BookingService(db, clock=FrozenClock(args.now))
    try:
        await db.ping()  # connect before the barrier, so the bookings start together
        print("ready", flush=True)
        sys.stdin.readline()
        outcomes = await asyncio.gather(*(_book(service, args, i) for i in range(args.count)))
    finally:
        await db.dispose()
    others = [o for o in outcomes if o not in ("booked", "refused")]
    result = {
        "booked": outcomes.count("booked"),
        "refused": outcomes.count("refused"),
        "errors": others,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
