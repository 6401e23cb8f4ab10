"""The queue's re-placement, against a brute-force oracle (minute by minute).

For any set of bookings on a few cards, some of them flexible: no flexible booking ever moves
later (or before its earliest start, or once started), no card is ever over-full, no owner ever
holds more than their max-held, the first flexible booking in line lands at least as early as the
earliest minute where it fits with the others where they were, and after the pass no waiting
booking could start at an earlier minute with the others where they ended up. A booking made or
moved (:func:`place`) starts no later than its earliest fit with everyone where they are, and
the queued bookings it shifts aside to get there start no later than they did; the whole pass,
shifts included, equals its brute force (the line served from its head, minute by minute).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.capacity import Span
from bot.core.queue import (
    Ask,
    Card,
    Move,
    Placed,
    Waiting,
    advance,
    earliest_placement,
    earliest_start,
    place,
)

BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = BASE + timedelta(minutes=5)
OWNERS = ("a", "b")


def m(k: int) -> datetime:
    return BASE + timedelta(minutes=k)


def held_at(bookings: list[Placed], k: int, **match: object) -> int:
    return sum(
        b.mib
        for b in bookings
        if b.start <= m(k) < b.end and all(getattr(b, f) == v for f, v in match.items())
    )


def fits_everywhere(
    bookings: list[Placed], capacities: dict[str, int], limits: dict[str, int | None]
) -> bool:
    for k in range(0, 120):
        for card, capacity in capacities.items():
            if held_at(bookings, k, card=card) > capacity:
                return False
        for owner, limit in limits.items():
            if limit is not None and held_at(bookings, k, owner=owner) > limit:
                return False
    return True


@st.composite
def states(draw):  # type: ignore[no-untyped-def]
    capacities = {
        f"c{i}": draw(st.sampled_from([8, 16, 24])) for i in range(draw(st.integers(1, 3)))
    }
    limits = {o: draw(st.one_of(st.none(), st.sampled_from([8, 16, 30]))) for o in OWNERS}
    bookings: list[Placed] = []
    waiting: list[Waiting] = []
    for i in range(draw(st.integers(0, 9))):
        start = draw(st.integers(0, 40))
        candidate = Placed(
            i,
            draw(st.sampled_from(sorted(capacities))),
            draw(st.sampled_from(OWNERS)),
            m(start),
            m(start + draw(st.integers(1, 15))),
            draw(st.integers(1, 16)),
        )
        if not fits_everywhere([*bookings, candidate], capacities, limits):
            continue
        bookings.append(candidate)
        if candidate.start > NOW and draw(st.booleans()):
            cards = tuple(draw(st.permutations(sorted(capacities)))[: draw(st.integers(1, 3))])
            if candidate.card not in cards:
                cards = (candidate.card, *cards)
            not_before = m(draw(st.integers(0, 20)))
            waiting.append(Waiting(candidate, cards, min(not_before, candidate.start)))
    return capacities, limits, bookings, waiting


@settings(max_examples=200, deadline=None)
@given(states())
def test_moves_are_earlier_fit_every_card_and_limit_and_serve_the_first_in_line(state) -> None:  # type: ignore[no-untyped-def]
    capacities, limits, bookings, waiting = state
    moves = advance(capacities, bookings, waiting, limits, NOW)
    by_id = {w.booking.id: w for w in waiting}
    after = {b.id: b for b in bookings}
    assert len({move.id for move in moves}) == len(moves)  # each moves at most once
    for move in moves:
        item = by_id[move.id]
        assert move.start <= item.booking.start  # never later: earlier, or shifted aside
        assert (move.card, move.start) != (item.booking.card, item.booking.start)
        assert move.start >= max(NOW, item.not_before)
        assert move.end - move.start == item.booking.end - item.booking.start
        assert move.card in item.cards
        after[move.id] = Placed(
            move.id, move.card, item.booking.owner, move.start, move.end, item.booking.mib
        )
    assert fits_everywhere(list(after.values()), capacities, limits)
    if waiting:  # the first in line lands where it would alone: creation order is served first
        first = waiting[0]
        others = [b for b in bookings if b.id != first.booking.id]
        assert after[first.booking.id].start <= earliest_minute(first, others, capacities, limits)
    for item in waiting:  # and when the pass ends, nobody could start earlier than they do
        now_at = after[item.booking.id]
        others = [b for b in after.values() if b.id != item.booking.id]
        if now_at.start > NOW:
            assert earliest_minute(item, others, capacities, limits, now_at) == now_at.start


def earliest_minute(
    item: Waiting,
    others: list[Placed],
    capacities: dict[str, int],
    limits: dict[str, int | None],
    at: Placed | None = None,
) -> datetime:
    """The brute force: the earliest minute before ``at`` (default: where ``item`` was placed)
    where it fits on one of its cards with ``others`` where they are; ``at``'s start if none."""
    booking = at or item.booking
    duration = booking.end - booking.start
    for k in range(0, 120):
        start = m(k)
        if start < max(NOW, item.not_before) or start >= booking.start:
            continue
        for card in item.cards:
            candidate = replace(booking, card=card, start=start, end=start + duration)
            if fits_everywhere([*others, candidate], capacities, limits):
                return start
    return booking.start


