"""The capacity core: pure functions over bookings on one GPU (no I/O, no Slack, no SQL).

A GPU is shared by memory. What matters is the memory held *at the same instant*, so every
question is answered from the step function of held memory over time, never from a sum of every
booking that overlaps a window (the flaw of the system gpubook replaces: two 16 GB bookings at
10–11 and 11–12 never hold 32 GB at once). Intervals are half-open ``[start, end)``: a booking
ending at 12:00 and one starting at 12:00 never overlap. Memory is integer MiB, times are aware
UTC datetimes; nothing here rounds.

The functions are property-tested against a minute-by-minute brute force in
``tests/test_capacity.py``.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Span:
    """Memory held over ``[start, end)``: a booking as far as capacity is concerned."""

    start: datetime
    end: datetime
    mib: int


@dataclass(frozen=True, slots=True)
class Step:
    """One piece of the held-memory step function: ``used_mib`` held throughout ``[start, end)``."""

    start: datetime
    end: datetime
    used_mib: int


@dataclass(frozen=True, slots=True)
class Peak:
    """The most memory held at any instant of a window, and the first stretch where it is held."""

    mib: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class GpuLoad:
    """What placement needs to know about one GPU: a key, its capacity and its bookings."""

    key: Hashable
    capacity_mib: int
    spans: Sequence[Span]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when a request is served soonest; ``spare_mib`` is what stays free at its peak."""

    key: Hashable
    start: datetime
    end: datetime
    spare_mib: int


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValueError(f"empty window [{start}, {end})")


def _runs(
    spans: Iterable[Span], start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, int]]:
    """Yield ``(run_start, run_end, used)`` pieces covering ``[start, end)`` in order, lazily.

    Spans are clipped to the window; changes at the same instant are merged before a piece is
    emitted, which is what makes back-to-back bookings not overlap. Adjacent pieces may hold
    the same amount (``profile`` merges them); a scan that stops early never pays for the rest.
    """
    deltas: dict[datetime, int] = {}
    for span in spans:
        s, e = max(span.start, start), min(span.end, end)
        if s < e and span.mib:
            deltas[s] = deltas.get(s, 0) + span.mib
            deltas[e] = deltas.get(e, 0) - span.mib
    times = list(deltas)
    heapq.heapify(times)  # popped in order on demand: an early stop skips most of the sort
    used, cursor = 0, start
    while times:
        t = heapq.heappop(times)
        if t > cursor:
            yield cursor, t, used
            cursor = t
        used += deltas[t]
    if cursor < end:
        yield cursor, end, used


def profile(spans: Iterable[Span], start: datetime, end: datetime) -> list[Step]:
    """The held-memory step function over ``[start, end)``, as maximal runs of equal usage."""
    _check_window(start, end)
    steps: list[Step] = []
    for run_start, run_end, used in _runs(spans, start, end):
        if steps and steps[-1].used_mib == used:
            steps[-1] = Step(steps[-1].start, run_end, used)
        else:
            steps.append(Step(run_start, run_end, used))
    return steps


def peak(spans: Iterable[Span], start: datetime, end: datetime) -> Peak:
    """The peak concurrent memory over ``[start, end)`` and the first stretch holding it."""
    best = max(profile(spans, start, end), key=lambda step: step.used_mib)
    return Peak(best.used_mib, best.start, best.end)


def fits(
    spans: Iterable[Span], capacity_mib: int, mib: int, start: datetime, end: datetime
) -> bool:
    """Whether ``mib`` more MiB can be held over ``[start, end)`` without exceeding capacity."""
    return peak(spans, start, end).mib + mib <= capacity_mib


def fits_until(
    spans: Iterable[Span], capacity_mib: int, mib: int, start: datetime, until: datetime
) -> datetime:
    """How long ``mib`` more MiB can be held from ``start`` on: the first instant in
    ``[start, until)`` where it would exceed the card, or ``until`` when it never does.

    ``start`` itself means nothing fits there. This is how far a booking ending at ``start``
    could be extended.
    """
    _check_window(start, until)
    for run_start, _run_end, used in _runs(spans, start, until):
        if used + mib > capacity_mib:
            return run_start
    return until


def earliest_fit(
    spans: Iterable[Span],
    capacity_mib: int,
    mib: int,
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
) -> datetime | None:
    """The earliest start ``s`` in ``[not_before, latest_start]`` where ``mib`` fits for ``duration``.

    Held memory only falls where a booking ends, so the answer is ``not_before`` or a step
    boundary. One left-to-right scan over the step function finds it: a step that is too full
    pushes the candidate to its end; a candidate that survives ``duration`` is the answer.
    Returns ``None`` when nothing fits before the horizon (or the request exceeds the card).
    """
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if mib > capacity_mib or latest_start < not_before:
        return None
    limit = capacity_mib - mib
    candidate = not_before
    for _run_start, run_end, used in _runs(spans, not_before, latest_start + duration):
        if used > limit:
            candidate = run_end
            if candidate > latest_start:
                return None
        elif run_end - candidate >= duration:
            return candidate
    return None


def best_placement(
    gpus: Iterable[GpuLoad],
    mib: int,
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
) -> Placement | None:
    """The GPU and start that serve a request soonest; ties go to the tightest fit.

    "Tightest" means the least memory left free at the peak of the booked window, so big cards
    stay available for big requests (best fit). Remaining ties go to the first GPU given.
    """
    best: Placement | None = None
    for gpu in gpus:
        start = earliest_fit(gpu.spans, gpu.capacity_mib, mib, duration, not_before, latest_start)
        if start is None:
            continue
        end = start + duration
        spare = gpu.capacity_mib - peak(gpu.spans, start, end).mib - mib
        if best is None or (start, spare) < (best.start, best.spare_mib):
            best = Placement(gpu.key, start, end, spare)
    return best
