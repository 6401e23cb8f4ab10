"""The queue: flexible bookings, re-placed earlier whenever capacity frees (pure).

A flexible booking asks for memory for a duration "as soon as possible", on any card it may use.
It is placed at the earliest fit when made, and whenever memory frees it may move **earlier** —
never later, never past a card's capacity or its owner's max-held limit, and never once it has
started. Flexible bookings are served in the order they were made: the first one takes the
earliest room, the next one what is left. Fixed bookings never move.

The earliest start that fits both a card and the owner's limit is ``not_before`` or an instant
where held memory falls — an end of some booking — on the card or across the owner's bookings;
so the candidates are those instants, tried in order (:func:`earliest_start`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from bot.core.capacity import Span, fits, peak


def matches(gpu_name: str, pattern: str | None) -> bool:
    """Whether a flexible booking or a watch with ``pattern`` (``None``: any GPU) may use
    ``gpu_name`` (a name, or a shell pattern such as ``a100-*``)."""
    return pattern is None or fnmatchcase(gpu_name, pattern.lower())


@dataclass(frozen=True)
class Placed:
    """A booking that holds memory: where, when, how much, whose."""

    id: int
    card: Hashable
    owner: str
    start: datetime
    end: datetime
    mib: int

    @property
    def span(self) -> Span:
        return Span(self.start, self.end, self.mib)


@dataclass(frozen=True)
class Waiting:
    """A flexible booking that has not started: the cards it may use, and its earliest start."""

    booking: Placed
    cards: tuple[Hashable, ...]
    not_before: datetime


@dataclass(frozen=True)
class Move:
    """A flexible booking re-placed earlier."""

    id: int
    card: Hashable
    start: datetime
    end: datetime
    was: Placed


def earliest_start(
    card_spans: Sequence[Span],
    capacity_mib: int,
    owner_spans: Sequence[Span],
    owner_limit: int | None,
    mib: int,
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
) -> datetime | None:
    """The earliest start in ``[not_before, latest_start]`` where ``mib`` fits for ``duration``
    on the card and within the owner's max-held limit (``None``: no limit); ``None`` if none."""
    if latest_start < not_before:
        return None
    ends = {s.end for s in (*card_spans, *owner_spans) if not_before < s.end <= latest_start}
    for start in sorted({not_before, *ends}):
        end = start + duration
        if not fits(card_spans, capacity_mib, mib, start, end):
            continue
        if owner_limit is None or fits(owner_spans, owner_limit, mib, start, end):
            return start
    return None


@dataclass(frozen=True)
class Card:
    """A card a booking may use: its capacity and the spans held on it."""

    id: Hashable
    capacity_mib: int
    spans: Sequence[Span]


def earliest_placement(
    cards: Sequence[Card],
    owner_spans: Sequence[Span],
    owner_limit: int | None,
    mib: int,
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
) -> tuple[Card, datetime] | None:
    """The card and start where ``mib`` for ``duration`` starts earliest (see
    :func:`earliest_start`); ``None`` if it fits nowhere by ``latest_start``.

    Ties go to the smallest card, then to the card left fullest over the window (best fit), then
    to the order of ``cards``: a booking that could start as early on a big card takes a small
    one, keeping the big cards for what only they can hold — a whole-card request needs its card
    *empty* for its whole length, and most of the queue's waiting is such requests'. Creating a
    flexible booking and moving one choose alike, here.
    """
    best: tuple[datetime, int, int, int] | None = None
    for order, card in enumerate(cards):
        at = earliest_start(
            card.spans,
            card.capacity_mib,
            owner_spans,
            owner_limit,
            mib,
            duration,
            not_before,
            latest_start,
        )
        if at is None:
            continue
        spare = card.capacity_mib - peak(card.spans, at, at + duration).mib - mib
        if best is None or (at, card.capacity_mib, spare, order) < best:
            best = (at, card.capacity_mib, spare, order)
    return None if best is None else (cards[best[3]], best[0])


def advance(
    capacities: Mapping[Hashable, int],
    placed: Sequence[Placed],
    waiting: Sequence[Waiting],
    limits: Mapping[str, int | None],
    now: datetime,
) -> list[Move]:
    """Move each of ``waiting`` (in the order given: the order they were made) to the earliest
    start that fits (:func:`earliest_placement`), if that is earlier than where it is.

    ``placed`` holds every booking holding memory, the waiting ones included; ``limits`` is each
    owner's max-held (absent or ``None``: none). A move leaves its old place free, and that room
    is offered in line order: after every move the line is served again from its head, so a
    booking takes room only when none made before it can start earlier with everyone where they
    are at that moment — a later booking never takes room an earlier one could use then. (Serving
    the rest of the line first would let the next in line take room freed behind the first,
    which the first could have had.) When this returns, no waiting booking could start earlier
    with every other where it ends up. It ends: each move takes a booking strictly earlier, never
    one later, and every start is ``now``, a not-before or the end of another booking (its start
    plus a duration), so the starts come from a finite set bounded by ``now``.
    Each booking moved is returned once: where it ends up, and where it was before the pass.
    """
    on_card: dict[Hashable, list[Placed]] = {card: [] for card in capacities}
    for booking in placed:
        on_card.setdefault(booking.card, []).append(booking)
    current = {item.booking.id: item.booking for item in waiting}
    moved: set[int] = set()
    moving = True
    while moving:
        moving = False
        for item in waiting:
            booking = current[item.booking.id]
            if booking.start <= now:
                continue  # started (or due to): never moves
            on_card[booking.card] = [b for b in on_card[booking.card] if b.id != booking.id]
            owner = [b.span for bs in on_card.values() for b in bs if b.owner == booking.owner]
            duration = booking.end - booking.start
            found = earliest_placement(
                [
                    Card(c, capacities[c], [b.span for b in on_card[c]])
                    for c in item.cards
                    if c in capacities
                ],
                owner,
                limits.get(booking.owner),
                booking.mib,
                duration,
                max(now, item.not_before),
                booking.start - timedelta(seconds=1),
            )
            if found is not None:
                booking = replace(
                    booking, card=found[0].id, start=found[1], end=found[1] + duration
                )
                current[booking.id] = booking
                moved.add(booking.id)
                moving = True
            on_card[booking.card].append(booking)
            if moving:
                break  # the room it left goes to the head of the line first
    moves = []
    for item in waiting:
        if item.booking.id in moved:
            now_at = current[item.booking.id]
            moves.append(Move(now_at.id, now_at.card, now_at.start, now_at.end, item.booking))
    return moves
