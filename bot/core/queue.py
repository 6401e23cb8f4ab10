"""The queue: flexible bookings, re-placed earlier whenever capacity frees (pure).

A flexible booking asks for memory for a duration "as soon as possible", on any card it may use.
It is placed at the earliest fit when made, and whenever memory frees it may move **earlier** —
never later, never past a card's capacity or its owner's max-held limit, and never once it has
started. Flexible bookings are served in the order they were made: the first one takes the
earliest room, the next one what is left. Fixed bookings never move.

The earliest start that fits both a card and the owner's limit is ``not_before`` or an instant
where held memory falls — an end of some booking — on the card or across the owner's bookings;
so the candidates are those instants, tried in order (:func:`earliest_start`).

A flexible booking is made, and moved by a pass (:func:`advance`), with :func:`place`: at that
earliest start, or sooner where the only thing in the way is other flexible bookings that have
not started and can each go elsewhere (another card they may use) at a start no later than their
own. They are *shifted* aside, so nobody is delayed by it, and a request does not wait for a
card held by a queued booking that could run as early on another card.
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


@dataclass(frozen=True)
class Ask:
    """A flexible booking to place: whose, how much, for how long, on which cards, and the first
    and last start it accepts."""

    owner: str
    mib: int
    duration: timedelta
    cards: tuple[Hashable, ...]
    not_before: datetime
    latest_start: datetime


@dataclass(frozen=True)
class Spot:
    """Where :func:`place` puts a booking, and the waiting bookings it shifts aside to get there
    (each to a start no later than its own)."""

    card: Hashable
    start: datetime
    shifted: tuple[Move, ...] = ()


def place(
    capacities: Mapping[Hashable, int],
    placed: Sequence[Placed],
    waiting: Sequence[Waiting],
    limits: Mapping[str, int | None],
    now: datetime,
    ask: Ask,
) -> Spot | None:
    """Where ``ask`` starts soonest: its earliest fit with everyone where they are
    (:func:`earliest_placement`), or an earlier start where it fits once the flexible bookings
    of ``waiting`` (in line order; those not started) that overlap it on that card are shifted
    aside. ``placed`` holds every booking holding memory, the waiting ones included, not ``ask``.

    The earlier starts tried are ``ask.not_before`` and the ends on each card before the earliest
    fit, in order (then the smallest card first, as :func:`earliest_placement` ties). At each, the
    waiting bookings in the way are taken out, ``ask`` is put in, and they go back in line order:
    each where it was if it still fits there, else at its own earliest fit on its own cards from
    its own not-before, **no later than where it was**, within its owner's max-held. The first
    start where all of them go back wins; ``None`` if ``ask`` fits nowhere by its latest start.
    A shifted booking thus loses nothing — at worst it starts as early on another card — which is
    why a later booking may take its room: what "served in the order made" protects is that no
    booking starts later because of one made after it.
    """
    trial = _Trial(capacities, placed, limits, now)
    plain = earliest_placement(
        [Card(c, capacities[c], trial.on(c)) for c in ask.cards if c in capacities],
        trial.of(ask.owner),
        limits.get(ask.owner),
        ask.mib,
        ask.duration,
        ask.not_before,
        ask.latest_start,
    )
    before = plain[1] if plain is not None else ask.latest_start + timedelta(microseconds=1)
    line: dict[Hashable, list[Waiting]] = {}
    for item in waiting:
        if item.booking.start > now:  # started: never moves
            line.setdefault(item.booking.card, []).append(item)
    for at, card in _earlier_starts(capacities, trial, ask, before):
        shifted = trial.shift_aside(line.get(card, []), ask, card, at)
        if shifted is not None:
            return Spot(card, at, shifted)
    return None if plain is None else Spot(plain[0].id, plain[1])


def _earlier_starts(
    capacities: Mapping[Hashable, int],
    trial: _Trial,
    ask: Ask,
    before: datetime,
) -> list[tuple[datetime, Hashable]]:
    """``ask``'s not-before and every end on its cards before ``before``, by start, then size,
    then the order of ``ask.cards``."""
    found = {
        (at, capacities[card], order, card)
        for order, card in enumerate(ask.cards)
        if card in capacities
        for at in (ask.not_before, *(s.end for s in trial.on(card)))
        if ask.not_before <= at < before
    }
    return [(at, card) for at, _, _, card in sorted(found)]


class _Trial:
    """Making room for a booking by shifting waiting ones aside (see :func:`place`): the
    bookings by card and by owner, and on each try those taken out and those put in."""

    def __init__(
        self,
        capacities: Mapping[Hashable, int],
        placed: Sequence[Placed],
        limits: Mapping[str, int | None],
        now: datetime,
    ) -> None:
        self.capacities, self.limits, self.now = capacities, limits, now
        self.by_card: dict[Hashable, list[Placed]] = {}
        self.by_owner: dict[str, list[Placed]] = {}
        for b in placed:
            self.by_card.setdefault(b.card, []).append(b)
            self.by_owner.setdefault(b.owner, []).append(b)
        self.out: set[int] = set()
        self.put: list[Placed] = []

    def on(self, card: Hashable) -> list[Span]:
        held = [b.span for b in self.by_card.get(card, ()) if b.id not in self.out]
        return held + [b.span for b in self.put if b.card == card]

    def of(self, owner: str) -> list[Span]:
        held = [b.span for b in self.by_owner.get(owner, ()) if b.id not in self.out]
        return held + [b.span for b in self.put if b.owner == owner]

    def _fits(self, booking: Placed) -> bool:
        """Whether ``booking`` fits where it says, on its card and within its owner's limit."""
        capacity, limit = self.capacities[booking.card], self.limits.get(booking.owner)
        return fits(self.on(booking.card), capacity, booking.mib, booking.start, booking.end) and (
            limit is None
            or fits(self.of(booking.owner), limit, booking.mib, booking.start, booking.end)
        )

    def shift_aside(
        self, line: Sequence[Waiting], ask: Ask, card: Hashable, at: datetime
    ) -> tuple[Move, ...] | None:
        """The moves that make room for ``ask`` on ``card`` at ``at`` by shifting the bookings
        of ``line`` (waiting on that card, in line order) in the way; ``None`` if none are in
        the way or one cannot go back. Everyone is where they were again afterwards."""
        end = at + ask.duration
        aside = [w for w in line if w.booking.start < end and at < w.booking.end]
        if not aside:
            return None
        self.out, self.put = {w.booking.id for w in aside}, []
        try:
            return self._put_back(aside, Placed(0, card, ask.owner, at, end, ask.mib))
        finally:
            self.out, self.put = set(), []

    def _put_back(self, aside: Sequence[Waiting], asked: Placed) -> tuple[Move, ...] | None:
        """Put ``asked`` (not made yet: no id) in, then ``aside`` back in line order."""
        if not self._fits(asked):
            return None
        self.put.append(asked)
        moves = []
        for item in aside:
            was = item.booking
            if self._fits(was):
                self.put.append(was)  # back where it was
                continue
            duration = was.end - was.start
            found = earliest_placement(
                [
                    Card(c, self.capacities[c], self.on(c))
                    for c in item.cards
                    if c in self.capacities
                ],
                self.of(was.owner),
                self.limits.get(was.owner),
                was.mib,
                duration,
                max(self.now, item.not_before),
                was.start,
            )
            if found is None:
                return None
            moved = replace(was, card=found[0].id, start=found[1], end=found[1] + duration)
            self.put.append(moved)
            moves.append(Move(was.id, moved.card, moved.start, moved.end, was))
        return tuple(moves)


