"""How each `admin …` subcommand is answered (the service checks the asker is an admin)."""

from __future__ import annotations

from datetime import timedelta

from bot.core.formats import count_of, format_size
from bot.core.limits import group_sentence
from bot.core.phrases import Code
from bot.core.sentence import say
from handlers.blocks.admin import gpu_edited_message, retired_message
from handlers.blocks.common import Message, escape, notice
from handlers.blocks.reports import audit_message, stats_message
from handlers.blocks.usage import devices_message
from handlers.commands.syntax import (
    AdminAudit,
    AdminChannel,
    AdminDevices,
    AdminGpuAdd,
    AdminGpuEdit,
    AdminGpuRetire,
    AdminGroup,
    AdminLimits,
    AdminStats,
)
from handlers.pipeline import Request
from handlers.wording import mrkdwn


async def gpu_add(request: Request, cmd: AdminGpuAdd) -> Message:
    gpu = await request.deps.service.add_gpu(
        request.actor, cmd.name, cmd.size_text, cmd.description or ""
    )
    text = f"Added `{gpu.name}` with {format_size(gpu.capacity_mib)}."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def gpu_retire(request: Request, cmd: AdminGpuRetire) -> Message:
    service = request.deps.service
    ended = await service.retire_gpu(request.actor, cmd.name, cancel_future=cmd.cancel_future)
    request.changed.extend(ended)
    text = f"Retired `{cmd.name}`; it takes no new bookings."
    if ended:
        text += f" {len(ended)} of its bookings ended or were cancelled."
    return Message(text, retired_message(cmd.name, ended, now=request.now))


async def gpu_edit(request: Request, cmd: AdminGpuEdit) -> Message:
    gpu = await request.deps.service.edit_gpu(
        request.actor,
        cmd.name,
        new_name=cmd.new_name,
        size=cmd.size_text,
        description=cmd.description,
        device_uuid=cmd.device_uuid,
    )
    text = f"Updated `{gpu.name}`: {format_size(gpu.capacity_mib)}."
    return Message(text, gpu_edited_message(gpu))


async def devices(request: Request, cmd: AdminDevices) -> Message:
    found = await request.deps.service.unbound_devices(request.actor)
    return Message(f"{len(found)} cards without a GPU", devices_message(found, now=request.now))


async def channel(request: Request, cmd: AdminChannel) -> Message:
    await request.deps.service.set_channel(request.actor, cmd.channel_id, gpu=cmd.gpu)
    what = f"`{escape(cmd.gpu)}`'s notifications" if cmd.gpu else "Notifications"
    text = f"{what} now go to <#{cmd.channel_id}>."
    return Message(text, notice(text, emoji=":white_check_mark:"))


async def audit(request: Request, cmd: AdminAudit) -> Message:
    entries = await request.deps.service.audit_log(request.actor, limit=cmd.limit)
    return Message(
        f"The latest {count_of(len(entries), 'audit entry', 'audit entries')}",
        audit_message(entries, now=request.now, tz=request.actor.tz),
    )


async def stats(request: Request, cmd: AdminStats) -> Message:
    service = request.deps.service
    usage = await service.utilisation(
        request.actor, request.now - timedelta(days=cmd.days), request.now
    )
    text = f"Utilisation over {count_of(cmd.days, 'day')}"
    return Message(text, stats_message(usage, now=request.now))


async def group(request: Request, cmd: AdminGroup) -> Message:
    """Add people to a group, take them (or the whole group) out, or list the groups."""
    service, actor = request.deps.service, request.actor
    if cmd.action == "list":
        groups = await service.groups(actor)
        lines = [group_sentence(g) for g in groups] or [say(Code.GROUP_NONE_YET)]
    else:
        assert cmd.group is not None
        change = service.add_to_group if cmd.action == "add" else service.remove_from_group
        lines = [group_sentence(await change(actor, cmd.group, cmd.user_ids))]
    text = "\n".join(mrkdwn(line, actor.tz, request.now) for line in lines)
    return Message(text, notice(text, emoji=":busts_in_silhouette:"))


async def limits(request: Request, cmd: AdminLimits) -> Message:
    """Set or clear one limit of a group; the answer shows the group as it now is."""
    changed = await request.deps.service.set_limit(request.actor, cmd.group, cmd.limit, cmd.value)
    text = mrkdwn(group_sentence(changed), request.actor.tz, request.now)
    return Message(text, notice(text, emoji=":white_check_mark:"))
