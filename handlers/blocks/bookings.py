"""Booking cards, lists of bookings and the confirmation shown after a booking.

A card's Extend/Release/Cancel/Edit buttons are only shown to whoever may change the booking
(:func:`may_change`); hiding them is a courtesy, since the service re-checks every click.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, tzinfo

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.core.formats import format_size
from bot.core.recurrence import Recurrence, describe
from bot.core.snapshots import BookingInfo, BookingStatus
from handlers import ids
from handlers.blocks.common import button, clip, context, escape, header, section, slack_window

#: Cards on one page of a list (each card is two blocks); a More button brings the next page.
MAX_LIST_CARDS = 15
#: A task longer than this is cut in one-line listings (the card shows it whole).
SHORT_TASK_CHARS = 80

#: Prefix of every block id of a booking card's buttons; the booking id follows.
BOOKING_ACTIONS_BLOCK = "booking_actions:"
LIST_MORE_BLOCK = "list_more"
_STATUS_LABEL = {
    BookingStatus.UPCOMING: ":hourglass_flowing_sand: upcoming",
    BookingStatus.ACTIVE: ":large_green_circle: active",
    BookingStatus.COMPLETED: ":white_circle: completed",
    BookingStatus.CANCELLED: ":no_entry_sign: cancelled",
}


def short_task(task: str) -> str:
    """A task for one-line listings: cut *before* escaping so no ``&amp;`` is split in half."""
    return escape(clip(task, SHORT_TASK_CHARS))


#: How a flexible booking that can still move is marked in cards and lists.
FLEXIBLE_MARK = ":fast_forward: flexible"


def _flexible(b: BookingInfo) -> str:
    return f" · {FLEXIBLE_MARK}" if b.flexible and b.status == BookingStatus.UPCOMING else ""


def _card_text(b: BookingInfo, now: datetime) -> str:
    return (
        f"*#{b.id}* · `{escape(b.gpu_name)}` · *{format_size(b.memory_mib)}* · "
        f"{slack_window(b.start, b.end, now=now)} · {_STATUS_LABEL.get(b.status, b.status)}"
        f"{_flexible(b)}\n"
        f"{escape(b.task)} — <@{b.user_id}>"
    )


def _card_buttons(b: BookingInfo) -> list[ButtonElement]:
    value = str(b.id)
    buttons = [button(ids.EXTEND_LABEL, ids.EXTEND, value)]
    if b.status == BookingStatus.ACTIVE:
        buttons.append(button("Release now", ids.RELEASE, value))
    if b.flexible and b.status == BookingStatus.UPCOMING:
        buttons.append(button("Pin", ids.PIN, value))
    if b.status == BookingStatus.UPCOMING:
        buttons.append(
            button(
                "Cancel",
                ids.CANCEL,
                value,
                style="danger",
                confirm=ConfirmObject(
                    title="Cancel this booking?",
                    text=f"Booking #{b.id} on {b.gpu_name} will be cancelled.",
                    confirm="Cancel booking",
                    deny="Keep it",
                    style="danger",
                ),
            )
        )
    buttons.append(button("Edit", ids.EDIT, value))
    return buttons


def may_change(b: BookingInfo, *, viewer_id: str, is_admin: bool) -> bool:
    """Whether to show change buttons: the owner or an admin, and the booking still holds memory.

    This only hides buttons; the service re-checks ownership, so a forged click is still refused.
    """
    return b.is_holding and (is_admin or b.user_id == viewer_id)


def booking_card(
    b: BookingInfo,
    *,
    now: datetime,
    viewer_id: str,
    is_admin: bool = False,
    text: str | None = None,
) -> list[Block]:
    """One booking: a section (``text``, else the booking's own), plus Extend/Release/Cancel/Edit
    buttons for whoever may change it."""
    blocks: list[Block] = [section(text or _card_text(b, now))]
    if may_change(b, viewer_id=viewer_id, is_admin=is_admin):
        blocks.append(
            ActionsBlock(block_id=f"{BOOKING_ACTIONS_BLOCK}{b.id}", elements=_card_buttons(b))
        )
    return blocks


def booking_confirmation(
    b: BookingInfo, *, headline: str, now: datetime, viewer_id: str
) -> list[Block]:
    """A trusted headline (``:white_check_mark: Booked …``) above the booking's card."""
    return [section(headline), *booking_card(b, now=now, viewer_id=viewer_id)]


def booking_list(
    bookings: list[BookingInfo],
    *,
    everyone: bool,
    viewer_id: str,
    now: datetime,
    is_admin: bool = False,
    tz: tzinfo | None = None,
    shown: int = 0,
) -> list[Block]:
    """One page of upcoming and active bookings (the viewer's or everyone's): up to 15 cards, a
    series as one card (its next occurrence's, saying how many are left).

    ``shown`` bookings came on the pages before. Give one booking more than a page to say that
    another page follows: the page then ends in a More button that brings it.
    """
    title = "Everyone's bookings" if everyone else "Your bookings"
    blocks: list[Block] = [header(title)]
    if not bookings:
        empty = (
            "Nobody has an upcoming or active booking."
            if everyone
            else "You have no upcoming or active bookings."
        )
        if shown:
            empty = "No more bookings."
        blocks.append(
            section(
                f"{empty} Book with `/gpubook` (a form) or `/gpubook book a100-1 20GB now for 2h task`."
            )
        )
        return blocks
    page = bookings[:MAX_LIST_CARDS]
    for b, left in grouped(page):
        text = None if left is None else series_line(b, left, now=now, tz=tz)
        blocks.extend(booking_card(b, now=now, viewer_id=viewer_id, is_admin=is_admin, text=text))
    more = len(bookings) > len(page)
    if shown or more:
        blocks.append(context(f"Bookings {shown + 1}–{shown + len(page)}."))
    if more:
        blocks.append(more_button(page[-1], everyone=everyone, shown=shown + len(page)))
    return blocks


def more_button(last: BookingInfo, *, everyone: bool, shown: int) -> ActionsBlock:
    """The button that brings the page after ``last``: its value is the keyset cursor (the last
    booking's start and id), so the next page is read from there on, whatever came before."""
    value = json.dumps(
        {"all": everyone, "start": last.start.isoformat(), "id": last.id, "shown": shown},
        separators=(",", ":"),
    )
    return ActionsBlock(block_id=LIST_MORE_BLOCK, elements=[button("More", ids.LIST_MORE, value)])


def grouped(bookings: list[BookingInfo]) -> list[tuple[BookingInfo, int | None]]:
    """Each single booking, and each series once at its first booking listed with how many of
    its bookings are left (``None`` for a single booking), in the order given: the list's own
    count of the series (``series_left``, on every page) where it has one, else those given."""
    left = Counter(b.series_id for b in bookings if b.series_rule is not None)
    cards: list[tuple[BookingInfo, int | None]] = []
    seen: set[int] = set()
    for b in bookings:
        if b.series_id is None or b.series_rule is None:
            cards.append((b, None))
        elif b.series_id not in seen:
            seen.add(b.series_id)
            cards.append((b, b.series_left or left[b.series_id]))
    return cards


def rule_text(rule: Recurrence, tz: tzinfo | None) -> str:
    """The rule as asked for, naming its zone unless it is the reader's (``tz``)."""
    return escape(describe(rule, zone=getattr(tz, "key", None) != rule.zone))


def series_line(b: BookingInfo, left: int, *, now: datetime, tz: tzinfo | None) -> str:
    """``#42 rtx-0 · 8 GB · weekdays 09:00–17:00 until Mon 1 Mar 2027 · 12 left``: a series in a
    list, under its next occurrence's id (what `cancel 42 series` acts from)."""
    assert b.series_rule is not None
    return (
        f"*#{b.id}* `{escape(b.gpu_name)}` · *{format_size(b.memory_mib)}* · "
        f"{rule_text(b.series_rule, tz)} · {left} left · next {slack_window(b.start, b.end, now=now)}"
        f"\n{short_task(b.task)} — <@{b.user_id}>"
    )


def booking_line(b: BookingInfo, now: datetime) -> str:
    """One booking on one line of a list: id, owner, memory, window, short task."""
    return (
        f"• *#{b.id}* <@{b.user_id}> · {format_size(b.memory_mib)} · "
        f"{slack_window(b.start, b.end, now=now)} · {short_task(b.task)}{_flexible(b)}"
    )
