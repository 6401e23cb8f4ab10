"""Recurring bookings: a series booked, or ended from one occurrence on, in one transaction.

Every occurrence passes the rules a single booking does (its window, its length, how far ahead it
starts) and the same capacity check, all under the GPU's lock taken once for the whole series: two
series racing for a card are serialised like two bookings, and neither can over-book it. An
occurrence is also checked against the ones of its own series already accepted, so a series can
never over-book the card with itself.

A series is all or nothing by default: when any occurrence does not fit, nothing is booked, and
the refusal names each one that does not with why, and offers to book the ones that fit
(``partial=True``, which books what fits *then* and leaves the rest).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries, transitions
from bot.booking.limits import FairShare
from bot.booking.placement import Placement, refuse_if_too_big
from bot.booking.snapshots import booking_info
from bot.core import capacity, rules
from bot.core.actor import Actor
from bot.core.errors import GpubookError, InputError, InvalidState, SeriesOffer, SeriesRefused
from bot.core.phrases import Code
from bot.core.recurrence import Occurrence, Recurrence, expand
from bot.core.sentence import Quote, Sentence, Size, Window, say
from bot.core.snapshots import BookingInfo, SeriesResult
from bot.core.vocabulary import AuditAction, BookingStatus, ChangeVerb, EndReason, NoticeKind
from storage.models import Booking, BookingSeries, Gpu

#: Occurrences a refusal names one by one; the rest are counted.
MAX_LISTED_MISSES = 10


class SeriesEdits(Placement, FairShare):
    """Changing the rest of a series: each occurrence checked as booking it anew would be."""

    async def update_series(
        self,
        actor: Actor,
        booking_id: int,
        *,
        task: str | None = None,
        memory: int | str | None = None,
        length: timedelta | None = None,
    ) -> SeriesResult:
        """Change the task, memory and/or length of the occurrences of ``booking_id``'s series that
        have not started, from it on; each keeps its start. All or nothing, like booking it."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.EDIT)
            if booking.series_id is None:
                raise InvalidState(Code.NOT_A_SERIES, id=booking.id, verb=str(ChangeVerb.EDIT))
            self.require_holding(booking, ChangeVerb.EDIT)
            rest = list(
                await session.scalars(
                    select(Booking)
                    .where(
                        Booking.series_id == booking.series_id,
                        Booking.start_at >= booking.start_at,
                        Booking.status == BookingStatus.UPCOMING,
                    )
                    .order_by(Booking.start_at)
                )
            )
            if not rest:
                raise InvalidState(Code.SERIES_NOTHING_LATER, id=booking.id)
            gpu = booking.gpu
            mib = (
                booking.memory_mib if memory is None else rules.memory_mib(memory, gpu.capacity_mib)
            )
            clean = (
                None
                if task is None
                else rules.clean_text(task, self.policy.max_task_chars, "task", required=True)
            )
            windows = [(b.start_at, b.start_at + length if length else b.end_at) for b in rest]
            misses = await self._refit(session, actor, booking, rest, windows, mib)
            if misses:
                raise _refusal(misses, len(rest), None, Code.SERIES_EDIT_REFUSED)
            journal = self.journal(session, now)
            for each, (_, end) in zip(rest, windows, strict=True):
                before = {
                    "task": each.task,
                    "memory_mib": each.memory_mib,
                    "end": each.end_at.isoformat(),
                }
                each.task = clean or each.task
                each.memory_mib, each.end_at, each.original_end_at, each.updated_at = (
                    mib,
                    end,
                    end,
                    now,
                )
                after = {"task": each.task, "memory_mib": mib, "end": end.isoformat()}
                changes = {"series": each.series_id, "before": before, "after": after}
                journal.audit(actor.user_id, AuditAction.UPDATE, each, changes)
            journal.tell_owner_if_not(actor.user_id, rest[0], "edited")
            return SeriesResult(booking.series_id, [booking_info(b) for b in rest], [])

    async def _refit(
        self,
        session: AsyncSession,
        actor: Actor,
        booking: Booking,
        rest: list[Booking],
        windows: list[tuple[datetime, datetime]],
        mib: int,
    ) -> list[Sentence]:
        """Why each edited occurrence of ``rest`` (new ``windows``, ``mib``) does not fit, if any.

        Each passes the owner's longest booking, the card and the owner's limits spanning cards
        (checked under their lock, taken after the GPU's), counting the edited occurrences before
        it but none of the old forms of the rest: an edit may not do what booking it anew may not.
        """
        gpu = booking.gpu
        owners = await self.limits_for(session, actor.team_id, booking.user_id)
        policy = self.policy_for(owners)
        ids = [b.id for b in rest]
        last = max(end for _, end in windows)
        spans = (await queries.spans(session, [gpu.id], rest[0].start_at, last, exclude=ids))[
            gpu.id
        ]
        misses: list[Sentence] = []
        accepted: list[capacity.Span] = []
        for each, (start, end) in zip(rest, windows, strict=True):
            try:
                rules.check_length(policy, start, end)
                peak = capacity.peak(spans, start, end)
                if peak.mib + mib > gpu.capacity_mib:
                    misses.append(_full(gpu, mib, start, end, peak.mib))
                    continue
                await self.check_limits(
                    session,
                    actor,
                    owners,
                    booking.user_id,
                    mib,
                    start,
                    end,
                    exclude=each.id,
                    pending=accepted,
                    rewritten=ids,
                )
            except GpubookError as error:
                reason = error.sentences[0]
                misses.append(say(Code.SERIES_MISS, window=Window(start, end), reason=reason))
                continue
            spans.append(capacity.Span(start, end, mib))
            accepted.append(capacity.Span(start, end, mib))
        return misses


