"""What the bot tells a host's agent about the bookings on its cards, and how ``gpubook run`` uses it.

The bot answers every report with the host's bound cards and the bookings on them that are under
way or start within :data:`LOOKAHEAD` — each with its owner's linked Unix logins. The agent keeps
the latest answer and decides by its own clock, so a booking that ends between two reports ends
on time, and one that starts between them is found without waiting for the next. Who asks is never
taken from the request: the agent reads the caller's uid from the Unix socket (:mod:`bot.agent.desk`).

:func:`grant` is that decision, pure: the caller's booking under way (on ``--gpu`` when named),
or a refusal that says why — none, not yet, someone else's card, which of two — with an offer to
book now when memory is free. :meth:`Grant.environment` is what ``gpubook run`` sets for the
command: the card by UUID, and the memory caps the stacks that have one honour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.errors import InputError, NotFound, PermissionDenied
from bot.core.formats import typed_size
from bot.core.phrases import Code
from bot.core.sentence import Quote, Size, When, say

#: Bookings starting this soon after a report ride along with it.
LOOKAHEAD = timedelta(hours=1)
#: What ``gpubook run`` offers to book when the caller has nothing (at most what is free).
OFFER_MIB = 8 * 1024
OFFER_FOR = "2h"


@dataclass(frozen=True)
class HostCard:
    """A card of the host bound to a GPU: its UUID, the GPU's name and what it can hold."""

    uuid: str
    gpu: str
    #: The memory the card has (as the agent measured it): the base of memory fractions.
    total_mib: int
    #: The memory bookings may hold on it (the GPU's capacity in gpubook).
    capacity_mib: int


