"""Live usage in Slack: the cards agents report without a GPU, and what they measure.

Each unbound card is listed with the exact commands that add a GPU for it and bind it, so an
admin copies two lines instead of reading a UUID off a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.core.formats import format_size, typed_size
from bot.core.usage import DeviceInfo, LiveCard
from handlers.blocks.common import (
    MAX_MESSAGE_BLOCKS,
    escape,
    header,
    pack_lines,
    section,
    slack_date,
)
from handlers.commands import COMMAND

ALL_BOUND = "Every card that reports is bound to a GPU."


def device_commands(device: DeviceInfo) -> tuple[str, str]:
    """The slash commands that add a GPU for ``device`` and bind it to the card."""
    name = device.suggested_gpu_name
    return (
        f"{COMMAND} admin gpu add {name} {typed_size(device.total_mib)}",
        f"{COMMAND} admin gpu edit {name} uuid {device.uuid}",
    )


def devices_message(devices: Sequence[DeviceInfo], *, now: datetime) -> list[Block]:
    """Cards that report but are bound to no GPU, each with the commands that bind it."""
    blocks: list[Block] = [header("Cards without a GPU")]
    if not devices:
        return [*blocks, section(ALL_BOUND)]
    lines = []
    for d in devices:
        add, bind = device_commands(d)
        lines.append(
            f"*{escape(d.host)}* #{d.index} {escape(d.name)}, {format_size(d.total_mib)}, "
            f"last report {slack_date(d.last_seen_at, now=now)}\n`{escape(add)}`\n`{escape(bind)}`"
        )
    return blocks + pack_lines(lines, max_blocks=MAX_MESSAGE_BLOCKS - 1)


def live_text(card: LiveCard, *, now: datetime) -> str:
    """Measured use beside what is held: ``in use 21 GB ⚠`` (⚠: beyond what bookings hold), or
    ``no live data since …`` when the card's host went silent."""
    if card.silent:
        return f"no live data since {slack_date(card.reported_at, now=now)}"
    unlinked = (
        f" (unlinked: {', '.join(f'`{escape(login)}`' for login in card.unlinked)})"
        if card.unlinked
        else ""
    )
    return in_use(card, " :warning:") + unlinked


def in_use(card: LiveCard, warning: str = " ⚠") -> str:
    """``in use 21 GB``, with ``warning`` when that is beyond what bookings hold; plain text, so
    it also reads inside a code block (the calendar's strip), where no emoji code renders."""
    if card.silent:
        return "no live data"
    return f"in use {format_size(card.used_mib)}{warning if card.over else ''}"
