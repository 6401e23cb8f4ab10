"""Bookings held against measured use: given the latest reports and the active bookings, what is
wrong on each card. Pure, so every rule is testable without a database or a clock.

- **Over-use**: a person's processes on a card use more than their active bookings there hold,
  beyond the tolerance, in the last two reports in a row (one spike is not an episode).
- **Unbooked use**: a linked person's processes use more than the tolerance on a card where they
  hold nothing, in the last two reports in a row.
- **Idle booking**: an active booking, begun at least ``idle_after`` ago, whose owner has had no
  process on its card for ``idle_after``, on a card that has been reporting all that time. Owners
  with no linked login are never called idle: gpubook cannot see their processes.

Cards whose host is silent yield nothing: no finding is made (or cleared) on stale numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.vocabulary import FindingKind

Readings = Mapping[str, int | None]


@dataclass(frozen=True)
class CardState:
    """A bound card's latest two reports and when each login was last seen on it."""

    gpu_id: int
    capacity_mib: int
    reported_at: datetime
    first_seen_at: datetime
    users: Readings
    prev_users: Readings | None
    seen: Mapping[str, datetime]


@dataclass(frozen=True)
class Holding:
    """An active booking."""

    booking_id: int
    gpu_id: int
    user_id: str
    memory_mib: int
    start: datetime


@dataclass(frozen=True)
class Limits:
    tolerance_mib: int
    idle_after: timedelta
    silent_after: timedelta


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    gpu_id: int
    user_id: str
    #: Measured MiB (the latest report); 0 for an idle booking.
    used_mib: int = 0
    #: What the person's active bookings on the card hold.
    booked_mib: int = 0
    #: The booking concerned: the one to raise (over-use), the idle one.
    booking_id: int | None = None
    #: What other people's bookings hold on the card.
    others_mib: int = 0

    @property
    def subject(self) -> str:
        """Whom the episode is about: the booking when idle, else the person."""
        return str(self.booking_id) if self.kind == FindingKind.IDLE else self.user_id

    @property
    def key(self) -> tuple[FindingKind, int, str]:
        return (self.kind, self.gpu_id, self.subject)


def per_person(readings: Readings, links: Mapping[str, str]) -> dict[str, int | None]:
    """Memory per linked Slack user: the sum of their logins' known MiB, ``None`` when NVML
    could tell nothing for any of them. Unlinked logins are left out."""
    people: dict[str, int | None] = {}
    for login, mib in readings.items():
        user = links.get(login)
        if user is None:
            continue
        if mib is None:
            people.setdefault(user, None)
        else:
            people[user] = (people.get(user) or 0) + mib
    return people


def live(card: CardState, now: datetime, limits: Limits) -> bool:
    return now - card.reported_at <= limits.silent_after


def reconcile(
    cards: Iterable[CardState],
    holdings: Iterable[Holding],
    links: Mapping[str, str],
    now: datetime,
    limits: Limits,
) -> list[Finding]:
    by_gpu: dict[int, list[Holding]] = {}
    for holding in holdings:
        by_gpu.setdefault(holding.gpu_id, []).append(holding)
    logins: dict[str, list[str]] = {}
    for login, user in links.items():
        logins.setdefault(user, []).append(login)
    findings: list[Finding] = []
    for card in cards:
        if live(card, now, limits):
            held = by_gpu.get(card.gpu_id, [])
            findings += _use(card, held, links, limits)
            findings += _idle(card, held, logins, now, limits)
    return findings


def _use(
    card: CardState, held: list[Holding], links: Mapping[str, str], limits: Limits
) -> list[Finding]:
    if card.prev_users is None:
        return []
    latest, before = per_person(card.users, links), per_person(card.prev_users, links)
    findings = []
    for user, used in latest.items():
        previous = before.get(user)
        if used is None or previous is None:
            continue
        mine = [h for h in held if h.user_id == user]
        booked = sum(h.memory_mib for h in mine)
        others = sum(h.memory_mib for h in held if h.user_id != user)
        limit = booked + limits.tolerance_mib
        if used <= limit or previous <= limit:
            continue
        if mine:
            biggest = max(mine, key=lambda h: (h.memory_mib, h.booking_id))
            findings.append(
                Finding(
                    FindingKind.OVERUSE, card.gpu_id, user, used, booked, biggest.booking_id, others
                )
            )
        else:
            findings.append(Finding(FindingKind.UNBOOKED, card.gpu_id, user, used, 0, None, others))
    return findings


def _idle(
    card: CardState,
    held: list[Holding],
    logins: Mapping[str, list[str]],
    now: datetime,
    limits: Limits,
) -> list[Finding]:
    since = now - limits.idle_after
    if card.first_seen_at > since:
        return []  # not reporting long enough to say nobody was there
    findings = []
    for holding in held:
        mine = logins.get(holding.user_id)
        if holding.start > since or not mine:
            continue
        seen = [card.seen[login] for login in mine if login in card.seen]
        seen += [card.reported_at for login in mine if login in card.users]
        if not seen or max(seen) <= since:
            findings.append(
                Finding(
                    FindingKind.IDLE,
                    card.gpu_id,
                    holding.user_id,
                    booked_mib=holding.memory_mib,
                    booking_id=holding.booking_id,
                )
            )
    return findings