@dataclass(frozen=True)
class HostBooking:
    id: int
    uuid: str
    #: The Unix logins linked to the booking's owner.
    logins: tuple[str, ...]
    memory_mib: int
    start: datetime
    end: datetime

    def under_way(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class HostBookings:
    cards: tuple[HostCard, ...] = ()
    bookings: tuple[HostBooking, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "cards": [
                {
                    "uuid": c.uuid,
                    "gpu": c.gpu,
                    "total_mib": c.total_mib,
                    "capacity_mib": c.capacity_mib,
                }
                for c in self.cards
            ],
            "bookings": [
                {
                    "id": b.id,
                    "uuid": b.uuid,
                    "logins": list(b.logins),
                    "memory_mib": b.memory_mib,
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                }
                for b in self.bookings
            ],
        }

    def card_named(self, gpu: str) -> HostCard | None:
        return next((c for c in self.cards if c.gpu == gpu), None)

    def free_now(self, now: datetime) -> dict[str, int]:
        """What bookings leave free on each card right now, by GPU name."""
        held = {c.uuid: 0 for c in self.cards}
        for booking in self.bookings:
            if booking.under_way(now) and booking.uuid in held:
                held[booking.uuid] += booking.memory_mib
        return {c.gpu: max(c.capacity_mib - held[c.uuid], 0) for c in self.cards}


def parse_host_bookings(data: Any) -> HostBookings:
    """The bot's answer read back; ``ValueError`` if it is not one (an older bot, a proxy's page)."""
    try:
        cards = tuple(
            HostCard(str(c["uuid"]), str(c["gpu"]), int(c["total_mib"]), int(c["capacity_mib"]))
            for c in data["cards"]
        )
        bookings = tuple(
            HostBooking(
                int(b["id"]),
                str(b["uuid"]),
                tuple(str(login) for login in b["logins"]),
                int(b["memory_mib"]),
                _aware(b["start"]),
                _aware(b["end"]),
            )
            for b in data["bookings"]
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a list of host bookings ({exc!r})") from None
    return HostBookings(cards, bookings)


def _aware(text: Any) -> datetime:
    at = datetime.fromisoformat(str(text))
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return at


@dataclass(frozen=True)
class Grant:
    """The caller's card and what their bookings under way on it hold together."""

    card: HostCard
    bookings: tuple[HostBooking, ...]

    @property
    def memory_mib(self) -> int:
        return sum(b.memory_mib for b in self.bookings)

    @property
    def end(self) -> datetime:
        return max(b.end for b in self.bookings)

    def environment(self) -> dict[str, str]:
        """The variables ``gpubook run`` sets. Only the card is certain to be obeyed (CUDA shows
        the process no other); the caps bind JAX (its allocator stops at the fraction, even
        without preallocating) and MPS clients (a daemon ignores a limit for a card the client
        cannot see, so the one visible card is ordinal 0); the rest is for the program to use."""
        total = self.card.total_mib
        fraction = min(self.memory_mib / total, 1.0) if total > 0 else 1.0
        return {
            "CUDA_VISIBLE_DEVICES": self.card.uuid,
            "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{int(fraction * 1000) / 1000:.3f}",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": f"0={self.memory_mib}M",
            "GPUBOOK_GPU": self.card.gpu,
            "GPUBOOK_BOOKING": ",".join(str(b.id) for b in self.bookings),
            "GPUBOOK_MEMORY_MIB": str(self.memory_mib),
            "GPUBOOK_MEMORY_FRACTION": f"{fraction:.4f}",
            "GPUBOOK_UNTIL": self.end.isoformat(),
        }


def grant(
    known: HostBookings, login: str, now: datetime, gpu: str | None = None, command: str = "CMD"
) -> Grant:
    """The card ``login`` may run on now (on ``gpu`` when named), or a refusal saying why."""
    card = None
    if gpu is not None:
        card = known.card_named(gpu)
        if card is None:
            names = ", ".join(c.gpu for c in known.cards) or "none"
            raise NotFound(Code.RUN_GPU_NOT_HERE, gpu=Quote(gpu), gpus=names)
    mine = [
        b
        for b in known.bookings
        if login in b.logins and b.end > now and (card is None or b.uuid == card.uuid)
    ]
    under_way = [b for b in mine if b.start <= now]
    cards = {c.uuid: c for c in known.cards}
    on = sorted({b.uuid for b in under_way if b.uuid in cards}, key=lambda u: cards[u].gpu)
    if len(on) > 1:
        names = ", ".join(cards[u].gpu for u in on)
        raise InputError(Code.RUN_WHICH_GPU, gpus=names)
    if on:
        return Grant(cards[on[0]], tuple(b for b in under_way if b.uuid == on[0]))
    later = min(mine, key=lambda b: b.start, default=None)
    if later is not None and later.uuid in cards:
        raise PermissionDenied(
            Code.RUN_NOT_YET, id=later.id, gpu=Quote(cards[later.uuid].gpu), at=When(later.start)
        )
    where = Code.RUN_NOTHING_ON if card is not None else Code.RUN_NOTHING_HERE
    raise PermissionDenied(
        where,
        login=Quote(login),
        name=login,
        gpu=Quote(gpu or ""),
        also=_offer(known, now, card, command),
    )


def _offer(
    known: HostBookings, now: datetime, card: HostCard | None, command: str
) -> tuple[Any, ...]:
    """A booking to make now, if any memory is free (on ``card``, else where most is)."""
    free = known.free_now(now)
    candidates = [card.gpu] if card is not None else sorted(free, key=lambda g: (-free[g], g))
    if not candidates or free.get(candidates[0], 0) < 1024:
        return ()
    name = candidates[0]
    size = min(OFFER_MIB, free[name] // 1024 * 1024)
    example = f"gpubook run --gpu {name} --book {typed_size(size)} --for {OFFER_FOR} -- {command}"
    return (say(Code.RUN_OFFER, gpu=Quote(name), free=Size(free[name]), example=Quote(example)),)


def host_bookings_from(data: Mapping[str, Any]) -> HostBookings | None:
    """The host bookings an answer of the bot carries, or ``None`` when it carries none."""
    found = data.get("host_bookings") if isinstance(data, Mapping) else None
    return parse_host_bookings(found) if found is not None else None
