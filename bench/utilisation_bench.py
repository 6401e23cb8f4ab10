"""How much GPU time the peak check accepts that a naive sum-of-overlaps rule throws away.

The system gpubook replaces refused a request when the memory of *every* booking overlapping the
window, plus the request, exceeded the card — even when those bookings never run at the same
time. gpubook asks the real question: the most memory held at any one instant
(``bot.core.capacity.fits``). This replays one seeded synthetic trace through both rules.

The trace: two weeks, four GPUs (24, 24, 48, 80 GB), Poisson arrivals; 70 % small requests
(2–8 GB), 22 % medium (10–20 GB), 8 % whole-card; durations log-uniform over 30 min – 12 h; half
start on arrival, half up to two days later. Each rule accepts or refuses in arrival order against
its own accepted set. A *false refusal* is a refusal where, against that rule's accepted set, the
memory held would at no instant have exceeded the card — decided by an independent
instant-by-instant oracle, not by ``fits``. The peak rule has none by construction; the script
verifies it, and that neither rule ever overfills a card.

Run: ``.venv/bin/python -m bench.utilisation_bench [--quick]`` (pure Python, no database).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench.common import (
    GIB,
    T0,
    machine,
    overlapping,
    parse_args,
    print_machine,
    print_table,
    write_results,
)
from bot.core import capacity
from bot.core.capacity import Span

GPUS_GIB = (24, 24, 48, 80)
HOUR = timedelta(hours=1)

#: A capacity rule: may ``mib`` more be held over ``[start, end)`` given the overlapping spans?
Rule = Callable[[Sequence[Span], int, int, datetime, datetime], bool]


@dataclass(frozen=True)
class Request:
    gpu: int
    mib: int
    start: datetime
    end: datetime
    #: When it was asked for: its arrival (up to two days before ``start`` for half of them).
    asked: datetime

    @property
    def gib_hours(self) -> float:
        return self.mib / GIB * ((self.end - self.start) / HOUR)


def naive_fits(
    spans: Sequence[Span], capacity_mib: int, mib: int, start: datetime, end: datetime
) -> bool:
    """The baseline: every overlapping booking counts in full, whenever it runs."""
    return sum(s.mib for s in spans) + mib <= capacity_mib


RULES: dict[str, Rule] = {"peak (gpubook)": capacity.fits, "naive sum of overlaps": naive_fits}


def make_trace(rng: random.Random, days: int, per_hour: float) -> list[Request]:
    """Requests in arrival order (exponential inter-arrival times, i.e. Poisson arrivals)."""
    trace, arrival = [], T0
    horizon = T0 + timedelta(days=days)
    while True:
        arrival += timedelta(hours=rng.expovariate(per_hour))
        if arrival >= horizon:
            return trace
        trace.append(_request(rng, arrival))


def _request(rng: random.Random, arrival: datetime) -> Request:
    kind = rng.random()
    if kind < 0.70:
        gib = rng.randint(2, 8)
    elif kind < 0.92:
        gib = rng.randint(10, 20)
    else:
        gib = 0  # whole card, sized below once the GPU is chosen
    gpu = rng.choice([i for i, size in enumerate(GPUS_GIB) if size >= gib])
    mib = (gib or GPUS_GIB[gpu]) * GIB
    lead = timedelta(0) if rng.random() < 0.5 else timedelta(minutes=rng.randrange(0, 48 * 60, 5))
    minutes = 5 * round(math.exp(rng.uniform(math.log(30), math.log(12 * 60))) / 5)
    start = arrival.replace(second=0, microsecond=0) + lead
    return Request(gpu, mib, start, start + timedelta(minutes=minutes), min(arrival, start))


def never_exceeds(spans: Sequence[Span], capacity_mib: int, start: datetime, end: datetime) -> bool:
    """The oracle: held memory summed at every instant where it can rise within ``[start, end)``.

    Held memory only rises where a span starts, so checking the window's start and every span
    start inside it covers every instant — a brute force independent of ``bot.core.capacity``.
    """
    instants = {start} | {s.start for s in spans if start < s.start < end}
    return all(sum(s.mib for s in spans if s.start <= t < s.end) <= capacity_mib for t in instants)


def replay(trace: Sequence[Request], rule: Rule) -> dict[str, Any]:
    accepted: list[list[Span]] = [[] for _ in GPUS_GIB]
    counts = {"accepted": 0, "refused": 0, "false_refusals": 0}
    gib_hours = 0.0
    for r in trace:
        cap = GPUS_GIB[r.gpu] * GIB
        hits = overlapping(accepted[r.gpu], r.start, r.end)
        if rule(hits, cap, r.mib, r.start, r.end):
            accepted[r.gpu].append(Span(r.start, r.end, r.mib))
            counts["accepted"] += 1
            gib_hours += r.gib_hours
            continue
        counts["refused"] += 1
        if never_exceeds([*hits, Span(r.start, r.end, r.mib)], cap, r.start, r.end):
            counts["false_refusals"] += 1
    overfilled = [
        i
        for i, spans in enumerate(accepted)
        if spans
        and not never_exceeds(
            spans, GPUS_GIB[i] * GIB, min(s.start for s in spans), max(s.end for s in spans)
        )
    ]
    return counts | {"gib_hours_accepted": round(gib_hours, 1), "overfilled_gpus": overfilled}


#: Requests per hour: offered load of roughly 65 %, 100 % and 130 % of what the cards hold.
RATES = (3.0, 4.5, 6.0)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    days, rates = (2, RATES[-1:]) if args.quick else (14, RATES)
    info = machine()
    print_machine(info)
    results: dict[str, Any] = {"machine": info, "seed": args.seed, "runs": []}
    for per_hour in rates:
        results["runs"].append(_run_trace(random.Random(args.seed), days, per_hour))
    write_results("utilisation_bench", results, args.out)
    return results


def _run_trace(rng: random.Random, days: int, per_hour: float) -> dict[str, Any]:
    trace = make_trace(rng, days, per_hour)
    offered = sum(r.gib_hours for r in trace)
    available = sum(GPUS_GIB) * days * 24
    print(
        f"\n{len(trace):,} requests ({per_hour:g}/h) over {days} days on GPUs {GPUS_GIB} GB: "
        f"offered {offered:,.0f} GB·h = {offered / available:.0%} of the {available:,} GB·h the cards hold"
    )
    rows = {name: replay(trace, rule) for name, rule in RULES.items()}
    print_table(
        ["rule", "accepted", "refused", "GB·h accepted", "false refusals", "overfilled GPUs"],
        [
            [
                name,
                r["accepted"],
                r["refused"],
                r["gib_hours_accepted"],
                r["false_refusals"],
                len(r["overfilled_gpus"]),
            ]
            for name, r in rows.items()
        ],
    )
    peak, naive = rows["peak (gpubook)"], rows["naive sum of overlaps"]
    if peak["false_refusals"] or peak["overfilled_gpus"] or naive["overfilled_gpus"]:
        raise AssertionError(f"a capacity rule misbehaved: {rows}")
    print(
        "peak rule: 0 false refusals (by construction; verified by the oracle); "
        f"the naive rule accepts {naive['gib_hours_accepted'] / peak['gib_hours_accepted']:.0%} "
        "of its GB·h."
    )
    return {
        "per_hour": per_hour,
        "days": days,
        "requests": len(trace),
        "gpus_gib": GPUS_GIB,
        "offered_gib_hours": round(offered, 1),
        "available_gib_hours": available,
        "rules": rows,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run(argv)


if __name__ == "__main__":
    main()
