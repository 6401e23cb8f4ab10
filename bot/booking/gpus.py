"""GPU administration: add, edit, retire, route notifications — admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import queries, transitions
from bot.booking.base import ServiceBase
from bot.booking.snapshots import booking_info, gpu_info
from bot.core import capacity, rules
from bot.core.actor import DEFAULT_TEAM, Actor
from bot.core.agent_report import valid_device_uuid
from bot.core.errors import InputError, PolicyViolation
from bot.core.gpu_names import validate_gpu_name
from bot.core.phrases import Code
from bot.core.sentence import Quote, Size
from bot.core.snapshots import BookingInfo, GpuInfo
from bot.core.units import parse_size
from bot.core.vocabulary import AuditAction, BookingStatus, EndReason
from storage.models import Booking, Gpu, Workspace

_FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DESCRIPTION_CHARS = 500


class GpuAdmin(ServiceBase):
    """The GPUs a workspace books, and where their notifications go."""

    async def home_team(self, configured: str | None) -> str:
        """The workspace a tool outside Slack (CLI, console) acts in.

        ``configured`` wins. Otherwise the one workspace this database holds GPUs for — so
        `gpubook gpu add` next to a bot serving one Slack workspace lands where Slack sees it —
        or the local default on an empty database. Several workspaces are ambiguous: refused.
        """
        if configured:
            return configured
        async with self.db.read() as session:
            teams = sorted(set(await session.scalars(select(Gpu.team_id).distinct())))
        if len(teams) > 1:
            raise InputError(Code.SEVERAL_WORKSPACES, teams=", ".join(teams))
        return teams[0] if teams else DEFAULT_TEAM

    async def list_gpus(self, actor: Actor, *, include_retired: bool = False) -> list[GpuInfo]:
        async with self.db.read() as session:
            found = await queries.gpus(session, actor.team_id, include_retired=include_retired)
            return [gpu_info(g) for g in found]

    async def add_gpu(
        self, actor: Actor, name: str, size: int | str, description: str = ""
    ) -> GpuInfo:
        self.require_admin(actor, "add GPUs")
        now = self.clock()
        name = validate_gpu_name(name)
        mib = parse_size(size) if isinstance(size, str) else size
        if mib <= 0:
            raise InputError(Code.GPU_SIZE_NOT_POSITIVE, field="memory")
        async with self.db.write() as session:
            existing = await session.scalar(
                select(Gpu).where(Gpu.team_id == actor.team_id, Gpu.name == name)
            )
            if existing is not None:
                code = Code.GPU_EXISTS_RETIRED if existing.retired else Code.GPU_EXISTS
                raise InputError(code, field="gpu", name=Quote(name))
            gpu = Gpu(
                team_id=actor.team_id,
                name=name,
                capacity_mib=mib,
                description=_description(description),
                created_at=now,
                updated_at=now,
            )
            session.add(gpu)
            try:
                await session.flush()
            except IntegrityError as exc:  # another admin added the same name a moment ago
                raise InputError(Code.GPU_EXISTS, field="gpu", name=Quote(name)) from exc
            details = {"name": name, "capacity_mib": mib}
            self.journal(session, now).audit(
                actor.user_id, AuditAction.GPU_ADD, None, details, gpu=gpu
            )
            return gpu_info(gpu)

    async def edit_gpu(
        self,
        actor: Actor,
        name: str,
        *,
        new_name: str | None = None,
        size: int | str | None = None,
        description: str | None = None,
        channel_id: str | None = None,
        device_uuid: str | None = None,
    ) -> GpuInfo:
        """Rename, resize, describe or route a GPU, or bind it to the card (NVML UUID) it is
        (``""`` unbinds); shrinking below booked memory is refused."""
        self.require_admin(actor, "edit GPUs")
        now = self.clock()
        async with self.db.write() as session:
            gpu = await queries.lock_gpu(session, actor.team_id, name)
            details: dict[str, Any] = {}
            if new_name is not None and new_name != gpu.name:
                new_name = validate_gpu_name(new_name)
                clash = await session.scalar(
                    select(Gpu.id).where(Gpu.team_id == actor.team_id, Gpu.name == new_name)
                )
                if clash is not None:
                    raise InputError(Code.GPU_EXISTS, field="gpu", name=Quote(new_name))
                details["name"] = [gpu.name, new_name]
                gpu.name = new_name
                await _revise_bookings_of(session, gpu, now)
            if size is not None:
                mib = parse_size(size) if isinstance(size, str) else size
                future = (await queries.spans(session, [gpu.id], now, _FOREVER))[gpu.id]
                last = max([s.end for s in future] + [now + _SECOND])
                held = capacity.peak(future, now, last).mib
                if mib < held:
                    raise PolicyViolation(
                        Code.GPU_CANNOT_SHRINK, gpu=Quote(gpu.name), held=Size(held), size=Size(mib)
                    )
                details["capacity_mib"] = [gpu.capacity_mib, mib]
                gpu.capacity_mib = mib
            if description is not None:
                gpu.description = _description(description)
                details["description"] = gpu.description
            if channel_id is not None:
                gpu.channel_id = channel_id or None
                details["channel_id"] = gpu.channel_id
            if device_uuid is not None:
                gpu.device_uuid = await _free_device_uuid(session, gpu, device_uuid.strip())
                details["device_uuid"] = gpu.device_uuid
            gpu.updated_at = now
            self.journal(session, now).audit(
                actor.user_id, AuditAction.GPU_EDIT, None, details, gpu=gpu
            )
            return gpu_info(gpu)

    async def retire_gpu(
        self, actor: Actor, name: str, *, cancel_future: bool = False
    ) -> list[BookingInfo]:
        """Retire a GPU. With future bookings it is refused unless ``cancel_future``: then they
        are cancelled (and their owners told) and returned."""
        self.require_admin(actor, "retire GPUs")
        now = self.clock()
        async with self.db.write() as session:
            gpu = await queries.lock_gpu(session, actor.team_id, name)
            pending = await queries.holding(session, gpu.id, now, _FOREVER)
            if pending and not cancel_future:
                raise PolicyViolation(
                    Code.GPU_STILL_BOOKED,
                    field="gpu",
                    gpu=Quote(gpu.name),
                    name=gpu.name,
                    count=len(pending),
                )
            journal = self.journal(session, now)
            for booking in pending:
                if booking.status == BookingStatus.ACTIVE:
                    await transitions.end_early(journal, actor.user_id, booking, EndReason.RETIRED)
                else:
                    await transitions.cancel(journal, actor.user_id, booking, EndReason.RETIRED)
            gpu.retired, gpu.updated_at = True, now
            details = {"cancelled": [b.id for b in pending]}
            journal.audit(actor.user_id, AuditAction.GPU_RETIRE, None, details, gpu=gpu)
            return [booking_info(b) for b in pending]

    async def set_channel(self, actor: Actor, channel_id: str, *, gpu: str | None = None) -> None:
        """Route notifications of one GPU, or of the whole workspace, to ``channel_id``."""
        self.require_admin(actor, "set the notification channel")
        if gpu is not None:
            await self.edit_gpu(actor, gpu, channel_id=channel_id)
            return
        now = self.clock()
        async with self.db.write() as session:
            workspace = await session.get(Workspace, actor.team_id, with_for_update=True)
            if workspace is None:
                session.add(Workspace(team_id=actor.team_id, channel_id=channel_id, updated_at=now))
            else:
                workspace.channel_id, workspace.updated_at = channel_id, now
            self.journal(session, now).audit(
                actor.user_id,
                AuditAction.SET_CHANNEL,
                None,
                {"channel_id": channel_id},
                team_id=actor.team_id,
            )


async def _free_device_uuid(session: AsyncSession, gpu: Gpu, uuid: str) -> str | None:
    """``uuid`` when it reads as a device UUID that no other GPU of the workspace is bound to
    (``None`` for ``""``: unbind)."""
    if not uuid:
        return None
    if not valid_device_uuid(uuid):
        raise InputError(Code.DEVICE_UUID_INVALID, field="uuid", uuid=Quote(uuid))
    holder = await session.scalar(
        select(Gpu.name).where(
            Gpu.team_id == gpu.team_id, Gpu.device_uuid == uuid, Gpu.id != gpu.id
        )
    )
    if holder is not None:
        raise InputError(Code.DEVICE_UUID_TAKEN, field="uuid", uuid=Quote(uuid), gpu=Quote(holder))
    return uuid


async def _revise_bookings_of(session: AsyncSession, gpu: Gpu, now: datetime) -> None:
    """A renamed GPU's bookings read differently (calendar events name the GPU): each is a new
    revision, as a change to the booking itself would be."""
    await session.execute(
        update(Booking)
        .where(Booking.gpu_id == gpu.id)
        .values(revision=Booking.revision + 1, updated_at=now)
    )


def _description(text: str) -> str:
    return rules.clean_text(text, _DESCRIPTION_CHARS, "description")
