"""The service side of ``gpubook run``: the bookings a host's agent is told, and booking from a host.

Every answer to a report carries :func:`host_bookings` — the host's bound cards and the bookings on
them under way or starting within :data:`~bot.core.host_bookings.LOOKAHEAD`, each with the owner's
linked Unix logins — so the agent can tell, by the caller's uid alone, whose card is whose.

:meth:`HostRuns.book_from_host` is ``gpubook run --book``: the agent speaks with its host token for
the Unix login it read from the socket; the booking is made for the Slack user linked to that
login, as that user (their limits, the capacity check under the GPU lock, the audit entry naming
them and the host), on one of that host's cards only. An unlinked login books nothing, and neither does a token revoked
since this process remembered it (:func:`use_token`, in the booking's own transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.booking.writes import BookingWrites
from bot.core.actor import Actor
from bot.core.errors import NotFound, PermissionDenied, Unauthorized
from bot.core.host_bookings import LOOKAHEAD, HostBooking, HostBookings, HostCard
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.snapshots import BookingInfo
from bot.core.usage import HostIdentity
from bot.core.vocabulary import HOLDING_STATUSES
from storage.models import AgentDevice, AgentToken, Booking, Gpu, UnixLogin


async def use_token(
    session: AsyncSession,
    identity: HostIdentity,
    now: datetime,
    remembered: MutableMapping[str, HostIdentity],
) -> None:
    """Mark ``identity``'s token used now, in the caller's write transaction, or refuse it
    (:class:`Unauthorized`, forgetting it in ``remembered``) when it was revoked since it was
    looked up: tokens are remembered (``reporting_host``), and this UPDATE, which also holds the
    token's row until the caller commits, is what keeps a revocation by any process immediate."""
    tokens = AgentToken.__table__  # Core: the ORM's bulk UPDATE path costs more than the SQL
    used = await (await session.connection()).execute(
        update(tokens)
        .where(tokens.c.id == identity.token_id, tokens.c.revoked_at.is_(None))
        .values(last_used_at=now)
    )
    if used.rowcount == 0:
        raise forget_token(identity, remembered)


async def check_token(
    session: AsyncSession, identity: HostIdentity, remembered: MutableMapping[str, HostIdentity]
) -> None:
    """Refuse ``identity``'s token, as :func:`use_token` does, if it was revoked: a read's check,
    made before anything else is answered, so a revoked host learns nothing (not even its GPUs'
    names). The write still holds the token with :func:`use_token`."""
    live = await session.scalar(
        select(AgentToken.id).where(
            AgentToken.id == identity.token_id, AgentToken.revoked_at.is_(None)
        )
    )
    if live is None:
        raise forget_token(identity, remembered)


def forget_token(
    identity: HostIdentity, remembered: MutableMapping[str, HostIdentity]
) -> Unauthorized:
    """Forget ``identity``'s token, found revoked, in ``remembered``: the refusal to give."""
    for digest in [d for d, i in remembered.items() if i.token_id == identity.token_id]:
        del remembered[digest]
    return Unauthorized(Code.REPORT_BAD_TOKEN)


_G = Gpu.__table__.c
_B = Booking.__table__.c
_L = UnixLogin.__table__.c
#: What :func:`host_bookings` reads: the workspace's live GPUs bound to the cards ``uuids``, their
#: bookings holding memory between ``now`` and ``horizon``, and each booking's owner's logins.
_HOST_BOOKINGS = (
    select(
        _G.name,
        _G.device_uuid,
        _G.capacity_mib,
        _B.id,
        _B.memory_mib,
        _B.start_at,
        _B.end_at,
        _L.login,
    )
    .select_from(
        Gpu.__table__.outerjoin(
            Booking.__table__,
            (_B.gpu_id == _G.id)
            & _B.status.in_(list(HOLDING_STATUSES))
            & (_B.end_at > bindparam("now", type_=_B.end_at.type))
            & (_B.start_at < bindparam("horizon", type_=_B.start_at.type)),
        ).outerjoin(UnixLogin.__table__, (_L.team_id == _G.team_id) & (_L.user_id == _B.user_id))
    )
    .where(
        _G.team_id == bindparam("team"),
        _G.retired.is_(False),
        _G.device_uuid.in_(bindparam("uuids", expanding=True)),
    )
    .order_by(_G.name, _B.start_at, _B.id, _L.login)
)


