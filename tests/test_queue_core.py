"""The queue's re-placement, against a brute-force oracle (minute by minute).

For any set of bookings on a few cards, some of them flexible: no flexible booking ever moves
later (or before its earliest start, or once started), no card is ever over-full, no owner ever
holds more than their max-held, and the first flexible booking in line lands on the earliest
minute where it fits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.capacity import Span
from bot.core.queue import Placed, Waiting, advance, earliest_start

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
        assert move.start < item.booking.start  # never later, never in place
        assert move.start >= max(NOW, item.not_before)
        assert move.end - move.start == item.booking.end - item.booking.start
        assert move.card in item.cards
        after[move.id] = Placed(
            move.id, move.card, item.booking.owner, move.start, move.end, item.booking.mib
        )
    assert fits_everywhere(list(after.values()), capacities, limits)
    if waiting:
        first = waiting[0]
        others = [b for b in bookings if b.id != first.booking.id]
        duration = first.booking.end - first.booking.start
        earliest = first.booking.start
        for k in range(0, 120):
            start = m(k)
            if start < max(NOW, first.not_before) or start >= earliest:
                continue
            for card in first.cards:
                candidate = Placed(
                    first.booking.id,
                    card,
                    first.booking.owner,
                    start,
                    start + duration,
                    first.booking.mib,
                )
                if fits_everywhere([*others, candidate], capacities, limits):
                    earliest = min(earliest, start)
        assert after[first.booking.id].start == earliest


def test_earliest_start_waits_for_the_owners_other_booking_to_end() -> None:
    card = [Span(m(0), m(10), 8)]
    owner = [Span(m(0), m(20), 8)]  # on another card
    at = earliest_start(card, 16, owner, 10, 4, timedelta(minutes=5), m(0), m(60))
    assert at == m(20)
    assert earliest_start(card, 16, owner, None, 4, timedelta(minutes=5), m(0), m(60)) == m(0)
    assert earliest_start(card, 16, owner, 10, 4, timedelta(minutes=5), m(0), m(19)) is None
