"""How long flexible requests wait with the queue, against fixed placement at the time of asking.

The same seeded trace as ``bench.utilisation_bench`` (four GPUs, Poisson arrivals), with a share
of the requests marked *flexible*: "this much memory for this long, as soon as possible from my
start, on any GPU big enough". Fixed requests book their own GPU and window or are refused, as
there. Each request is made when asked (half of them up to two days ahead of their start); a
share of the bookings is released early, at a seeded point of their window, and a share of those
made ahead is cancelled before it starts — the changes that free memory in a real team.

Two replays of the same events, in time order: **fixed placement** puts each flexible request at
its earliest fit when it is made and never moves it; **with the queue** places it as the service
does (:func:`bot.core.queue.place`: sooner where queued flexible bookings in the way can be
shifted to another card at no later start) and, after every release and cancel, re-places the
waiting flexible bookings earlier with :func:`bot.core.queue.advance` — the service's own
re-placement, by the same rule. Reported: mean and p95 wait of the
flexible requests (start − earliest wanted), GB·h served (as actually held), the share of
releases and cancels that moved someone up, and over-bookings — decided by an independent
instant-by-instant oracle, and required to be 0; then the mean waits over several seeds, for the
trace as measured and as first replayed (every request asked at its start, no cancels). Target:
mean wait down ≥ 30 % with the queue.

Run: ``.venv/bin/python -m bench.queue_bench [--quick] [--seeds N]`` (pure Python, no database).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bench.common import GIB, machine, parse_args, print_machine, print_table, write_results
from bench.utilisation_bench import GPUS_GIB, Request, make_trace, never_exceeds
from bot.core import capacity, queue

#: Share of the requests that are flexible, and of the bookings released early.
FLEXIBLE_SHARE = 0.4
RELEASE_SHARE = 0.4
#: Share of the bookings made ahead that are cancelled before they start (at a uniform instant
#: between asking and the start): 5 % of all bookings, as ``bench.scale_bench`` assumes.
CANCEL_SHARE = 0.1
#: How far ahead a flexible request's earliest fit is searched (the service's search horizon).
HORIZON = timedelta(days=30)
PER_HOUR = 6.0


@dataclass
class Held:
    placed: queue.Placed
    flexible: bool
    wanted: datetime
    #: The fraction of its window after which it is released early (``None``: runs to its end).
    release_at: float | None
    released: bool = False


#: Event kinds, in the order they are handled at the same instant: memory freed first.
RELEASE, CANCEL, ARRIVAL = 0, 1, 2


def replay(
    trace: Sequence[Request],
    rng: random.Random,
    *,
    use_queue: bool,
    asked_at_start: bool = False,
    cancel_share: float = CANCEL_SHARE,
) -> dict[str, Any]:
    """Replay ``trace`` (requests made when asked) and the early releases and cancels it
    implies, in time order."""
    capacities = {i: size * GIB for i, size in enumerate(GPUS_GIB)}
    held: dict[int, Held] = {}
    events: list[tuple[datetime, int, int, int]] = []  # (time, kind, id, version)
    versions: dict[int, int] = {}
    for index, request in enumerate(trace):
        asked = request.start if asked_at_start else request.asked
        heapq.heappush(events, (asked, ARRIVAL, index, 0))
    flexible = [rng.random() < FLEXIBLE_SHARE for _ in trace]
    releases = [rng.uniform(0.1, 0.9) if rng.random() < RELEASE_SHARE else None for _ in trace]
    for index, request in enumerate(trace):
        asked = request.start if asked_at_start else request.asked
        if rng.random() < cancel_share and asked < request.start:
            at = asked + (request.start - asked) * rng.random()
            heapq.heappush(events, (at, CANCEL, index, 0))
    counts = {"releases": 0, "cancels": 0, "frees_moving_someone": 0, "refused": 0, "shifted": 0}

    def schedule(item: Held) -> None:
        if item.release_at is None:
            return
        p = item.placed
        versions[p.id] = versions.get(p.id, 0) + 1
        at = p.start + (p.end - p.start) * item.release_at
        heapq.heappush(events, (at, RELEASE, p.id, versions[p.id]))

    def apply(moves: Sequence[queue.Move]) -> None:
        for move in moves:
            moved = held[move.id]
            moved.placed = replace(moved.placed, card=move.card, start=move.start, end=move.end)
            schedule(moved)

    while events:
        now, kind, index, version = heapq.heappop(events)
        if kind == ARRIVAL:
            request = trace[index]
            placing = request, index, flexible[index], releases[index]
            found = _place(*placing, held, capacities, now, use_queue)
            if found is None:
                counts["refused"] += 1
                continue
            item, shifted = found
            held[index] = item
            schedule(item)
            counts["shifted"] += len(shifted)
            apply(shifted)
            continue
        item = held.get(index)
        if item is None or item.released or item.placed.end <= now:
            continue  # refused when asked, or over
        if kind == CANCEL and item.placed.start > now:
            del held[index]
            counts["cancels"] += 1
        elif kind == CANCEL or version == versions[index]:
            # A cancel of one already started (moved up by the queue) ends it: a release.
            item.released = True
            item.placed = replace(item.placed, end=now)
            counts["releases"] += 1
        else:
            continue  # the release of a window it has since left
        if not use_queue:
            continue
        live = [h.placed for h in held.values() if h.placed.end > now]
        waiting = [
            queue.Waiting(h.placed, tuple(_cards(h.placed.mib)), h.wanted)
            for i, h in sorted(held.items())
            if h.flexible and h.placed.start > now
        ]
        moves = queue.advance(capacities, live, waiting, {}, now)
        counts["frees_moving_someone"] += bool(moves)
        apply(moves)
    return _figures(held, capacities, counts)


def _cards(mib: int) -> list[int]:
    return [i for i, size in enumerate(GPUS_GIB) if size * GIB >= mib]


def _place(
    request: Request,
    index: int,
    is_flexible: bool,
    release_at: float | None,
    held: dict[int, Held],
    capacities: dict[int, int],
    now: datetime,
    use_queue: bool,
) -> tuple[Held, Sequence[queue.Move]] | None:
    """Place ``request`` as asked (fixed) or where it starts soonest (flexible), with the moves
    of the waiting flexible bookings it shifts aside — with the queue only: fixed placement never
    moves a booking once placed."""
    duration = request.end - request.start
    live = [h.placed for h in held.values() if h.placed.end > now]
    if not is_flexible:
        spans = [p.span for p in live if p.card == request.gpu]
        if not capacity.fits(
            spans, capacities[request.gpu], request.mib, request.start, request.end
        ):
            return None
        placed = queue.Placed(index, request.gpu, "u", request.start, request.end, request.mib)
        return Held(placed, False, request.start, release_at), ()
    waiting = [
        queue.Waiting(h.placed, tuple(_cards(h.placed.mib)), h.wanted)
        for _, h in sorted(held.items())
        if use_queue and h.flexible and h.placed.start > now
    ]
    ask = queue.Ask(
        "u",
        request.mib,
        duration,
        tuple(_cards(request.mib)),
        request.start,
        request.start + HORIZON,
    )
    found = queue.place(capacities, live, waiting, {}, now, ask)
    if found is None:
        return None
    placed = queue.Placed(index, found.card, "u", found.start, found.start + duration, request.mib)
    return Held(placed, True, request.start, release_at), found.shifted


def _figures(
    held: dict[int, Held], capacities: dict[int, int], counts: dict[str, int]
) -> dict[str, Any]:
    waits = sorted(
        (h.placed.start - h.wanted) / timedelta(hours=1) for h in held.values() if h.flexible
    )
    overbooked = 0
    for card, cap in capacities.items():
        spans = [
            h.placed.span
            for h in held.values()
            if h.placed.card == card and h.placed.end > h.placed.start
        ]
        if spans and not never_exceeds(
            spans, cap, min(s.start for s in spans), max(s.end for s in spans)
        ):
            overbooked += 1
    served = sum(
        h.placed.mib / GIB * ((h.placed.end - h.placed.start) / timedelta(hours=1))
        for h in held.values()
    )
    return counts | {
        "flexible": len(waits),
        "mean_wait_h": round(sum(waits) / len(waits), 4) if waits else 0.0,
        "p95_wait_h": round(waits[int(0.95 * (len(waits) - 1))], 2) if waits else 0.0,
        "gib_hours_served": round(served, 1),
        "overbooked_gpus": overbooked,
    }


#: The trace as measured, and as it was first replayed (every request asked at its start, no
#: cancels), for comparison.
TRACE_MODELS: dict[str, dict[str, Any]] = {
    "asked ahead, some cancelled": {},
    "asked at start, none cancelled": {"asked_at_start": True, "cancel_share": 0.0},
}
MODES = ("fixed placement", "with the queue")


def _replays(seed: int, days: int, **model: Any) -> dict[str, dict[str, Any]]:
    trace = make_trace(random.Random(seed), days, PER_HOUR)
    return {
        mode: replay(trace, random.Random(seed + 1), use_queue=mode == MODES[1], **model)
        for mode in MODES
    }


def _cut(fixed_wait: float, queued_wait: float) -> float:
    return 1 - queued_wait / fixed_wait if fixed_wait else 0.0


def _over_seeds(first: int, seeds: int, days: int, model: dict[str, Any]) -> dict[str, Any]:
    """The mean waits over ``seeds`` traces: one trace's figure hangs on a few whole-card
    requests, so the spread of the cut across seeds is reported beside it."""
    runs = [_replays(seed, days, **model) for seed in range(first, first + seeds)]
    waits = {mode: [r[mode]["mean_wait_h"] for r in runs] for mode in MODES}
    cuts = sorted(_cut(f, q) for f, q in zip(*waits.values(), strict=True))
    if any(r[mode]["overbooked_gpus"] for r in runs for mode in MODES):
        raise AssertionError(f"a replay over-booked a GPU (seeds {first}–{first + seeds - 1})")
    return {
        "seeds": seeds,
        "mean_wait_h": {mode: round(sum(w) / seeds, 3) for mode, w in waits.items()},
        "wait_cut": round(_cut(sum(waits[MODES[0]]), sum(waits[MODES[1]])), 3),
        "cut_min_median_max": [round(c, 3) for c in (cuts[0], cuts[len(cuts) // 2], cuts[-1])],
    }


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(
        __doc__.splitlines()[0],
        argv,
        lambda p: p.add_argument("--seeds", type=int, default=10, help="traces to average over"),
    )
    days, seeds = (2, 2) if args.quick else (14, args.seeds)
    info = machine()
    print_machine(info)
    rows = _replays(args.seed, days)
    flexible = rows[MODES[0]]["flexible"]
    print(f"\n{PER_HOUR:g} requests/h over {days} days, {flexible} flexible ({FLEXIBLE_SHARE:.0%})")
    print_table(
        [
            "mode",
            "mean wait h",
            "p95 wait h",
            "GB·h served",
            "releases + cancels moving someone",
            "over-booked GPUs",
        ],
        [
            [
                mode,
                r["mean_wait_h"],
                r["p95_wait_h"],
                r["gib_hours_served"],
                f"{r['frees_moving_someone']} of {r['releases']} + {r['cancels']}",
                r["overbooked_gpus"],
            ]
            for mode, r in rows.items()
        ],
    )
    if any(r["overbooked_gpus"] for r in rows.values()):
        raise AssertionError(f"a replay over-booked a GPU: {rows}")
    shifted = rows[MODES[1]]["shifted"]
    print(f"queued bookings shifted aside (no later) to place new ones: {shifted}")
    cut = _cut(rows[MODES[0]]["mean_wait_h"], rows[MODES[1]]["mean_wait_h"])
    print(f"mean wait of flexible requests: {cut:.0%} shorter with the queue (target ≥ 30 %)")
    spread = {name: _over_seeds(args.seed, seeds, days, m) for name, m in TRACE_MODELS.items()}
    print(f"\nover seeds {args.seed}–{args.seed + seeds - 1}:")
    print_table(
        [
            "trace",
            "mean wait h: fixed",
            "with the queue",
            "cut",
            "cut per seed: min / median / max",
        ],
        [
            [
                name,
                s["mean_wait_h"][MODES[0]],
                s["mean_wait_h"][MODES[1]],
                f"{s['wait_cut']:.0%}",
                " / ".join(f"{c:.0%}" for c in s["cut_min_median_max"]),
            ]
            for name, s in spread.items()
        ],
    )
    results = {
        "machine": info,
        "seed": args.seed,
        "days": days,
        "modes": rows,
        "wait_cut": round(cut, 3),
        "over_seeds": spread,
    }
    write_results("queue_bench", results, args.out)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run(argv)


if __name__ == "__main__":
    main()
