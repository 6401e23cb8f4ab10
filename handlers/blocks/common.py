"""Primitives every builder shares: the message type, escaping, cutting text to Slack's limits,
headers, context lines, buttons and one-line notices, packing lines into sections, Slack date
tokens and memory bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.core.formats import SizeUnit, format_size, size_unit, typed_size
from bot.core.timefmt import format_time, format_window, may_span_dates, zone_name

#: Slack's limit on a section's text.
MAX_SECTION_TEXT = 3000
MAX_MESSAGE_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
#: A cut looks back this far for a space, so it falls between words when it can.
WORD_BREAK_LOOKBACK = 20

#: The ``<!date>`` format of an instant shown with its date ("Nov 26 10:00", "Today 10:00").
DATED = "{date_short_pretty} {time}"

BAR_WIDTH = 20
FULL, EMPTY = "▓", "░"


def escape(text: str) -> str:
    """Escape user text for mrkdwn so ``<!channel>`` or ``<@U1>`` in a task pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def your_zone(tz: tzinfo) -> str:
    """Names the zone a reader's times are shown in, for the line under a message of times:
    ``<!date>`` tokens follow each reader's Slack zone, which is ``tz`` for the one who asked."""
    return f"your time zone, {escape(zone_name(tz))}"


@dataclass(frozen=True)
class Message:
    """A Slack message to send: ``text`` is the notification/fallback text, ``blocks`` what people
    see. Replies to a request and channel notifications are both this."""

    text: str
    blocks: Sequence[Block]


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters ending in an ellipsis, so a limit can never be
    exceeded; between words when a space is near the cut. Cut user text *before* escaping it, so
    no ``&amp;`` is split in half."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ", max(0, len(head) - WORD_BREAK_LOOKBACK))
    return (head[:space] if space > 0 else head) + "…"


def section(
    text: str, *, block_id: str | None = None, accessory: ButtonElement | None = None
) -> SectionBlock:
    """A mrkdwn section; text beyond Slack's 3000 characters is cut rather than rejected."""
    return SectionBlock(
        text=MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT)),
        block_id=block_id,
        accessory=accessory,
    )


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT))])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, MAX_HEADER_TEXT)))


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, **kwargs
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=clip(text, MAX_BUTTON_TEXT)),
        action_id=action_id,
        value=value,
        style=style,
        **kwargs,
    )


def mib_text(mib: int) -> str:
    """Memory as exact text a user could type back: ``40GB`` when whole, else ``1234MiB``."""
    return typed_size(mib)


def notice(text: str, *, emoji: str = ":information_source:") -> list[Block]:
    """A one-line confirmation from trusted text (the caller escapes any user text in it)."""
    return [section(f"{emoji} {text}".strip())]


def pack_lines(
    lines: Sequence[str], *, max_blocks: int | None = None, more: str | None = None
) -> list[Block]:
    """Lines packed into as few sections as fit 3000 characters each, at most ``max_blocks``.

    Lines that do not fit are counted in a last line ``…and N more`` (followed by ``more``), so a
    long list degrades into a summary instead of a rejected message. Without ``max_blocks`` every
    line is kept (the caller bounds the number of lines); a single over-long line is cut.
    """
    room = MAX_SECTION_TEXT - (0 if max_blocks is None else 120 + len(more or ""))
    chunks: list[list[str]] = []
    size = 0
    shown = 0
    for line in lines:
        line = clip(line, room)
        if chunks and size + 1 + len(line) <= room:
            chunks[-1].append(line)
            size += 1 + len(line)
        elif max_blocks is None or len(chunks) < max_blocks:
            chunks.append([line])
            size = len(line)
        else:
            break
        shown += 1
    hidden = len(lines) - shown
    if hidden:
        summary = f"…and {hidden} more" + (f"; {more}" if more else ".")
        if chunks:
            chunks[-1].append(summary)
        else:
            chunks.append([summary])
    return [section("\n".join(chunk)) for chunk in chunks]


def slack_date(dt: datetime, *, now: datetime, fmt: str = DATED) -> str:
    """A ``<!date^…>`` token: every reader sees ``dt`` in their own time zone.

    The fallback (shown by clients that cannot render the token) is UTC, labelled as such.
    """
    fallback = f"{format_time(dt, UTC, now)} UTC"
    return f"<!date^{int(dt.timestamp())}^{fmt}|{fallback}>"


def slack_window(start: datetime, end: datetime, *, now: datetime) -> str:
    """``<start token> – <end token>``. Each reader's client renders the tokens in its own zone,
    which the server does not know, so the end shows only the time only when the window falls on
    one date in every zone (:func:`~bot.core.timefmt.may_span_dates`); else its date too."""
    end_fmt = DATED if may_span_dates(start, end) else "{time}"
    fallback = f"{format_window(start, end, UTC, now)} UTC"
    return f"{slack_date(start, now=now)} – <!date^{int(end.timestamp())}^{end_fmt}|{fallback}>"


def bar(used_mib: int, capacity_mib: int, width: int = BAR_WIDTH) -> str:
    """A text bar of memory held: rounded to the nearest block, but any use shows at least one
    block and only a full card shows a full bar (so "almost full" never looks full)."""
    if capacity_mib <= 0:
        return EMPTY * width
    filled = (2 * used_mib * width + capacity_mib) // (2 * capacity_mib)  # round half up, integers
    if 0 < used_mib < capacity_mib:
        filled = min(max(filled, 1), width - 1)
    filled = max(0, min(width, filled))
    return FULL * filled + EMPTY * (width - filled)


def usage(used_mib: int, capacity_mib: int, unit: SizeUnit | None = None) -> str:
    """``23/24 GB`` style numbers beside a bar, in one unit (``unit``: that of the line's other
    sizes; by default the one these two share)."""
    unit = unit or size_unit(used_mib, capacity_mib)
    used = format_size(used_mib, unit).removesuffix(f" {unit}")
    return f"{used}/{format_size(capacity_mib, unit)}"