class SeriesWrites(SeriesEdits):
    """Booking a recurring series, and ending the rest of one."""

    async def create_series(
        self,
        actor: Actor,
        *,
        gpu: str | None,
        memory: int | str,
        rule: Recurrence,
        task: str,
        partial: bool = False,
    ) -> SeriesResult:
        """Book every occurrence of ``rule`` on ``gpu``: all of them, or (``partial``) those that
        fit; raise :class:`SeriesRefused` naming the ones that do not."""
        now = self.clock()
        if gpu is None:
            raise InputError(Code.SERIES_NEEDS_GPU, field="gpu")
        task = rules.clean_text(task, self.policy.max_task_chars, "task", required=True)
        occurrences = expand(rule)
        async with self.db.write() as session:
            target = await queries.lock_gpu(session, actor.team_id, gpu)
            mib = rules.memory_mib(memory, target.capacity_mib)
            refuse_if_too_big(await queries.gpus(session, actor.team_id), mib, target)
            fits, misses = await self._sort(session, actor, target, mib, occurrences, now)
            if misses and not (partial and fits):
                offer = (
                    SeriesOffer(target.name, mib, rule.to_dict(), task, len(fits)) if fits else None
                )
                raise _refusal([reason for _, reason in misses], len(occurrences), offer)
            series = BookingSeries(
                team_id=actor.team_id,
                user_id=actor.user_id,
                rule=rule.to_dict(),
                created_by=actor.user_id,
                created_at=now,
            )
            session.add(series)
            await session.flush()
            booked = [self._book(session, actor, target, series, mib, o, task, now) for o in fits]
            await session.flush()
            journal = self.journal(session, now)
            for booking in booked:
                details = {"series": series.id, "memory_mib": mib, "task": task}
                details |= {
                    "start": booking.start_at.isoformat(),
                    "end": booking.end_at.isoformat(),
                }
                journal.audit(actor.user_id, AuditAction.CREATE, booking, details)
            if self.config.announce_new:
                # One announcement for the series (its first occurrence), not one per occurrence.
                await journal.notify(NoticeKind.ANNOUNCED, booked[0])
            return SeriesResult(
                series.id,
                [booking_info(b) for b in booked],
                [(o.start, o.end) for o, _ in misses],
                _distinct(note for o in fits for note in o.notes),
            )

    async def cancel_series(self, actor: Actor, booking_id: int) -> list[BookingInfo]:
        """End the rest of the series from occurrence ``booking_id`` on: the occurrences that have
        not started are cancelled, one already running (this one) is released."""
        now = self.clock()
        async with self.db.write() as session:
            booking = await self.locked_booking(session, actor, booking_id, ChangeVerb.CANCEL)
            if booking.series_id is None:
                raise InvalidState(Code.NOT_A_SERIES, id=booking.id, verb=str(ChangeVerb.CANCEL))
            self.require_holding(booking, ChangeVerb.CANCEL)
            rest = await session.scalars(
                select(Booking)
                .where(
                    Booking.series_id == booking.series_id,
                    Booking.start_at >= booking.start_at,
                    Booking.status.in_([BookingStatus.UPCOMING, BookingStatus.ACTIVE]),
                )
                .order_by(Booking.start_at)
            )
            ended = list(rest.unique())
            journal = self.journal(session, now)
            for each in ended:
                if each.status == BookingStatus.ACTIVE:
                    await transitions.end_early(journal, actor.user_id, each, EndReason.RELEASED)
                else:
                    await transitions.cancel(journal, actor.user_id, each)
            return [booking_info(b) for b in ended]

    async def _sort(
        self,
        session: AsyncSession,
        actor: Actor,
        gpu: Gpu,
        mib: int,
        occurrences: list[Occurrence],
        now: datetime,
    ) -> tuple[list[Occurrence], list[tuple[Occurrence, Sentence]]]:
        """The occurrences that fit, and those that do not with why, in order.

        Each passes the asker's own rules and limits (their groups' longest booking and
        advance; memory held at once, GB·h, open bookings), counting the occurrences accepted
        before it as booked: a series may not do in one go what separate bookings may not."""
        first, last = occurrences[0].start, max(o.end for o in occurrences)
        spans = (await queries.spans(session, [gpu.id], first, last))[gpu.id]
        limits = await self.limits_for(session, actor.team_id, actor.user_id)
        policy = self.policy_for(limits)
        fits: list[Occurrence] = []
        misses: list[tuple[Occurrence, Sentence]] = []
        accepted: list[capacity.Span] = []
        for occurrence in occurrences:
            try:
                start, end = rules.check_window(policy, occurrence.start, occurrence.end, now)
                rules.check_advance(policy, start, now)
                peak = capacity.peak(spans, start, end)
                if peak.mib + mib > gpu.capacity_mib:
                    misses.append((occurrence, _full(gpu, mib, start, end, peak.mib)))
                    continue
                await self.check_limits(
                    session, actor, limits, actor.user_id, mib, start, end, pending=accepted
                )
            except GpubookError as error:
                window = Window(occurrence.start, occurrence.end)
                misses.append(
                    (occurrence, say(Code.SERIES_MISS, window=window, reason=error.sentences[0]))
                )
                continue
            spans.append(capacity.Span(start, end, mib))  # the series' own occurrences count too
            accepted.append(capacity.Span(start, end, mib))
            fits.append(Occurrence(occurrence.day, start, end, occurrence.notes))
        return fits, misses

    def _book(
        self,
        session: AsyncSession,
        actor: Actor,
        gpu: Gpu,
        series: BookingSeries,
        mib: int,
        occurrence: Occurrence,
        task: str,
        now: datetime,
    ) -> Booking:
        booking = Booking(
            team_id=actor.team_id,
            gpu_id=gpu.id,
            user_id=actor.user_id,
            task=task,
            memory_mib=mib,
            start_at=occurrence.start,
            end_at=occurrence.end,
            original_end_at=occurrence.end,
            status=BookingStatus.ACTIVE if occurrence.start <= now else BookingStatus.UPCOMING,
            created_by=actor.user_id,
            created_at=now,
            updated_at=now,
            series_id=series.id,
        )
        booking.gpu, booking.series = gpu, series
        session.add(booking)
        return booking


