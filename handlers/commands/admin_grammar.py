"""The `admin …` grammar: GPUs, the notification channel, utilisation and the audit log."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.agent_report import valid_device_uuid
from bot.core.errors import InputError
from bot.core.gpu_names import validate_gpu_name
from bot.core.limits import parse_limit, parse_value, validate_group
from bot.core.phrases import Code
from bot.core.sentence import Quote
from bot.core.slack_ids import mentioned_channel, mentioned_user
from bot.core.stats import MAX_STATS_DAYS
from bot.core.units import parse_size
from handlers.commands.syntax import (
    CANCEL_FUTURE,
    DEFAULT_AUDIT_ENTRIES,
    MAX_AUDIT_ENTRIES,
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
from handlers.commands.words import plain_text, size_words

#: `admin gpu edit NAME uuid none` unbinds the GPU from its card.
UNBIND = "none"


def parse_gpu_add(args: list[str], now: datetime, tz: ZoneInfo) -> AdminGpuAdd:
    if len(args) < 2:
        raise InputError(Code.GPU_ADD_USAGE, field="name")
    name = validate_gpu_name(args[0])
    size_text, used = size_words(args[1:])
    if size_text.endswith("%"):
        raise InputError(Code.GPU_SIZE_FORM, field="memory")
    parse_size(size_text)
    return AdminGpuAdd(name, size_text, plain_text(" ".join(args[1 + used :])) or None)


def parse_gpu_retire(args: list[str], now: datetime, tz: ZoneInfo) -> AdminGpuRetire:
    options = [word.lower() for word in args[1:]]
    if len(args) not in (1, 2) or options not in ([], [CANCEL_FUTURE]):
        raise InputError(Code.GPU_RETIRE_USAGE, field="name")
    return AdminGpuRetire(args[0].lower(), cancel_future=bool(options))


def parse_gpu_edit(args: list[str], now: datetime, tz: ZoneInfo) -> AdminGpuEdit:
    """One change per command, so the reply (and the audit entry) says exactly what changed."""
    if len(args) < 3:
        raise InputError(Code.GPU_EDIT_USAGE, field="gpu")
    name, what, rest = args[0].lower(), args[1].lower(), args[2:]
    if what == "size":
        size_text, used = size_words(rest)
        if used != len(rest) or size_text.endswith("%"):
            raise InputError(Code.GPU_SIZE_FORM, field="memory")
        parse_size(size_text)
        return AdminGpuEdit(name, size_text=size_text)
    if what == "rename" and len(rest) == 1:
        return AdminGpuEdit(name, new_name=validate_gpu_name(rest[0]))
    if what == "description":
        return AdminGpuEdit(name, description=plain_text(" ".join(rest)))
    if what == "uuid" and len(rest) == 1:
        if rest[0].lower() == UNBIND:
            return AdminGpuEdit(name, device_uuid="")
        if not valid_device_uuid(rest[0]):
            raise InputError(Code.DEVICE_UUID_INVALID, field="uuid", uuid=Quote(rest[0]))
        return AdminGpuEdit(name, device_uuid=rest[0])
    raise InputError(Code.GPU_EDIT_USAGE, field="gpu")


def parse_devices(args: list[str], now: datetime, tz: ZoneInfo) -> AdminDevices:
    if args:
        raise InputError(Code.DEVICES_USAGE)
    return AdminDevices()


def parse_channel(args: list[str], now: datetime, tz: ZoneInfo) -> AdminChannel:
    """Slack sends a channel mention as `<#C123ABC|general>` (or `<#C123ABC>`); keep the id.

    A GPU named after the channel routes only that GPU's notifications there.
    """
    typed = args[0] if len(args) in (1, 2) else ""
    gpu = args[1].lower() if len(args) == 2 else None
    channel = mentioned_channel(typed)
    if channel is None:
        raise InputError(Code.CHANNEL_USAGE, field="channel")
    return AdminChannel(channel, gpu)


def parse_stats(args: list[str], now: datetime, tz: ZoneInfo) -> AdminStats:
    if not args:
        return AdminStats()
    if len(args) == 1 and re.fullmatch(r"[0-9]{1,4}", args[0]):
        days = int(args[0])
        if 1 <= days <= MAX_STATS_DAYS:
            return AdminStats(days)
    raise InputError(Code.STATS_USAGE, field="days", max=MAX_STATS_DAYS)


def parse_audit(args: list[str], now: datetime, tz: ZoneInfo) -> AdminAudit:
    if not args:
        return AdminAudit(DEFAULT_AUDIT_ENTRIES)
    if len(args) == 1 and re.fullmatch(r"[0-9]{1,3}", args[0]):
        limit = int(args[0])
        if 1 <= limit <= MAX_AUDIT_ENTRIES:
            return AdminAudit(limit)
    raise InputError(Code.AUDIT_USAGE, field="limit", max=MAX_AUDIT_ENTRIES)


def parse_group(args: list[str], now: datetime, tz: ZoneInfo) -> AdminGroup:
    """`group add <group> @a @b`, `group remove <group> [@a…]`, `group list`.

    Slack sends user mentions as `<@U123|ana>` (the app escapes them); a bare user id is read
    too, for the console and for people pasting ids.
    """
    action = args[0].lower() if args else ""
    if action == "list" and len(args) == 1:
        return AdminGroup("list")
    if action not in ("add", "remove") or len(args) < 2 or (action == "add" and len(args) < 3):
        raise InputError(Code.GROUP_USAGE, field="group")
    users = []
    for word in args[2:]:
        user = mentioned_user(word)
        if user is None:
            raise InputError(Code.GROUP_USAGE, field="group")
        users.append(user)
    return AdminGroup(action, validate_group(args[1]), tuple(users))


def parse_admin_limits(args: list[str], now: datetime, tz: ZoneInfo) -> AdminLimits:
    """`limits <group> <limit> <value>`: one limit per command, like `gpu edit`."""
    if len(args) < 3:
        raise InputError(Code.ADMIN_LIMITS_USAGE, field="limit")
    name = parse_limit(args[1])
    return AdminLimits(validate_group(args[0]), name, parse_value(name, "".join(args[2:])))
