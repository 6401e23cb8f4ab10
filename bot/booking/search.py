"""The earliest window on each of several GPUs, reading only as far ahead as the answer needs.

A search for a window used to read every booking of its whole horizon (30 days on every card)
before looking: at 200 GPUs and 100,000 bookings, some 50,000 spans for one `free`. Most cards
have room within hours, so the search reads in rounds instead: the first round reads each
card's bookings up to :data:`FIRST_REACH` ahead (plus the request's length), and only the cards
with no window yet are read further, the reach doubling each round until the horizon. Each round
adds only the bookings *starting* in the new stretch (those starting earlier were read already),
one statement for every card still searched, found by start (:func:`queries.spans`).

The answer is exactly the full scan's: a window starting by ``reach`` depends only on the
bookings overlapping ``[not_before, reach + duration)``, so :func:`bot.core.capacity.earliest_fit`
over what is read so far, with ``reach`` as its latest start, finds a card's earliest window when
it starts by then and ``None`` when it starts later. A search that only wants the best card
(``first_only``) stops at the first round where some card fits: every card still without a window
has none by that round's reach, so none can start sooner, or tie and win on the tighter fit.
``tests/test_reports_at_scale.py`` checks it against the full scan on random bookings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.core import capacity

#: How far ahead of the earliest start the first round reads; each later round doubles it.
FIRST_REACH = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Ask:
    """One card to search: its id, capacity and the MiB asked of it (a % is a size per card)."""

    gpu_id: int
    capacity_mib: int
    mib: int


@dataclass(frozen=True, slots=True)
class Found:
    """A card's earliest window and the memory left free at its peak (for the tightest fit)."""

    start: datetime
    spare_mib: int


async def earliest_windows(
    session: AsyncSession,
    asks: Sequence[Ask],
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
    *,
    exclude: int | None = None,
    first_only: bool = False,
) -> dict[int, Found | None]:
    """Each card's earliest start in ``[not_before, latest_start]`` for its ask over
    ``duration`` (``None`` where none fits), as :func:`capacity.earliest_fit` over every booking
    of the horizon would find it, but reading only as far as needed.

    With ``first_only`` the search stops once some card has a window: the cards found by then
    are the only ones that can be soonest, and the others are answered ``None`` unsearched.
    """
    found: dict[int, Found | None] = {}
    searched = [a for a in asks if a.mib <= a.capacity_mib]
    found.update({a.gpu_id: None for a in asks if a.mib > a.capacity_mib})
    spans: dict[int, list[capacity.Span]] = {a.gpu_id: [] for a in searched}
    step, read_to = FIRST_REACH, None
    while searched and latest_start >= not_before:
        reach = min(not_before + step, latest_start)
        upto = reach + duration
        more = await queries.spans(
            session, [a.gpu_id for a in searched], not_before, upto, exclude=exclude, since=read_to
        )
        read_to = upto
        left = []
        for ask in searched:
            held = spans[ask.gpu_id]
            held.extend(more[ask.gpu_id])
            at = capacity.earliest_fit(held, ask.capacity_mib, ask.mib, duration, not_before, reach)
            if at is not None:
                peak = capacity.peak(held, at, at + duration).mib
                found[ask.gpu_id] = Found(at, ask.capacity_mib - peak - ask.mib)
            elif reach == latest_start:
                found[ask.gpu_id] = None
            else:
                left.append(ask)
        if first_only and any(f is not None for f in found.values()):
            break
        searched, step = left, step * 2
    for ask in asks:
        found.setdefault(ask.gpu_id, None)
    return found


def soonest(found: dict[int, Found | None], order: Sequence[int]) -> tuple[int, Found] | None:
    """The card that serves soonest, ties to the tightest fit, then to the first in ``order``
    (what :func:`capacity.best_placement` picks)."""
    ranked = [
        (f.start, f.spare_mib, n, gpu_id, f)
        for n, gpu_id in enumerate(order)
        if (f := found.get(gpu_id)) is not None
    ]
    if not ranked:
        return None
    *_, gpu_id, best = min(ranked)
    return gpu_id, best