def test_a_move_lets_one_ahead_in_line_move_into_the_room_it_left() -> None:
    """The first in line cannot move until the second leaves its place; then it takes it."""
    capacities = {"c0": 8, "c1": 8, "c2": 8}
    fixed = Placed(0, "c0", "b", m(0), m(20), 8)  # c0 is full until minute 20
    blocker = Placed(1, "c1", "b", m(0), m(30), 8)  # c1 is full until minute 30
    first = Placed(2, "c1", "a", m(30), m(40), 8)
    second = Placed(3, "c0", "a", m(20), m(30), 8)  # holds c0 from 20; c2 is empty (new)
    waiting = [Waiting(first, ("c1", "c0"), NOW), Waiting(second, ("c0", "c2"), NOW)]
    moves = advance(capacities, [fixed, blocker, first, second], waiting, {}, NOW)
    assert [(move.id, move.card, move.start, move.was) for move in moves] == [
        (2, "c0", m(20), first),
        (3, "c2", NOW, second),
    ]


def test_a_pass_shifts_a_queued_booking_aside_for_one_that_can_then_start_earlier() -> None:
    """The whole-card booking waits behind a small one on the big card; the small one can run as
    early (its not-before) on the small card, which has room: it is shifted there, at its own
    start, and the whole-card booking takes the big card when the fixed booking ends."""
    capacities = {"big": 80, "small": 24}
    fixed = [Placed(0, "big", "x", m(0), m(30), 80), Placed(1, "small", "x", m(0), m(20), 24)]
    whole = Placed(2, "big", "a", m(40), m(50), 80)
    small = Placed(3, "big", "b", m(30), m(40), 8)
    waiting = [Waiting(whole, ("big",), NOW), Waiting(small, ("big", "small"), m(30))]
    moves = advance(capacities, [*fixed, whole, small], waiting, {}, NOW)
    assert [(move.id, move.card, move.start) for move in moves] == [
        (2, "big", m(30)),
        (3, "small", m(30)),
    ]


def test_earliest_start_waits_for_the_owners_other_booking_to_end() -> None:
    card = [Span(m(0), m(10), 8)]
    owner = [Span(m(0), m(20), 8)]  # on another card
    at = earliest_start(card, 16, owner, 10, 4, timedelta(minutes=5), m(0), m(60))
    assert at == m(20)
    assert earliest_start(card, 16, owner, None, 4, timedelta(minutes=5), m(0), m(60)) == m(0)
    assert earliest_start(card, 16, owner, 10, 4, timedelta(minutes=5), m(0), m(19)) is None


def test_ties_go_to_the_smallest_card_then_the_fullest() -> None:
    """At the same earliest start: the smallest card, even where a bigger one would be left
    fuller; among cards of one size, the one left fullest (best fit); then the order given."""
    big = Card("big", 80, [Span(m(0), m(60), 60)])  # 20 free: 10 more leaves it fullest
    small = Card("small", 24, [])
    other = Card("other", 24, [Span(m(0), m(60), 8)])
    found = earliest_placement(
        [big, small, other], [], None, 10, timedelta(minutes=30), m(0), m(60)
    )
    assert found == (other, m(0))
    assert earliest_placement([big, small], [], None, 10, timedelta(minutes=30), m(0), m(60)) == (
        small,
        m(0),
    )
    late = Card("small", 24, [Span(m(0), m(10), 20)])  # earlier first, whatever the size
    assert earliest_placement([big, late], [], None, 10, timedelta(minutes=30), m(0), m(60)) == (
        big,
        m(0),
    )


def test_room_a_move_frees_goes_to_the_head_of_the_line_first() -> None:
    """A booking made later never takes room an earlier one could use at that moment: the
    first in line cannot move until the second leaves c0 at 08:30; the third could take that
    room too (and would, were the line served on from where it stood), but the first gets it."""
    capacities = {"c0": 8, "c1": 8, "c2": 8}
    fixed = [Placed(0, "c0", "x", m(0), m(30), 8), Placed(1, "c2", "x", m(0), m(60), 8)]
    first = Placed(2, "c0", "a", m(40), m(50), 8)
    second = Placed(3, "c0", "b", m(30), m(40), 8)  # c1 is empty: it moves there, to now
    third = Placed(4, "c2", "c", m(60), m(70), 8)
    waiting = [
        Waiting(first, ("c0",), NOW),
        Waiting(second, ("c0", "c1"), NOW),
        Waiting(third, ("c0", "c2"), NOW),
    ]
    moves = advance(capacities, [*fixed, first, second, third], waiting, {}, NOW)
    assert [(move.id, move.card, move.start) for move in moves] == [
        (2, "c0", m(30)),
        (3, "c1", NOW),
        (4, "c0", m(40)),  # the room the first left
    ]


