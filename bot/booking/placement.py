"""Where a request fits: the capacity check under the GPU lock, placement, and what to offer instead.

A refusal for lack of memory says what would work instead, and only what would: the earliest
window on the same GPU and, when sooner, one on another GPU (:class:`~bot.core.errors.CapacityError`
carries both, so an interface can offer them as buttons). Every window offered books as given: its
length passed the booking rules before the search, and the search never looks past the latest
start the rules allow (:func:`bot.core.rules.search_until`) — the rules of the person asking,
whose group may let them book further ahead, or less far, than everyone. A request bigger than
every GPU is
told so, naming the largest card, instead of being sent looking for a window; an extension that
does not fit is offered the longest one that does, never a new booking.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries, search
from bot.booking.base import ServiceBase
from bot.core import capacity, rules
from bot.core.errors import CapacityError, NotFound, SuggestedExtension, SuggestedSlot
from bot.core.phrases import Code
from bot.core.policy import Policy
from bot.core.sentence import Quote, Sentence, Size, Span, When, Window, say
from storage.models import Booking, Gpu


class Card(Protocol):
    """What weighing a request against a workspace's cards reads of each: a :class:`Gpu`, or
    its row (:func:`bot.booking.queries.gpu_sizes`)."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def capacity_mib(self) -> int: ...


class Offers(enum.Enum):
    """What a capacity refusal may offer, by what the refused request can still change."""

    #: a new booking: another window on its GPU, or a sooner one on another GPU
    ANY_GPU = enum.auto()
    #: an edit of a booking that has not started: another window, on its own GPU
    THIS_GPU = enum.auto()
    #: an edit of a started booking: its start and its GPU are fixed
    NOTHING = enum.auto()

    def reach(self, gpu: Gpu, gpus: Sequence[Card]) -> int:
        """The most memory a window offered could hold: beyond it, no offer can help."""
        if self is Offers.ANY_GPU:
            return largest(gpus).capacity_mib
        return gpu.capacity_mib if self is Offers.THIS_GPU else 0


