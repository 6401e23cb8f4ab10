"""What an admin's changes to a GPU answer: the GPU as edited, or retired with the bookings that
retiring it ended early or cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.core.formats import format_size
from bot.core.snapshots import BookingInfo, BookingStatus, GpuInfo
from handlers.blocks.bookings import booking_line
from handlers.blocks.common import MAX_MESSAGE_BLOCKS, clip, escape, notice, pack_lines


def retired_message(gpu: str, ended: Sequence[BookingInfo], *, now: datetime) -> list[Block]:
    """A GPU retired, and the bookings that retiring it ended early or cancelled (owners are DMed)."""
    blocks = notice(
        f"Retired `{escape(gpu)}`; it takes no new bookings.", emoji=":white_check_mark:"
    )
    cancelled = [b for b in ended if b.status == BookingStatus.CANCELLED]
    stopped = [b for b in ended if b.status != BookingStatus.CANCELLED]
    room = (MAX_MESSAGE_BLOCKS - len(blocks)) // 2
    for title, group in (("Ended early", stopped), ("Cancelled", cancelled)):
        if group:
            lines = [f"*{title}* ({len(group)}):", *(booking_line(b, now) for b in group)]
            blocks.extend(pack_lines(lines, max_blocks=room))
    return blocks


def gpu_edited_message(gpu: GpuInfo) -> list[Block]:
    """A GPU as an admin's edit left it."""
    desc = f" — {escape(clip(gpu.description, 500))}" if gpu.description else ""
    return notice(
        f"Updated `{escape(gpu.name)}`: {format_size(gpu.capacity_mib)}{desc}",
        emoji=":white_check_mark:",
    )