def host_bookings(
    session: Session, team_id: str, totals: Mapping[str, int], now: datetime
) -> HostBookings:
    """The cards among ``totals`` (device UUID -> measured MiB) bound to a GPU, and their
    bookings under way or starting within the lookahead, with their owners' logins.

    One query (GPUs, their bookings and the owners' logins, outer-joined), built once
    (:data:`_HOST_BOOKINGS`), since it runs for every report; written for a sync ``session``,
    as storing reports is (:func:`bot.booking.ingest.store_reports`): async callers run it with
    ``AsyncSession.run_sync``."""
    rows = session.connection().execute(
        _HOST_BOOKINGS,
        {"team": team_id, "uuids": list(totals), "now": now, "horizon": now + LOOKAHEAD},
    )
    cards: dict[str, HostCard] = {}
    bookings: dict[int, tuple[str, int, datetime, datetime]] = {}
    logins: dict[int, list[str]] = {}
    for name, uuid, capacity, booking_id, mib, start, end, login in rows:
        cards.setdefault(uuid, HostCard(uuid, name, totals[uuid], capacity))
        if booking_id is not None:
            bookings.setdefault(booking_id, (uuid, mib, start, end))
            found = logins.setdefault(booking_id, [])
            if login is not None:
                found.append(login)
    ordered = sorted(bookings.items(), key=lambda item: (item[1][2], item[0]))
    return HostBookings(
        tuple(cards.values()),
        tuple(
            HostBooking(i, uuid, tuple(logins[i]), mib, start, end)
            for i, (uuid, mib, start, end) in ordered
        ),
    )


class HostRuns(BookingWrites):
    """What a host's agent asks besides storing reports: its bookings, and booking for a login."""

    async def bookings_on_host(self, identity: HostIdentity) -> HostBookings:
        """The bookings the host's agent would be told now (its cards as last reported)."""
        async with self.db.read() as session:
            totals = await _reported_totals(session, identity)
            return await session.run_sync(host_bookings, identity.team_id, totals, self.clock())

    async def book_from_host(
        self,
        identity: HostIdentity,
        login: str,
        memory: int | str,
        length: timedelta,
        gpu: str | None = None,
    ) -> tuple[BookingInfo, HostBookings]:
        """Book ``memory`` from now for ``length`` on one of the host's cards (``gpu`` when named)
        for the Slack user linked to ``login``; and the host's bookings after it."""
        async with self.db.read() as session:
            await check_token(session, identity, self.remembered_tokens)
            owner = await session.scalar(
                select(UnixLogin.user_id).where(
                    UnixLogin.team_id == identity.team_id, UnixLogin.login == login
                )
            )
            totals = await _reported_totals(session, identity)
            known = await session.run_sync(host_bookings, identity.team_id, totals, self.clock())
        if owner is None:
            raise PermissionDenied(Code.RUN_BOOK_UNLINKED, login=Quote(login), name=login)
        names = [c.gpu for c in known.cards]
        if not names:
            raise NotFound(Code.RUN_BOOK_NO_CARDS, host=Quote(identity.host))
        if gpu is not None and gpu not in names:
            raise NotFound(Code.RUN_GPU_NOT_HERE, gpu=Quote(gpu), gpus=", ".join(names))
        now = self.clock()
        booking = await self.create(
            Actor(owner, identity.team_id),
            gpu=gpu,
            among=names,
            memory=memory,
            start=now,
            end=now + length,
            task=f"gpubook run on {identity.host} ({login})"[: self.policy.max_task_chars],
            first=partial(use_token, identity=identity, now=now, remembered=self.remembered_tokens),
        )
        return booking, await self.bookings_on_host(identity)


async def _reported_totals(session: AsyncSession, identity: HostIdentity) -> dict[str, int]:
    rows = await session.execute(
        select(AgentDevice.uuid, AgentDevice.total_mib).where(
            AgentDevice.team_id == identity.team_id, AgentDevice.host == identity.host
        )
    )
    return dict(rows.tuples().all())
