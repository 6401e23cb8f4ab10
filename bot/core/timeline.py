"""A GPU's memory over time as stacked bands, one per booking: what a chart draws.

At every instant the bookings holding memory are stacked bottom-up in the order they started
(then by id), so the top of the stack is exactly the memory held then — never above the card,
since the service never lets it be — and a booking stays where it is until one below it ends.
A booking's band is therefore a run of rectangles (:class:`Piece`), one per stretch of time
during which the bookings under it do not change. Cancelled bookings never held memory and are
left out; times are clipped to the window drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.core.snapshots import BookingInfo
from bot.core.vocabulary import BookingStatus


@dataclass(frozen=True)
class Piece:
    """A rectangle of a band: ``[start, end)`` in time, ``[bottom_mib, top_mib)`` in memory."""

    start: datetime
    end: datetime
    bottom_mib: int
    top_mib: int


@dataclass(frozen=True)
class Band:
    booking: BookingInfo
    pieces: tuple[Piece, ...]

    @property
    def widest(self) -> Piece:
        """The longest piece: where a label has the most room."""
        return max(self.pieces, key=lambda p: (p.end - p.start, -p.bottom_mib))


def stack(bookings: Iterable[BookingInfo], start: datetime, end: datetime) -> list[Band]:
    """The bands of the bookings holding memory inside ``[start, end)``, in stacking order."""
    held = sorted(
        (
            b
            for b in bookings
            if b.status != BookingStatus.CANCELLED and b.start < end and b.end > start
        ),
        key=lambda b: (b.start, b.id),
    )
    edges = sorted({start, end} | {t for b in held for t in (b.start, b.end) if start < t < end})
    pieces: dict[int, list[Piece]] = {b.id: [] for b in held}
    for left, right in zip(edges, edges[1:], strict=False):
        bottom = 0
        for b in held:
            if b.start < right and b.end > left:
                _extend(pieces[b.id], Piece(left, right, bottom, bottom + b.memory_mib))
                bottom += b.memory_mib
    return [Band(b, tuple(pieces[b.id])) for b in held]


def _extend(pieces: list[Piece], piece: Piece) -> None:
    """Add ``piece``, merged into the previous one when it simply continues it."""
    last = pieces[-1] if pieces else None
    if last is not None and last.end == piece.start and last.bottom_mib == piece.bottom_mib:
        pieces[-1] = Piece(last.start, piece.end, last.bottom_mib, last.top_mib)
    else:
        pieces.append(piece)
