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


def earliest_on(
    cards: Sequence[tuple[Hashable, int, Sequence[Span]]],
    owner_spans: Sequence[Span],
    owner_limit: int | None,
    mib: int,
    duration: timedelta,
    not_before: datetime,
    latest_start: datetime,
) -> tuple[datetime, Hashable] | None:
    """The earliest :func:`earliest_start` over ``cards`` (each: id, capacity, its spans) and
    the card it is on, the first card in order on a tie; ``None`` if it fits on none."""
    best: tuple[datetime, Hashable] | None = None
    for card, capacity_mib, spans in cards:
        at = earliest_start(
            spans, capacity_mib, owner_spans, owner_limit, mib, duration, not_before, latest_start
        )
        if at is not None and (best is None or at < best[0]):
            best = (at, card)
    return best


def advance(
    capacities: Mapping[Hashable, int],
    placed: Sequence[Placed],
    waiting: Sequence[Waiting],
    limits: Mapping[str, int | None],
    now: datetime,
) -> list[Move]:
    """Move each of ``waiting`` (in the order given: the order they were made) to the earliest
    start that fits, if that is earlier than where it is.

    ``placed`` holds every booking holding memory, the waiting ones included; ``limits`` is each
    owner's max-held (absent or ``None``: none). Ties between cards go to the card left
    fullest (best fit), then to the order of ``cards``.
    """
    on_card: dict[Hashable, list[Placed]] = {card: [] for card in capacities}
    for booking in placed:
        on_card.setdefault(booking.card, []).append(booking)
    moves: list[Move] = []
    for item in waiting:
        booking = item.booking
        if booking.start <= now:
            continue  # started (or due to): never moves
        on_card[booking.card] = [b for b in on_card[booking.card] if b.id != booking.id]
        owner = [b.span for bs in on_card.values() for b in bs if b.owner == booking.owner]
        best: tuple[datetime, int, int] | None = None
        duration = booking.end - booking.start
        for order, card in enumerate(item.cards):
            if card not in capacities:
                continue
            spans = [b.span for b in on_card[card]]
            at = earliest_start(
                spans,
                capacities[card],
                owner,
                limits.get(booking.owner),
                booking.mib,
                duration,
                max(now, item.not_before),
                booking.start - timedelta(seconds=1),
            )
            if at is None:
                continue
            spare = capacities[card] - peak(spans, at, at + duration).mib - booking.mib
            if best is None or (at, spare, order) < best:
                best = (at, spare, order)
        if best is None:
            on_card[booking.card].append(booking)
            continue
        card = item.cards[best[2]]
        moved = replace(booking, card=card, start=best[0], end=best[0] + duration)
        on_card[card].append(moved)
        moves.append(Move(booking.id, card, moved.start, moved.end, booking))
    return moves