def advance(
    capacities: Mapping[Hashable, int],
    placed: Sequence[Placed],
    waiting: Sequence[Waiting],
    limits: Mapping[str, int | None],
    now: datetime,
) -> list[Move]:
    """Move each of ``waiting`` (in the order given: the order they were made) to where it starts
    soonest (:func:`place`: shifting others in the line aside, never later), if that is earlier
    than where it is.

    ``placed`` holds every booking holding memory, the waiting ones included; ``limits`` is each
    owner's max-held (absent or ``None``: none). A move leaves its old place free, and that room
    is offered in line order: after every move the line is served again from its head, so a
    booking takes room only when none made before it can start earlier with everyone where they
    are at that moment — a later booking never takes room an earlier one could use then. (Serving
    the rest of the line first would let the next in line take room freed behind the first,
    which the first could have had.) When this returns, no waiting booking could start earlier,
    even by shifting others aside, with every other where it ends up. It ends: each move takes
    one booking strictly earlier and none later, and every start is ``now``, a not-before or the
    end of another booking (its start plus a duration), so the starts come from a finite set
    bounded by ``now``. Each booking moved is returned once: where it ends up, and where it was
    before the pass (one shifted aside and back again is not returned).
    """
    current = {booking.id: booking for booking in (*placed, *(w.booking for w in waiting))}
    moved: set[int] = set()
    while True:
        for item in waiting:
            booking = current[item.booking.id]
            if booking.start <= now:
                continue  # started (or due to): never moves
            duration = booking.end - booking.start
            ask = Ask(
                booking.owner,
                booking.mib,
                duration,
                item.cards,
                max(now, item.not_before),
                booking.start - timedelta(seconds=1),
            )
            others = [b for b in current.values() if b.id != booking.id]
            line = [replace(w, booking=current[w.booking.id]) for w in waiting if w is not item]
            spot = place(capacities, others, line, limits, now, ask)
            if spot is not None:
                to = Move(booking.id, spot.card, spot.start, spot.start + duration, booking)
                for move in (to, *spot.shifted):
                    current[move.id] = replace(
                        move.was, card=move.card, start=move.start, end=move.end
                    )
                    moved.add(move.id)
                break  # the room it left goes to the head of the line first
        else:
            break
    moves = []
    for item in waiting:
        now_at = current[item.booking.id]
        if item.booking.id in moved and now_at != item.booking:
            moves.append(Move(now_at.id, now_at.card, now_at.start, now_at.end, item.booking))
    return moves
