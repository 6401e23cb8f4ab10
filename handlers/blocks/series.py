"""A booked series' confirmation in Slack (its line in a list is with the other booking lists in
:mod:`handlers.blocks.bookings`; the "Book the N that fit" button with the refusals')."""

from __future__ import annotations

from datetime import datetime, tzinfo

from slack_sdk.models.blocks import Block

from bot.core.snapshots import SeriesResult
from handlers.blocks.bookings import booking_card, rule_text
from handlers.blocks.common import context, section, slack_window


def series_confirmation(
    result: SeriesResult, *, headline: str, now: datetime, viewer_id: str, tz: tzinfo
) -> list[Block]:
    """The headline and the series' rule, the first occurrence's card (with its buttons), how
    to end the whole series, and the windows left out when only those that fit were booked."""
    first = result.booked[0]
    rule = first.series_rule
    what = "" if rule is None else f": {rule_text(rule, tz)}"
    blocks: list[Block] = [
        section(
            f":white_check_mark: {headline} {len(result.booked)} occurrences of series "
            f"*#{first.id}*{what}"
        ),
        *booking_card(first, now=now, viewer_id=viewer_id),
        context(
            f"Cancel one occurrence with `/gpubook cancel <id>`, this and the later ones with "
            f"`/gpubook cancel {first.id} series`; `/gpubook list` shows the series on one line."
        ),
    ]
    if result.skipped:
        left_out = ", ".join(slack_window(s, e, now=now) for s, e in result.skipped)
        blocks.append(context(f"Not booked (they did not fit): {left_out}"))
    return blocks