class Placement(ServiceBase):
    """Capacity decisions that read the bookings of one or several GPUs."""

    async def check_fits(
        self,
        session: AsyncSession,
        gpu: Gpu,
        mib: int,
        start: datetime,
        end: datetime,
        *,
        policy: Policy,
        exclude: int | None = None,
        offers: Offers = Offers.ANY_GPU,
    ) -> None:
        """Raise CapacityError (with the numbers and ``offers``) unless ``mib`` fits on ``gpu``;
        ``policy`` is the booking rules of the person the booking is for (what may be offered)."""
        spans = (await queries.spans(session, [gpu.id], start, end, exclude=exclude))[gpu.id]
        peak = capacity.peak(spans, start, end)
        if peak.mib + mib <= gpu.capacity_mib:
            return
        gpus = await queries.gpu_sizes(session, gpu.team_id)
        if mib > gpu.capacity_mib:
            reasons = over_card(gpu, mib, gpus)
        else:
            reasons = (_not_enough(gpu, mib, start, end, peak),)
        same = other = None
        then: tuple[Sentence, ...] = ()
        if mib <= offers.reach(gpu, gpus):
            duration, until = end - start, self.search_until(start, policy)
            ask = search.Ask(gpu.id, gpu.capacity_mib, mib)
            found = await search.earliest_windows(
                session, [ask], duration, start, until, exclude=exclude
            )
            at = found[gpu.id]
            same = None if at is None else capacity_slot(gpu.name, at.start, duration, mib)
            if offers is Offers.ANY_GPU:
                other = await self.alternative(
                    session, gpus, gpu.id, mib, start, duration, until, same
                )
            then = _offers(gpu, same, other, until)
        raise CapacityError(
            reasons[0].code,
            gpu_name=gpu.name,
            capacity_mib=gpu.capacity_mib,
            peak_mib=peak.mib,
            requested_mib=mib,
            suggestion=same,
            alternative=other,
            also=(*reasons[1:], *then),
            **reasons[0].data,
        )

    async def check_extension_fits(
        self, session: AsyncSession, booking: Booking, new_end: datetime
    ) -> None:
        """Raise CapacityError unless ``booking`` can hold its memory on until ``new_end``.

        The refusal offers the longest extension that fits. It is shorter than the one asked
        for, which already passed the extension limit and the longest booking allowed, so it
        passes them too.
        """
        gpu, mib, end = booking.gpu, booking.memory_mib, booking.end_at
        spans = (await queries.spans(session, [gpu.id], end, new_end, exclude=booking.id))[gpu.id]
        peak = capacity.peak(spans, end, new_end)
        if peak.mib + mib <= gpu.capacity_mib:
            return
        until = capacity.fits_until(spans, gpu.capacity_mib, mib, end, new_end)
        offer = SuggestedExtension(booking.id, until - end, until) if until > end else None
        then = (
            say(Code.EXTEND_AT_MOST, longest=Span(offer.by), until=When(offer.end))
            if offer
            else say(Code.EXTEND_NONE, end=When(end))
        )
        shortfall = _not_enough(gpu, mib, end, new_end, peak)
        raise CapacityError(
            Code.EXTENSION_NOT_ENOUGH,
            gpu_name=gpu.name,
            capacity_mib=gpu.capacity_mib,
            peak_mib=peak.mib,
            requested_mib=mib,
            suggestion=None,
            extension=offer,
            field="duration",
            also=(then,),
            id=booking.id,
            by=Span(new_end - end),
            **shortfall.data,
        )

    def search_until(self, not_before: datetime, policy: Policy) -> datetime:
        """The latest start an offer for a request from ``not_before`` may have, under the
        booking rules ``policy`` of the person asking (``FairShare.policy_for``)."""
        return rules.search_until(policy, not_before, self.clock())

    async def alternative(
        self,
        session: AsyncSession,
        gpus: Sequence[Card],
        gpu_id: int | None,
        mib: int,
        start: datetime,
        duration: timedelta,
        latest: datetime,
        beat: SuggestedSlot | None,
    ) -> SuggestedSlot | None:
        """The soonest window on a GPU of ``gpus`` other than ``gpu_id`` starting by ``latest``,
        if sooner than ``beat``.

        Cards are read only as far ahead as the soonest window found so far (and never past
        ``beat``, which a window must precede): see :mod:`bot.booking.search`.
        """
        others = [g for g in gpus if g.id != gpu_id]
        if not others:
            return None
        if beat is not None:
            latest = min(latest, beat.start)
        asks = [search.Ask(g.id, g.capacity_mib, mib) for g in others]
        found = await search.earliest_windows(
            session, asks, duration, start, latest, first_only=True
        )
        best = search.soonest(found, [g.id for g in others])
        if best is None or (beat is not None and best[1].start >= beat.start):
            return None
        name = next(g.name for g in others if g.id == best[0])
        return capacity_slot(name, best[1].start, duration, mib)

    async def place(
        self,
        session: AsyncSession,
        team_id: str,
        memory: int | str,
        start: datetime,
        end: datetime,
        policy: Policy,
        *,
        among: Collection[str] | None = None,
    ) -> tuple[Gpu, int]:
        """Pick the best-fitting GPU for the window (of those named ``among``, when given: the
        cards of one host), deciding under the lock of every candidate (``policy``: the booking
        rules of the person it is for, which bound what is offered).

        The candidates (GPUs where the request fits by an unlocked read) are locked together in
        id order — the order every other multi-GPU lock takes — so two placements, or a
        placement and the lifecycle sweep, can wait for each other but never deadlock. The
        choice is then made again from what the locked rows say.
        """
        rules.refuse_percentage_without_gpu(memory)
        mib = rules.memory_mib(memory, None)
        gpus = [g for g in await queries.gpus(session, team_id) if among is None or g.name in among]
        if not gpus:
            raise NotFound(Code.NO_GPUS)
        refuse_if_too_big(gpus, mib)
        seen = await queries.spans(session, [g.id for g in gpus], start, end)
        candidates = [
            g.id for g in gpus if capacity.fits(seen[g.id], g.capacity_mib, mib, start, end)
        ]
        if candidates:
            await queries.lock_gpu_ids(session, candidates)
            locked = [g for g in gpus if g.id in candidates]
            spans = await queries.spans(session, candidates, start, end)
            loads = [capacity.GpuLoad(g, g.capacity_mib, spans[g.id]) for g in locked]
            placement = capacity.best_placement(loads, mib, end - start, start, start)
            if placement is not None:
                return placement.key, mib
        latest = self.search_until(start, policy)
        # Offers may name any card of the workspace, not only those ``among``.
        every = gpus if among is None else await queries.gpu_sizes(session, team_id)
        soonest = await self.alternative(
            session, every, None, mib, start, end - start, latest, None
        )
        then = (
            say(Code.SOONEST_ANYWHERE, gpu=Quote(soonest.gpu_name), window=slot_window(soonest))
            if soonest
            else say(Code.NOTHING_FITS_ANYWHERE, until=When(latest))
        )
        raise CapacityError(
            Code.NO_GPU_FREE,
            gpu_name="any",
            capacity_mib=0,
            peak_mib=0,
            requested_mib=mib,
            suggestion=soonest,
            also=(then,),
            asked=Size(mib),
            window=Window(start, end),
        )


