"""The chart's stacking: bands per booking whose tops are, at every instant, the memory held."""

from __future__ import annotations

import random
from datetime import timedelta

from bot.core import capacity
from bot.core.snapshots import BookingInfo
from bot.core.timeline import Piece, stack
from bot.core.vocabulary import BookingStatus
from tests.conftest import T0, at

GB = 1024


def booking(
    id: int, mib: int, start_h: float, end_h: float, status: BookingStatus = BookingStatus.UPCOMING
) -> BookingInfo:
    start, end = T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h)
    return BookingInfo(
        id, "rtx-0", 24 * GB, f"U{id}", f"task {id}", mib, start, end, end, status, None, "U", T0
    )


def test_earlier_bookings_sit_lower_and_later_ones_drop_when_they_end() -> None:
    first, second = booking(1, 8 * GB, 1, 3), booking(2, 4 * GB, 2, 5)
    bands = stack([second, first], T0, T0 + timedelta(hours=6))
    assert [b.booking.id for b in bands] == [1, 2]
    assert bands[0].pieces == (Piece(at(9), at(11), 0, 8 * GB),)
    assert bands[1].pieces == (
        Piece(at(10), at(11), 8 * GB, 12 * GB),
        Piece(at(11), at(13), 0, 4 * GB),
    )
    assert bands[1].widest == Piece(at(11), at(13), 0, 4 * GB)


def test_a_band_keeps_one_piece_while_nothing_under_it_changes() -> None:
    base, top, later = booking(1, GB, 0, 10), booking(2, GB, 1, 9), booking(3, GB, 2, 3)
    bands = stack([base, top, later], T0, T0 + timedelta(hours=10))
    assert [len(b.pieces) for b in bands] == [1, 1, 1]


def test_cancelled_and_outside_bookings_are_left_out_and_pieces_are_clipped() -> None:
    cancelled = booking(1, GB, 1, 2, BookingStatus.CANCELLED)
    before, across = booking(2, GB, -3, -1), booking(3, 2 * GB, -1, 30)
    [band] = stack([cancelled, before, across], T0, T0 + timedelta(days=1))
    assert band.booking.id == 3
    assert band.pieces == (Piece(T0, T0 + timedelta(days=1), 0, 2 * GB),)


def test_the_top_of_the_stack_is_the_memory_held_at_every_instant() -> None:
    rnd = random.Random(7)
    for _ in range(50):
        found = [
            booking(i, rnd.choice([GB, 2 * GB, 5 * GB]), s, s + rnd.uniform(0.25, 8))
            for i in range(1, 30)
            for s in [rnd.uniform(-4, 24)]
        ]
        start, end = T0, T0 + timedelta(days=1)
        bands = stack(found, start, end)
        spans = [capacity.Span(b.start, b.end, b.memory_mib) for b in found]
        for step in capacity.profile(spans, start, end):
            probe = step.start + (step.end - step.start) / 2
            pieces = [p for b in bands for p in b.pieces if p.start <= probe < p.end]
            assert max((p.top_mib for p in pieces), default=0) == step.used_mib
            # no gaps, no overlaps: the pieces tile [0, held) exactly
            assert sorted((p.bottom_mib, p.top_mib) for p in pieces) == [
                (low, high)
                for low, high in zip(
                    [0, *sorted(p.top_mib for p in pieces)][:-1],
                    sorted(p.top_mib for p in pieces),
                    strict=True,
                )
            ]
