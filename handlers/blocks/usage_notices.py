"""What the live-usage reconciliation says: DMs about over-use, unbooked use and idle bookings,
the channel's warning, and the admins' note about a silent host; each with its buttons.

The sentences are the wording table's (``USAGE_*``), rendered as Slack mrkdwn; times are
``<!date>`` tokens so each reader sees their own zone (button labels, which cannot hold them,
say UTC).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.core.formats import format_size
from bot.core.phrases import Code
from bot.core.sentence import Quote, Size, Span, User, When, say
from bot.core.snapshots import Notice
from bot.core.vocabulary import NoticeKind
from handlers import ids
from handlers.blocks.common import button, section
from handlers.blocks.refusals import slot_value
from handlers.wording import dated_mrkdwn

EMOJI = {
    NoticeKind.OVERUSE: ":warning:",
    NoticeKind.OVERUSE_CHANNEL: ":warning:",
    NoticeKind.UNBOOKED: ":eyes:",
    NoticeKind.IDLE: ":zzz:",
    NoticeKind.SILENT_HOST: ":mute:",
}
#: What an unbooked-use booking is called.
UNBOOKED_TASK = "unbooked use"


def usage_blocks(item: Notice, *, now: datetime) -> tuple[str, list[Block]]:
    """The fallback text and blocks of one live-usage notice."""
    d = item.details
    gpu = Quote(str(d.get("gpu", "")))
    used, booked = Size(int(d.get("used_mib", 0))), Size(int(d.get("booked_mib", 0)))
    actions: list = []
    match item.kind:
        case NoticeKind.OVERUSE:
            sentences = [say(Code.USAGE_OVERUSE, gpu=gpu, used=used, booked=booked)]
            if "booking" in d:
                raise_to, booking = int(d["raise_to"]), int(d["booking"])
                code = Code.USAGE_RAISE_FITS if d.get("fits") else Code.USAGE_RAISE_NO_ROOM
                sentences.append(say(code, id=booking, size=Size(raise_to)))
                if d.get("fits"):
                    value = json.dumps({"booking": booking, "mib": raise_to})
                    label = f"Raise #{booking} to {format_size(raise_to)}"
                    actions.append(button(label, ids.USAGE_RAISE, value, style="primary"))
            actions.append(button("Dismiss", ids.USAGE_DISMISS, str(d.get("episode", ""))))
        case NoticeKind.OVERUSE_CHANNEL:
            owner = User(str(d.get("user", "")))
            sentences = [
                say(Code.USAGE_OVERUSE_CHANNEL, owner=owner, gpu=gpu, used=used, booked=booked)
            ]
        case NoticeKind.UNBOOKED:
            sentences = [say(Code.USAGE_UNBOOKED, gpu=gpu, used=used)]
            start, end = datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"])
            mib = int(d["mib"])
            label = f"Book {format_size(mib)} until {end:%H:%M} UTC"
            value = slot_value(str(d["gpu"]), start, end, mib, UNBOOKED_TASK)
            actions.append(button(label, ids.BOOK_SLOT, value, style="primary"))
        case NoticeKind.IDLE:
            b = item.booking
            idle = Span(timedelta(seconds=int(d.get("idle_seconds", 0))))
            size = Size(b.memory_mib if b else int(d.get("booked_mib", 0)))
            booking_id = b.id if b else 0
            sentences = [say(Code.USAGE_IDLE, id=booking_id, size=size, gpu=gpu, idle=idle)]
            if d.get("release_at"):
                at = When(datetime.fromisoformat(d["release_at"]))
                sentences.append(say(Code.USAGE_IDLE_RELEASE, at=at))
            actions.append(button("Release now", ids.RELEASE, str(booking_id), style="primary"))
            actions.append(button("Keep it", ids.USAGE_KEEP, str(d.get("episode", ""))))
        case _:  # NoticeKind.SILENT_HOST
            since = When(datetime.fromisoformat(d["since"]))
            sentences = [say(Code.USAGE_SILENT_HOST, host=Quote(str(d.get("host"))), since=since)]
    text = dated_mrkdwn(sentences, now)
    blocks: list[Block] = [section(f"{EMOJI.get(item.kind, '')} {text}".strip())]
    if actions:
        blocks.append(ActionsBlock(elements=actions))
    return text, blocks