def largest(gpus: Sequence[Card]) -> Card:
    """The GPU with the most memory (the first by name among equals); ``gpus`` is not empty."""
    return max(gpus, key=lambda g: g.capacity_mib)


def no_gpu_has(gpus: Sequence[Card], mib: int) -> Sentence:
    biggest = largest(gpus)
    return say(
        Code.NO_GPU_BIG_ENOUGH,
        asked=Size(mib),
        gpu=Quote(biggest.name),
        capacity=Size(biggest.capacity_mib),
    )


def refuse_if_too_big(gpus: Sequence[Card], mib: int, gpu: Gpu | None = None) -> None:
    """Refuse ``mib`` when ``gpu`` (``None``: every GPU of ``gpus``, the workspace's in service)
    can never hold it: no window, however far off, could help, so none is searched for."""
    target = gpu or largest(gpus)
    if mib <= target.capacity_mib:
        return
    reasons = over_card(gpu, mib, gpus) if gpu else (no_gpu_has(gpus, mib),)
    raise CapacityError(
        reasons[0].code,
        gpu_name=gpu.name if gpu else "any",
        capacity_mib=target.capacity_mib,
        peak_mib=0,
        requested_mib=mib,
        suggestion=None,
        also=reasons[1:],
        **reasons[0].data,
    )


def over_card(gpu: Gpu, mib: int, gpus: Sequence[Card]) -> tuple[Sentence, ...]:
    """Why ``mib`` can never fit on ``gpu``, and whether any GPU of ``gpus`` is big enough."""
    data = {"gpu": Quote(gpu.name), "capacity": Size(gpu.capacity_mib), "asked": Size(mib)}
    if largest(gpus).capacity_mib <= gpu.capacity_mib:
        return (say(Code.OVER_LARGEST, **data),)
    reason = say(Code.OVER_CARD, **data)
    if largest(gpus).capacity_mib < mib:
        return reason, no_gpu_has(gpus, mib)
    return (reason,)


def _not_enough(
    gpu: Gpu, mib: int, start: datetime, end: datetime, peak: capacity.Peak
) -> Sentence:
    return say(
        Code.NOT_ENOUGH,
        gpu=Quote(gpu.name),
        window=Window(start, end),
        held=Size(peak.mib),
        capacity=Size(gpu.capacity_mib),
        peak=Window(peak.start, peak.end, zone=False),
        free=Size(gpu.capacity_mib - peak.mib),
        asked=Size(mib),
    )


def _offers(
    gpu: Gpu, same: SuggestedSlot | None, other: SuggestedSlot | None, until: datetime
) -> tuple[Sentence, ...]:
    offers = []
    if same is not None:
        offers.append(say(Code.EARLIEST_HERE, gpu=Quote(gpu.name), window=slot_window(same)))
    if other is not None:
        code = Code.SOONER_ELSEWHERE if same is not None else Code.FITS_ELSEWHERE
        offers.append(say(code, gpu=Quote(other.gpu_name), window=slot_window(other)))
    if same is None and other is None:
        offers.append(say(Code.NOTHING_FITS, until=When(until)))
    return tuple(offers)


def capacity_slot(gpu_name: str, at: datetime, duration: timedelta, mib: int) -> SuggestedSlot:
    return SuggestedSlot(gpu_name, at, at + duration, mib)


def slot_window(slot: SuggestedSlot) -> Window:
    return Window(slot.start, slot.end)
