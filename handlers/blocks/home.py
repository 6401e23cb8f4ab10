"""The App Home tab: the dashboard of the seed's web app, as one ``home`` view.

It reuses the message builders (booking cards, status lines) so a booking looks the same in a
reply and on the Home tab, and stays within 100 blocks however many bookings and GPUs there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock
from slack_sdk.models.views import View

from bot.core.pool import PoolStatus
from bot.core.snapshots import BookingInfo, GpuStatus
from bot.core.stats import gb_hours
from bot.core.usage import LiveCard
from handlers import ids
from handlers.blocks.bookings import booking_card, grouped, more_button, series_line
from handlers.blocks.common import button, context, header, pack_lines, section, your_zone
from handlers.blocks.reports import NO_GPUS_TEXT, status_line, summarised_gpus

#: Own bookings shown as cards (two blocks each); give one more to get the More button.
MAX_HOME_CARDS = 20
#: Blocks left for the "GPUs now" lines, packed into sections of up to 3000 characters.
MAX_GPU_SECTIONS = 40


def _my_bookings(
    mine: list[BookingInfo], *, user_id: str, now: datetime, is_admin: bool
) -> list[Block]:
    """The first cards of the user's bookings; a More button (as under a list) brings the rest."""
    blocks: list[Block] = [header("My bookings")]
    if not mine:
        return [*blocks, section("You have no upcoming or active bookings.")]
    shown = mine[:MAX_HOME_CARDS]
    for b, left in grouped(shown):  # a series is one card
        text = None if left is None else series_line(b, left, now=now, tz=None)
        blocks.extend(booking_card(b, now=now, viewer_id=user_id, is_admin=is_admin, text=text))
    if len(mine) > len(shown):
        blocks.append(more_button(shown[-1], everyone=False, shown=len(shown)))
    return blocks


def _gpus_now(
    statuses: list[GpuStatus],
    now: datetime,
    live: Mapping[str, LiveCard],
    pool: PoolStatus | None,
) -> list[Block]:
    blocks: list[Block] = [header("GPUs now")]
    if not statuses:
        return [*blocks, section(NO_GPUS_TEXT)]
    if pool is not None and not pool.complete:
        return blocks + summarised_gpus(pool, now, more="`/gpubook status a100-*` shows others.")
    lines = [status_line(s, now, live.get(s.gpu.name)) for s in statuses]
    return blocks + pack_lines(lines, max_blocks=MAX_GPU_SECTIONS, more="see `/gpubook status`.")


def home_view(
    *,
    user_id: str,
    mine: list[BookingInfo],
    statuses: list[GpuStatus],
    week_usage_mib_s: int,
    now: datetime,
    is_admin: bool = False,
    tz: tzinfo = UTC,
    live: Mapping[str, LiveCard] | None = None,
    pool: PoolStatus | None = None,
) -> View:
    """The Home tab: New booking / Calendar buttons, my bookings, every GPU now (or, given a
    ``pool`` of more GPUs than it shows — ``statuses`` and ``live`` are then its own — their
    summary and the GPUs that matter), my week's usage."""
    if pool is not None:
        statuses, live = pool.shown, pool.live
    blocks: list[Block] = [
        header("gpubook"),
        ActionsBlock(
            block_id="home_actions",
            elements=[
                button("New booking", ids.HOME_NEW_BOOKING, "new", style="primary"),
                button("Calendar", ids.HOME_CALENDAR, "calendar"),
            ],
        ),
        DividerBlock(),
        *_my_bookings(mine, user_id=user_id, now=now, is_admin=is_admin),
        DividerBlock(),
        *_gpus_now(statuses, now, live or {}, pool),
        DividerBlock(),
        section(f"*My usage this week*: {gb_hours(week_usage_mib_s)} GB·h"),
        context(f"Times are shown in {your_zone(tz)}. GB = 1024 MiB."),
    ]
    return View(type="home", blocks=blocks)