@settings(max_examples=150, deadline=None)
@given(states())
def test_the_pass_is_the_line_served_from_its_head_after_every_move(state) -> None:  # type: ignore[no-untyped-def]
    """The whole rule against its brute force, minute by minute: where every booking ends up."""
    capacities, limits, bookings, waiting = state
    moves = advance(capacities, bookings, waiting, limits, NOW)
    after = {b.id: b for b in bookings}
    for move in moves:
        after[move.id] = replace(after[move.id], card=move.card, start=move.start, end=move.end)
    assert after == served_in_line(capacities, limits, bookings, waiting)


def served_in_line(
    capacities: dict[str, int],
    limits: dict[str, int | None],
    bookings: list[Placed],
    waiting: list[Waiting],
) -> dict[int, Placed]:
    """The brute force of a pass: the first in line that can start at an earlier minute moves
    to the earliest such minute (on the smallest card, then the one left fullest, then the first
    it lists; else, at that minute, by shifting queued bookings aside — tried only where the card
    frees and at the not-before, as the rule says: :func:`shifted_at`), then the line is served
    again from its head; until nobody can move."""
    at = {b.id: b for b in bookings}
    while True:
        for item in waiting:
            booking = at[item.booking.id]
            if booking.start <= NOW:
                continue
            found = soonest(item, booking, at, waiting, capacities, limits)
            if found is not None:
                at |= found
                break
        else:
            return at


def soonest(
    item: Waiting,
    booking: Placed,
    at: dict[int, Placed],
    waiting: list[Waiting],
    capacities: dict[str, int],
    limits: dict[str, int | None],
) -> dict[int, Placed] | None:
    """Where ``booking`` and those it shifts go, at the earliest minute before its start."""
    others = [b for b in at.values() if b.id != booking.id]
    first = int((max(NOW, item.not_before) - BASE) / timedelta(minutes=1))
    for k in range(first, 120):
        if m(k) >= booking.start:
            break
        spot = earliest_spot(item, booking, others, capacities, limits, only=k)
        if spot is not None:
            return {booking.id: spot}
        for card in sorted(item.cards, key=lambda c: (capacities[c], item.cards.index(c))):
            if k != first and m(k) not in {b.end for b in others if b.card == card}:
                continue  # shifting is tried from the not-before and where the card frees
            moved = shifted_at(item, booking, card, k, at, waiting, capacities, limits)
            if moved is not None:
                return moved
    return None


def shifted_at(
    item: Waiting,
    booking: Placed,
    card: str,
    k: int,
    at: dict[int, Placed],
    waiting: list[Waiting],
    capacities: dict[str, int],
    limits: dict[str, int | None],
) -> dict[int, Placed] | None:
    """``booking`` on ``card`` at minute ``k`` once the queued bookings (not started) in the
    way are taken out and put back in line order: each where it was if it fits, else at its
    earliest minute no later than it was; ``None`` if none are in the way or one cannot."""
    new = replace(booking, card=card, start=m(k), end=m(k) + (booking.end - booking.start))
    aside = [
        w
        for w in waiting
        if w.booking.id != booking.id
        and at[w.booking.id].start > NOW
        and at[w.booking.id].card == card
        and at[w.booking.id].start < new.end
        and new.start < at[w.booking.id].end
    ]
    if not aside:
        return None
    out = {w.booking.id for w in aside}
    now_at = {i: b for i, b in at.items() if i not in out and i != booking.id} | {new.id: new}
    if not fits_everywhere(list(now_at.values()), capacities, limits):
        return None
    for w in aside:
        was = at[w.booking.id]
        if fits_everywhere([*now_at.values(), was], capacities, limits):
            now_at[was.id] = was
            continue
        spot = earliest_spot(w, was, list(now_at.values()), capacities, limits, until=was.start)
        if spot is None:
            return None
        now_at[was.id] = spot
    return {i: b for i, b in now_at.items() if i == booking.id or i in out}


