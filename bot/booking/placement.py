"""Where a request fits: the capacity check under the GPU lock, placement, and suggestions.

A refusal for lack of memory always says what would work instead: the earliest window on the
same GPU and, when sooner, one on another GPU (:class:`~bot.core.errors.CapacityError` carries
both, so an interface can offer them as buttons).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries
from bot.booking.base import ServiceBase
from bot.core import capacity, rules
from bot.core.errors import CapacityError, NotFound, SuggestedSlot
from bot.core.phrases import Code
from bot.core.sentence import Quote, Sentence, Size, Span, Window, say
from storage.models import Gpu


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
        exclude: int | None = None,
    ) -> None:
        """Raise CapacityError (with the numbers and suggestions) unless ``mib`` fits on ``gpu``."""
        spans = (await queries.spans(session, [gpu.id], start, end, exclude=exclude))[gpu.id]
        peak = capacity.peak(spans, start, end)
        if peak.mib + mib <= gpu.capacity_mib:
            return
        duration = end - start
        latest = start + self.policy.search_horizon
        spans = (await queries.spans(session, [gpu.id], start, latest + duration, exclude=exclude))[
            gpu.id
        ]
        at = capacity.earliest_fit(spans, gpu.capacity_mib, mib, duration, start, latest)
        same = None if at is None else capacity_slot(gpu.name, at, duration, mib)
        other = await self.alternative(session, gpu.team_id, gpu.id, mib, start, duration, same)
        main = self._shortfall(gpu, mib, start, end, peak, other is not None)
        raise CapacityError(
            main.code,
            gpu_name=gpu.name,
            capacity_mib=gpu.capacity_mib,
            peak_mib=peak.mib,
            requested_mib=mib,
            suggestion=same,
            alternative=other,
            also=self._offers(gpu, same, other),
            **main.data,
        )

    async def alternative(
        self,
        session: AsyncSession,
        team_id: str,
        gpu_id: int | None,
        mib: int,
        start: datetime,
        duration: timedelta,
        beat: SuggestedSlot | None,
    ) -> SuggestedSlot | None:
        """The soonest window on another GPU, if it is sooner than ``beat``."""
        others = [g for g in await queries.gpus(session, team_id) if g.id != gpu_id]
        if not others:
            return None
        latest = start + self.policy.search_horizon
        spans = await queries.spans(session, [g.id for g in others], start, latest + duration)
        loads = [capacity.GpuLoad(g, g.capacity_mib, spans[g.id]) for g in others]
        placement = capacity.best_placement(loads, mib, duration, start, latest)
        if placement is None or (beat is not None and placement.start >= beat.start):
            return None
        return capacity_slot(placement.key.name, placement.start, duration, mib)

    async def place(
        self,
        session: AsyncSession,
        team_id: str,
        memory: int | str,
        start: datetime,
        end: datetime,
    ) -> tuple[Gpu, int]:
        """Pick the best-fitting GPU for the window, deciding under the lock of every candidate.

        The candidates (GPUs where the request fits by an unlocked read) are locked together in
        id order — the order every other multi-GPU lock takes — so two placements, or a
        placement and the lifecycle sweep, can wait for each other but never deadlock. The
        choice is then made again from what the locked rows say.
        """
        rules.refuse_percentage_without_gpu(memory)
        mib = rules.memory_mib(memory, None)
        gpus = await queries.gpus(session, team_id)
        if not gpus:
            raise NotFound(Code.NO_GPUS)
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
        soonest = await self.alternative(session, team_id, None, mib, start, end - start, None)
        then = (
            say(Code.SOONEST_ANYWHERE, gpu=Quote(soonest.gpu_name), window=slot_window(soonest))
            if soonest
            else say(Code.NOTHING_FITS_ANYWHERE, horizon=Span(self.policy.search_horizon))
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

    @staticmethod
    def _shortfall(
        gpu: Gpu,
        mib: int,
        start: datetime,
        end: datetime,
        peak: capacity.Peak,
        elsewhere: bool,
    ) -> Sentence:
        if mib > gpu.capacity_mib:
            code = Code.OVER_CARD_ELSEWHERE if elsewhere else Code.OVER_CARD
            return say(code, gpu=Quote(gpu.name), capacity=Size(gpu.capacity_mib), asked=Size(mib))
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
        self, gpu: Gpu, same: SuggestedSlot | None, other: SuggestedSlot | None
    ) -> tuple[Sentence, ...]:
        offers = []
        if same is not None:
            offers.append(say(Code.EARLIEST_HERE, gpu=Quote(gpu.name), window=slot_window(same)))
        if other is not None:
            code = Code.SOONER_ELSEWHERE if same is not None else Code.FITS_ELSEWHERE
            offers.append(say(code, gpu=Quote(other.gpu_name), window=slot_window(other)))
        if same is None and other is None:
            offers.append(say(Code.NOTHING_FITS, horizon=Span(self.policy.search_horizon)))
        return tuple(offers)


def capacity_slot(gpu_name: str, at: datetime, duration: timedelta, mib: int) -> SuggestedSlot:
    return SuggestedSlot(gpu_name, at, at + duration, mib)


def slot_window(slot: SuggestedSlot) -> Window:
    return Window(slot.start, slot.end)
