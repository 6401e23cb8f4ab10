"""The pool at a glance: which GPUs a status shows when there are more than fit a screen.

A message holds 50 blocks and a Home 100, and nobody reads 200 lines of cards anyway. So a
large pool (or a filter matching many cards) is shown as one summary line for all of them plus
the cards that matter to the asker, chosen here from one cheap row per card: the cards they hold
memory on now, those whose measured use needs a look (beyond what is booked, or silent), then
those with the most room now. Only the chosen cards are then read in detail (next change,
measured figures), so a status costs what it shows, not the size of the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.core.snapshots import GpuStatus
from bot.core.usage import LiveCard

#: Cards a status or the Home shows one by one; a pool (or filter) of more is summarised.
SHOWN_CARDS = 20


@dataclass(frozen=True)
class CardNow:
    """One GPU in service as the pool summary sees it: held now, and what marks it out."""

    gpu_id: int
    name: str
    capacity_mib: int
    held_mib: int
    #: The asker holds memory on it now.
    mine: bool
    #: Its measured use needs a look: beyond what bookings hold, or no report lately.
    problem: bool

    @property
    def free_mib(self) -> int:
        return max(self.capacity_mib - self.held_mib, 0)


@dataclass(frozen=True)
class PoolSummary:
    """Every GPU a status covers (all of them, or those matching ``pattern``), in figures."""

    gpus: int
    capacity_mib: int
    held_mib: int
    #: GPUs with some memory free now; of them, those with nothing held at all.
    with_room: int
    idle: int
    problems: int
    pattern: str | None = None


@dataclass(frozen=True)
class PoolStatus:
    """What a status shows: the summary of the cards covered, and the cards shown one by one
    (all of them when they are at most the number asked for), with their measured use."""

    summary: PoolSummary
    shown: list[GpuStatus]
    live: dict[str, LiveCard]

    @property
    def complete(self) -> bool:
        """Every covered card is shown: the status looks as it always did for a small pool."""
        return len(self.shown) == self.summary.gpus


def matches(pattern: str | None, name: str) -> bool:
    """Whether a GPU name is covered by a status filter: a shell-style pattern (``a100-*``,
    ``gpu-?``), or a plain word naming the start of the name (``a100`` for ``a100-3``)."""
    if pattern is None:
        return True
    pattern = pattern.lower()
    if not any(c in pattern for c in "*?["):
        pattern += "*"
    return fnmatchcase(name.lower(), pattern)


def summarise(cards: Sequence[CardNow], pattern: str | None = None) -> PoolSummary:
    return PoolSummary(
        gpus=len(cards),
        capacity_mib=sum(c.capacity_mib for c in cards),
        held_mib=sum(c.held_mib for c in cards),
        with_room=sum(1 for c in cards if c.free_mib > 0),
        idle=sum(1 for c in cards if c.held_mib == 0),
        problems=sum(1 for c in cards if c.problem),
        pattern=pattern,
    )


def cards_to_show(cards: Sequence[CardNow], limit: int = SHOWN_CARDS) -> list[CardNow]:
    """At most ``limit`` of ``cards``: the asker's, then those with a problem, then the most
    room now (ties by name); in that order, which is the order they are listed in."""

    def rank(c: CardNow) -> tuple[int, int, int, str]:
        return (0 if c.mine else 1, 0 if c.problem else 1, -c.free_mib, c.name)

    return sorted(cards, key=rank)[:limit]
