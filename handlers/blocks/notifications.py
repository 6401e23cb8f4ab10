"""Channel messages and DMs about bookings: one builder per notification kind, plus summaries.

Pure functions of the service's snapshots (:class:`bot.core.snapshots.BookingInfo`); the notifier decides
what to send and where. Every message names its booking as ``#<id>`` (people refer to bookings by
id in commands, and it lets tests count mentions), escapes every user-typed text and sets the
``text`` fallback that notifications and screen readers show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.core.formats import format_size
from bot.core.phrases import Code
from bot.core.sentence import Quote, When, say
from bot.core.snapshots import BookingInfo, Notice
from bot.core.vocabulary import NOTICES_WITHOUT_BOOKING, WATCH_NOTICES, EndReason, NoticeKind
from handlers import ids
from handlers.blocks.common import (
    Message,
    clip,
    escape,
    pack_lines,
    section,
    slack_date,
    slack_window,
)
from handlers.blocks.usage_notices import usage_blocks
from handlers.blocks.watches import watch_blocks
from handlers.wording import SlackText, mrkdwn

__all__ = ["Message", "Notice", "booking_message", "dm_message", "summary_message"]

#: Messages hold at most 50 blocks.
MAX_BLOCKS = 50
#: A summary lists this many bookings in full; the rest by id only, so a burst stays readable.
DETAIL_LINES = 40
#: Ids per line of the by-id list (each ``#123456, `` is at most ~10 characters).
IDS_PER_LINE = 200
#: DMs carry each item's own blocks (buttons included) up to this many items, then a summary.
DM_FULL_ITEMS = 15
#: Notices without a booking (live usage, watches) shown per message (two blocks each), so it
#: stays within 50 blocks.
MAX_USAGE_ITEMS = 10
#: The ``text`` fallback is for notifications: short is better, and Slack truncates at 40,000.
TEXT_LIMIT = 3000

EMOJI = {
    NoticeKind.ANNOUNCED: ":calendar:",
    NoticeKind.STARTED: ":arrow_forward:",
    NoticeKind.ENDED: ":checkered_flag:",
    NoticeKind.RELEASED: ":eject:",
    NoticeKind.CANCELLED: ":x:",
    NoticeKind.REMINDER: ":hourglass_flowing_sand:",
    NoticeKind.CHANGED: ":pencil2:",
    NoticeKind.MOVED: ":fast_forward:",
}
_SUMMARY_VERB = {
    NoticeKind.ANNOUNCED: "booked",
    NoticeKind.STARTED: "started",
    NoticeKind.ENDED: "ended",
    NoticeKind.RELEASED: "released early",
    NoticeKind.CANCELLED: "cancelled",
    NoticeKind.REMINDER: "ending soon",
    NoticeKind.CHANGED: "changed by an admin",
    NoticeKind.MOVED: "moved",
}
#: Order of the groups in a summary: what happens first in a booking's life comes first.
KIND_ORDER = tuple(EMOJI)


# ---------------------------------------------------------------------- single items


def booking_message(item: Notice, *, now: datetime) -> Message:
    """The message for one notification (a channel message or a DM)."""
    line = _sentence(item, now)
    blocks: list[Block] = [section(line)]
    if item.kind == NoticeKind.REMINDER:
        blocks.append(_reminder_buttons(item.booking))
    if item.kind == NoticeKind.MOVED:
        blocks.append(_moved_buttons(item.booking))
    return Message(text=_fallback(line), blocks=blocks)


def _sentence(item: Notice, now: datetime) -> str:
    b = item.booking
    who, gpu, size = f"<@{b.user_id}>", f"`{escape(b.gpu_name)}`", format_size(b.memory_mib)
    task = f" — {escape(b.task)}" if b.task else ""
    ref = f"#{b.id}"
    emoji = EMOJI.get(item.kind, ":information_source:")
    match item.kind:
        case NoticeKind.ANNOUNCED:
            body = f"{who} booked *{size}* on {gpu}, {slack_window(b.start, b.end, now=now)}"
        case NoticeKind.STARTED:
            body = f"{who}'s *{size}* on {gpu} started; until {slack_date(b.end, now=now)}"
        case NoticeKind.ENDED:
            body = f"{who}'s booking on {gpu} ended; *{size}* free again"
        case NoticeKind.RELEASED if item.details.get("reason") == EndReason.RETIRED:
            body = f"{who}'s booking ended early because {gpu} was retired; *{size}* freed"
        case NoticeKind.RELEASED:
            planned = _planned_end(item, b)
            body = (
                f"{who} released early: *{size} freed on {gpu}* "
                f"(was booked until {slack_date(planned, now=now)})"
            )
        case NoticeKind.CANCELLED if item.details.get("reason") == EndReason.RETIRED:
            body = (
                f"{who}'s *{size}* on {gpu}, {slack_window(b.start, b.end, now=now)}, "
                "was cancelled because the GPU was retired"
            )
        case NoticeKind.CANCELLED:
            body = f"{who} cancelled *{size}* on {gpu}, {slack_window(b.start, b.end, now=now)}"
        case NoticeKind.REMINDER:
            body = (
                f"Your booking of *{size}* on {gpu} ends {slack_date(b.end, now=now)}. "
                "Extend it, or release it now if you are done"
            )
        case NoticeKind.CHANGED:
            return f"{emoji} {ref}: {_change_sentence(item, now)}{task}"
        case NoticeKind.MOVED:
            return f"{emoji} {_moved_sentence(item, now)}{task}"
        case _:
            body = f"{who}'s booking on {gpu}: {escape(item.kind)}"
    return f"{emoji} {ref} {body}{task}"


def _planned_end(item: Notice, booking: BookingInfo) -> datetime:
    planned = item.details.get("planned_end")
    return datetime.fromisoformat(planned) if planned else booking.end


def _change_sentence(item: Notice, now: datetime) -> str:
    """What an admin did to someone's booking, for the owner's DM."""
    b = item.booking
    action = escape(str(item.details.get("action", "changed")))
    by = item.details.get("by")
    who = SlackText().user(str(by)) if by else "An admin"
    sentence = (
        f"{who} {action} your booking of *{format_size(b.memory_mib)}* on "
        f"`{escape(b.gpu_name)}`, {slack_window(b.start, b.end, now=now)}"
    )
    reason = item.details.get("reason")
    if not reason:
        return sentence
    return sentence + f" ({escape(_REASONS.get(str(reason), str(reason)))})"


def _moved_sentence(item: Notice, now: datetime) -> str:
    """A flexible booking moved up, or to another card at the same start (shifted aside to make
    room for one made after it): where and when it is now, and was."""
    b, details = item.booking, item.details
    was_start = datetime.fromisoformat(str(details.get("was_start", b.start.isoformat())))
    moved = say(
        Code.QUEUE_SHIFTED if was_start == b.start else Code.QUEUE_MOVED,
        id=b.id,
        gpu=Quote(b.gpu_name),
        start=When(b.start),
        was_gpu=Quote(str(details.get("was_gpu", b.gpu_name))),
        was_start=When(was_start),
    )
    return mrkdwn(moved, now=now)


#: Reason codes the service records, as the owner reads them.
_REASONS = {
    EndReason.RETIRED: "the GPU was retired",
    EndReason.RELEASED: "released early",
    EndReason.IDLE: "none of your processes ran on it",
}


def _moved_buttons(booking: BookingInfo) -> ActionsBlock:
    """Pin (stop moving) or cancel, from the DM that says it moved."""
    value = str(booking.id)
    return ActionsBlock(
        elements=[
            ButtonElement(text="Pin here", action_id=ids.PIN, value=value, style="primary"),
            ButtonElement(text="Cancel", action_id=ids.CANCEL, value=value),
        ]
    )


def _reminder_buttons(booking: BookingInfo) -> ActionsBlock:
    value = str(booking.id)
    return ActionsBlock(
        elements=[
            ButtonElement(
                text=ids.EXTEND_LABEL, action_id=ids.EXTEND, value=value, style="primary"
            ),
            ButtonElement(text="Release now", action_id=ids.RELEASE, value=value),
        ]
    )


# ---------------------------------------------------------------------- several items


def summary_message(items: Sequence[Notice], *, now: datetime) -> Message:
    """One channel message for many notifications: a group per kind, one line per booking.

    The first :data:`DETAIL_LINES` bookings get a full line; the rest are listed by id, so a
    burst of hundreds of bookings is still one message within Slack's block limits.
    """
    groups = _by_kind(items)
    blocks: list[Block] = []
    headlines: list[str] = []
    budget = DETAIL_LINES
    for kind, group in groups:
        headline = _headline(kind, group)
        headlines.append(headline.removeprefix(EMOJI.get(kind, "") + " "))
        detailed, rest = group[:budget], group[budget:]
        budget -= len(detailed)
        lines = [f"*{headline}*"] + [f"• {_line(i, now)}" for i in detailed]
        if rest:
            lines.extend(_id_lines(f"…and {len(rest)} more:", rest))
        blocks.extend(pack_lines(lines))
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"{len(items)} notifications do not fit one message; claim fewer")
    return Message(text=_fallback("; ".join(headlines)), blocks=blocks)


def dm_message(items: Sequence[Notice], *, now: datetime) -> Message:
    """Several DMs to one person in one message, each with its own buttons while they fit."""
    if len(items) == 1:
        return booking_message(items[0], now=now)
    if len(items) > DM_FULL_ITEMS:
        return summary_message(items, now=now)
    blocks: list[Block] = []
    for item in items:
        blocks.extend(booking_message(item, now=now).blocks)
    text = f"{len(items)} updates about your bookings: " + ", ".join(
        f"#{i.booking.id}" for i in items
    )
    return Message(text=_fallback(text), blocks=blocks)


def _by_kind(items: Sequence[Notice]) -> list[tuple[str, list[Notice]]]:
    groups: dict[str, list[Notice]] = {}
    for item in items:
        groups.setdefault(item.kind, []).append(item)
    rank = {kind: n for n, kind in enumerate(KIND_ORDER)}
    return sorted(groups.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def _headline(kind: str, group: Sequence[Notice]) -> str:
    gpus = sorted({i.booking.gpu_name for i in group})
    shown = ", ".join(f"`{escape(g)}`" for g in gpus[:10]) + (" …" if len(gpus) > 10 else "")
    noun = "booking" if len(group) == 1 else "bookings"
    verb = _SUMMARY_VERB.get(kind, escape(kind))
    return f"{EMOJI.get(kind, '')} {len(group)} {noun} {verb} on {shown}"


def _line(item: Notice, now: datetime) -> str:
    """One booking in a summary: id, owner, memory, GPU, the relevant time, task."""
    b = item.booking
    when = {
        NoticeKind.STARTED: f"until {slack_date(b.end, now=now)}",
        NoticeKind.ENDED: "memory free again",
        NoticeKind.RELEASED: "memory freed",
        NoticeKind.REMINDER: f"ends {slack_date(b.end, now=now)}",
    }.get(item.kind, slack_window(b.start, b.end, now=now))
    task = f" — {escape(b.task)}" if b.task else ""
    return f"#{b.id} <@{b.user_id}> {format_size(b.memory_mib)} on `{escape(b.gpu_name)}`, {when}{task}"


def _id_lines(lead: str, items: Sequence[Notice]) -> list[str]:
    """Booking ids, comma-separated, in lines short enough that no id is ever cut off."""
    refs = [f"#{i.booking.id}" for i in items]
    chunks = [refs[n : n + IDS_PER_LINE] for n in range(0, len(refs), IDS_PER_LINE)]
    return [(f"{lead} " if n == 0 else "") + ", ".join(c) for n, c in enumerate(chunks)]


def _fallback(text: str) -> str:
    return clip(text, TEXT_LIMIT)


def render(items: Sequence[Notice], *, direct: bool, now: datetime) -> Message:
    """The one message for ``items`` bound for one destination: a DM (``direct``), a single
    channel update, or a channel summary of many. The notifier is handed this function.

    Notices that may concern no booking (live usage, watches:
    :data:`~bot.core.vocabulary.NOTICES_WITHOUT_BOOKING`) come after the bookings' ones, each
    with its own blocks (the first :data:`MAX_USAGE_ITEMS` of them)."""
    own = [i for i in items if i.kind in NOTICES_WITHOUT_BOOKING]
    if own:
        bookings = [i for i in items if i.kind not in NOTICES_WITHOUT_BOOKING]
        first = render(bookings, direct=direct, now=now) if bookings else None
        texts: list[str] = []
        blocks: list[Block] = []
        for item in own[:MAX_USAGE_ITEMS]:
            builder = watch_blocks if item.kind in WATCH_NOTICES else usage_blocks
            text, more = builder(item, now=now)
            texts.append(text)
            blocks.extend(more)
        text = "; ".join(([first.text] if first else []) + texts)
        return Message(_fallback(text), [*(first.blocks if first else []), *blocks])
    if direct:
        return dm_message(items, now=now)
    if len(items) == 1:
        return booking_message(items[0], now=now)
    return summary_message(items, now=now)