def _distinct(notes: Iterable[Sentence]) -> tuple[Sentence, ...]:
    """Each note once (a skipped hour on a DST day is said once, not per occurrence)."""
    kept: list[Sentence] = []
    for note in notes:
        if note not in kept:
            kept.append(note)
    return tuple(kept)


def _full(gpu: Gpu, mib: int, start: datetime, end: datetime, held: int) -> Sentence:
    return say(
        Code.SERIES_MISS_FULL,
        window=Window(start, end),
        gpu=Quote(gpu.name),
        held=Size(held),
        capacity=Size(gpu.capacity_mib),
        free=Size(max(gpu.capacity_mib - held, 0)),
        asked=Size(mib),
    )


def _refusal(
    misses: list[Sentence],
    total: int,
    offer: SeriesOffer | None,
    code: Code = Code.SERIES_REFUSED,
) -> SeriesRefused:
    """Why each of the first occurrences did not fit, the rest counted; ``offer``, if any."""
    listed = misses[:MAX_LISTED_MISSES]
    if len(misses) > MAX_LISTED_MISSES:
        listed.append(say(Code.SERIES_MORE_MISSES, count=len(misses) - MAX_LISTED_MISSES))
    if offer is None and code is Code.SERIES_REFUSED:
        return SeriesRefused(Code.SERIES_NONE_FIT, offer=None, also=listed, total=total)
    return SeriesRefused(code, offer=offer, also=listed, missed=len(misses), total=total)