def earliest_spot(
    item: Waiting,
    booking: Placed,
    others: list[Placed],
    capacities: dict[str, int],
    limits: dict[str, int | None],
    *,
    only: int | None = None,
    until: datetime | None = None,
) -> Placed | None:
    """The earliest minute (``only`` that one) before ``booking``'s start (or at ``until`` at
    the latest) where it fits with ``others``: on the smallest card, then the fullest, then the
    first listed."""
    duration = booking.end - booking.start
    minutes = int(duration / timedelta(minutes=1))
    limit = limits.get(booking.owner)
    for k in range(0, 120) if only is None else (only,):
        start = m(k)
        if start < max(NOW, item.not_before):
            continue
        if (start > until) if until is not None else (start >= booking.start):
            continue
        choices = []
        for order, card in enumerate(item.cards):
            window = range(k, k + minutes)
            held = max(held_at(others, i, card=card) for i in window)
            if held + booking.mib > capacities[card]:
                continue
            if limit is not None and any(
                held_at(others, i, owner=booking.owner) + booking.mib > limit for i in window
            ):
                continue
            spare = capacities[card] - held - booking.mib
            choices.append((capacities[card], spare, order, card))
        if choices:
            card = min(choices)[3]
            return replace(booking, card=card, start=start, end=start + duration)
    return None


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_a_new_booking_starts_soonest_and_shifts_queued_ones_never_later(state, data) -> None:  # type: ignore[no-untyped-def]
    capacities, limits, bookings, waiting = state
    cards = tuple(data.draw(st.permutations(sorted(capacities)))[: data.draw(st.integers(1, 3))])
    not_before = m(data.draw(st.integers(5, 30)))
    ask = Ask(
        data.draw(st.sampled_from(OWNERS)),
        data.draw(st.integers(1, 16)),
        timedelta(minutes=data.draw(st.integers(1, 15))),
        cards,
        not_before,
        not_before + timedelta(minutes=data.draw(st.integers(0, 60))),
    )
    spot = place(capacities, bookings, waiting, limits, NOW, ask)
    plain = earliest_placement(
        [Card(c, capacities[c], [b.span for b in bookings if b.card == c]) for c in cards],
        [b.span for b in bookings if b.owner == ask.owner],
        limits.get(ask.owner),
        ask.mib,
        ask.duration,
        ask.not_before,
        ask.latest_start,
    )
    alone = place(capacities, bookings, [], limits, NOW, ask)  # nobody to shift: the plain fit
    assert (alone and (alone.card, alone.start, alone.shifted)) == (
        plain and (plain[0].id, plain[1], ())
    )
    if spot is None:
        assert plain is None
        return
    assert spot.card in cards and ask.not_before <= spot.start <= ask.latest_start
    assert plain is None or spot.start <= plain[1]
    if not spot.shifted:
        assert (spot.card, spot.start) == (plain and (plain[0].id, plain[1]))
    by_id = {w.booking.id: w for w in waiting}
    after = {b.id: b for b in bookings}
    for move in spot.shifted:
        item = by_id[move.id]
        assert move.was == item.booking and item.booking.start > NOW  # queued, not started
        assert max(NOW, item.not_before) <= move.start <= item.booking.start  # never later
        assert (move.card, move.start) != (item.booking.card, item.booking.start)
        assert (
            move.card in item.cards
            and move.end - move.start == item.booking.end - item.booking.start
        )
        after[move.id] = replace(item.booking, card=move.card, start=move.start, end=move.end)
    new = Placed(-1, spot.card, ask.owner, spot.start, spot.start + ask.duration, ask.mib)
    assert fits_everywhere([*after.values(), new], capacities, limits)


def test_only_the_queued_bookings_in_the_way_are_shifted_and_in_line_order() -> None:
    """c0 is full from 08:10 with two queued 8s; a new 8 takes c0 at 08:10: both are taken out,
    then put back in line order — the first still fits where it was beside the new one, and
    stays; the second goes to c1 at 08:10, its own start (never later)."""
    capacities = {"c0": 16, "c1": 8}
    fixed = Placed(0, "c1", "x", m(0), m(10), 8)
    first = Placed(1, "c0", "a", m(10), m(20), 8)
    second = Placed(2, "c0", "b", m(10), m(20), 8)
    waiting = [Waiting(first, ("c0", "c1"), NOW), Waiting(second, ("c0", "c1"), NOW)]
    ask = Ask("c", 8, timedelta(minutes=10), ("c0",), m(10), m(60))
    spot = place(capacities, [fixed, first, second], waiting, {}, NOW, ask)
    assert spot is not None
    assert (spot.card, spot.start, spot.shifted) == (
        "c0",
        m(10),
        (Move(2, "c1", m(10), m(20), second),),
    )
    blocked = Placed(0, "c1", "x", m(0), m(15), 8)  # c1 only from 08:15: later, so nobody shifts
    spot = place(capacities, [blocked, first, second], waiting, {}, NOW, ask)
    assert spot is not None and (spot.card, spot.start, spot.shifted) == ("c0", m(20), ())
