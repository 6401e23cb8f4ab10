"""Booking cards, lists of bookings and the confirmation shown after a booking.

A card's Extend/Release/Cancel/Edit buttons are only shown to whoever may change the booking
(:func:`may_change`); hiding them is a courtesy, since the service re-checks every click.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.core.formats import format_size
from bot.core.snapshots import BookingInfo, BookingStatus
from handlers import ids
from handlers.blocks.common import button, clip, context, escape, header, section, slack_window

#: Cards shown in a list before the rest is summarised (each card is two blocks).
MAX_LIST_CARDS = 15
#: A task longer than this is cut in one-line listings (the card shows it whole).
SHORT_TASK_CHARS = 80

#: Prefix of every block id of a booking card's buttons; the booking id follows.
BOOKING_ACTIONS_BLOCK = "booking_actions:"
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
    b: BookingInfo, *, now: datetime, viewer_id: str, is_admin: bool = False
) -> list[Block]:
    """One booking: a section, plus Extend/Release/Cancel/Edit buttons for whoever may change it."""
    blocks: list[Block] = [section(_card_text(b, now))]
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
) -> list[Block]:
    """Upcoming and active bookings (the viewer's or everyone's), at most 15 cards."""
    title = "Everyone's bookings" if everyone else "Your bookings"
    blocks: list[Block] = [header(title)]
    if not bookings:
        empty = (
            "Nobody has an upcoming or active booking."
            if everyone
            else "You have no upcoming or active bookings."
        )
        blocks.append(
            section(
                f"{empty} Book with `/gpubook` (a form) or `/gpubook book a100-1 20GB now for 2h task`."
            )
        )
        return blocks
    for b in bookings[:MAX_LIST_CARDS]:
        blocks.extend(booking_card(b, now=now, viewer_id=viewer_id, is_admin=is_admin))
    hidden = len(bookings) - MAX_LIST_CARDS
    if hidden > 0:
        where = "`/gpubook calendar <gpu>`" if everyone else "`/gpubook list all`"
        blocks.append(context(f"…and {hidden} more; see {where} for more."))
    return blocks


def booking_line(b: BookingInfo, now: datetime) -> str:
    """One booking on one line of a list: id, owner, memory, window, short task."""
    return (
        f"• *#{b.id}* <@{b.user_id}> · {format_size(b.memory_mib)} · "
        f"{slack_window(b.start, b.end, now=now)} · {short_task(b.task)}{_flexible(b)}"
    )
